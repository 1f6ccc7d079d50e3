"""Applying a fine-tuned text classifier (from `enclave tune classifier`) to documents at ingest."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MAX_TOKENS = 256


class DataError(ValueError):
    """The labelled data or a saved classifier cannot be used (missing file, column, labels)."""


def encode(tokenizer: Any, texts: Sequence[str], device: str) -> Any:
    """A padded batch of token ids on device, cut at the classifier's window."""
    return tokenizer(
        list(texts), truncation=True, max_length=MAX_TOKENS, padding=True, return_tensors="pt"
    ).to(device)


class TextClassifier:
    """A saved classifier (a transformers sequence-classification model) applied to texts."""

    def __init__(self, path: str | Path, device: str = "cpu"):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        folder = Path(path).expanduser()
        if not (folder / "config.json").is_file():
            raise DataError(f"{folder} holds no classifier (config.json missing)")
        self.name = str(folder)
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.model = AutoModelForSequenceClassification.from_pretrained(str(folder)).to(device)
        self.model.eval()
        self.device = device
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]

    def probabilities(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        import torch

        out = []
        with torch.no_grad():
            for start in range(0, len(texts), batch_size):
                batch = encode(self.tokenizer, texts[start : start + batch_size], self.device)
                out.append(torch.softmax(self.model(**batch).logits, dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)))

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(label, probability) per text."""
        probs = self.probabilities(texts)
        return [(self.labels[int(p.argmax())], float(p.max())) for p in probs]
