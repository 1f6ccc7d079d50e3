"""Run folders of the model workshop: config, metrics and plots of one `enclave tune` step."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Run:
    """One step's folder: config.json in, metrics.json and plots out, a one-line summary."""

    folder: Path

    @classmethod
    def create(cls, root: Path, kind: str, config: dict[str, Any]) -> Run:
        """A new folder root/<kind>-<timestamp> holding config.json."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        folder = root / f"{kind}-{stamp}"
        n = 1
        while folder.exists():
            n += 1
            folder = root / f"{kind}-{stamp}-{n}"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps(config, indent=2, default=str))
        return cls(folder)

    def save_metrics(self, metrics: dict[str, Any]) -> Path:
        path = self.folder / "metrics.json"
        path.write_text(json.dumps(metrics, indent=2, default=str))
        return path

    def save_summary(self, line: str) -> str:
        (self.folder / "summary.txt").write_text(line + "\n")
        return line


def seed_everything(seed: int) -> None:
    """Python, NumPy and torch generators, so that a re-run gives the same metrics."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def training_device() -> str:
    """A GPU where there is one (e.g. on the device machine), else the CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def plot_curves(path: Path, curves: dict[str, list[tuple[float, float]]], title: str) -> Path:
    """A line chart of (x, y) series, e.g. training loss per step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, points in curves.items():
        if points:
            ax.plot([x for x, _ in points], [y for _, y in points], label=label)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
