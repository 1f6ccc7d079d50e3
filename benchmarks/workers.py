"""Benchmark: ingest throughput of 1 and 2 `enclave worker` processes on one database.

    .venv/bin/python benchmarks/workers.py [--xquad DIR | --files DIR] [--threads 1]
        [--workers 1 2] [--embedding-model M] [--embedding-device auto|cpu|cuda]

Every XQuAD paragraph (German and English) becomes a Markdown file (or --files: a folder of
real documents); `enclave ingest --queue` enqueues them and N workers (`--until-empty`)
ingest them into a fresh embedded database. Each worker's torch uses --threads threads; on a
machine with a GPU, `--embedding-device auto` embeds there. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from enclave.config import Settings
from enclave.pipeline.store import Store

ENCLAVE = [sys.executable, "-m", "enclave.cli"]


def write_corpus(xquad: Path, folder: Path) -> int:
    folder.mkdir(parents=True)
    count = 0
    for lang in ("en", "de"):
        for article in json.loads((xquad / f"xquad.{lang}.json").read_text())["data"]:
            for n, paragraph in enumerate(article["paragraphs"]):
                name = f"{lang}-{article['title']}-{n}".replace("/", "-")
                (folder / f"{name}.md").write_text(
                    f"# {article['title']} ({lang} {n})\n\n{paragraph['context']}\n"
                )
                count += 1
    return count


def run(
    workers: int, corpus: Path, threads: int, model: str, device: str
) -> tuple[float, float, int]:
    """(wall seconds incl. model loading, seconds from the first job's start to the last
    job's end, chunks written) for this many workers draining the queue."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        env = os.environ | {
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "ENCLAVE_EMBEDDING_MODEL": model,
            "ENCLAVE_EMBEDDING_DEVICE": device,
        }
        base = ["--data-dir", str(data)]
        queue = [*ENCLAVE, "ingest", str(corpus), "--allow", "group:all", "--create-principals"]
        subprocess.run([*queue, "--queue", *base], check=True, capture_output=True, env=env)
        started = time.perf_counter()
        processes = [
            subprocess.Popen(
                [*ENCLAVE, "worker", "--until-empty", *base],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]
        for process in processes:
            process.wait()
        wall = time.perf_counter() - started
        with Store(Settings.load(data_dir=data)) as store, store.connection() as conn:
            window = conn.execute(
                "select extract(epoch from max(at) filter (where type = 'succeeded') "
                "- min(at) filter (where type = 'started')) as s from procrastinate_events"
            ).fetchone()["s"]
            chunks = store.counts()["chunks"]
    return wall, float(window), chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "xquad"
    parser.add_argument("--xquad", type=Path, default=default)
    parser.add_argument("--files", type=Path, help="ingest this folder instead of XQuAD")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    # The published numbers are MiniLM's (torch); keep them comparable.
    parser.add_argument("--embedding-model", default="all-MiniLM-L6-v2")
    parser.add_argument("--embedding-device", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.files:
            corpus, files = args.files, sum(1 for f in args.files.rglob("*") if f.is_file())
        else:
            corpus = Path(tmp) / "corpus"
            files = write_corpus(args.xquad, corpus)
        print(
            f"## Queue ingest: {files} files, torch threads per worker {args.threads}, "
            f"{os.cpu_count()} cores, embedding device {args.embedding_device}\n"
        )
        print("| workers | wall s (models loading) | processing s | chunks | chunks/s | speed-up |")
        print("|---:|---:|---:|---:|---:|---:|")
        single = None
        for workers in args.workers:
            wall, window, chunks = run(
                workers, corpus, args.threads, args.embedding_model, args.embedding_device
            )
            single = single or window
            print(
                f"| {workers} | {wall:.1f} | {window:.1f} | {chunks} | {chunks / window:.1f} "
                f"| {single / window:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
