"""Benchmark: how fast Enclave reads HTML pages into blocks of text (`html_text.page_blocks`).

    .venv/bin/python benchmarks/html_pages.py DIR [--sample 300] [--baseline OLD.py]

Times a random sample of the .html files under DIR (generated documentation: javadoc,
rustdoc, Sphinx, DocBook). With --baseline (an older html_text.py, e.g. from
`git show REV:src/enclave/pipeline/html_text.py > OLD.py`) the two take turns on every page,
each first as often, and the table says whether they read every page alike.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import time
import warnings
from pathlib import Path

import numpy as np

from enclave.pipeline import html_text
from enclave.pipeline.loaders import decode_text


def module_from(path: Path):
    spec = importlib.util.spec_from_file_location("baseline_html_text", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--sample", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--baseline", type=Path, help="an older html_text.py to compare with")
    args = parser.parse_args()

    pages = sorted(args.folder.rglob("*.html"))
    pages = random.Random(args.seed).sample(pages, min(args.sample, len(pages)))
    readers = {"this checkout": html_text}
    if args.baseline:
        # an older reader may warn about XHTML on every page (this one need not)
        warnings.filterwarnings("ignore", message=".*XML document")
        readers["baseline"] = module_from(args.baseline)
    took: dict[str, list[float]] = {name: [] for name in readers}
    alike, megabytes = 0, 0.0
    for turn, page in enumerate(pages):
        markup = decode_text(page.read_bytes(), None)
        megabytes += len(markup.encode()) / 2**20
        order = list(readers.items())
        order = order[turn % len(order) :] + order[: turn % len(order)]
        read = {}
        for name, module in order:
            began = time.perf_counter()
            read[name] = module.page_blocks(markup)
            took[name].append(time.perf_counter() - began)
        alike += len({repr(blocks) for blocks in read.values()}) == 1
    print(f"{len(pages)} pages, {megabytes:.1f} MB of HTML under {args.folder}\n")
    print("| reader | total s | MB/s | p50 ms | p95 ms | slowest page ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, times in took.items():
        total = sum(times)
        p50, p95 = (float(np.percentile(times, q)) * 1000 for q in (50, 95))
        print(
            f"| {name} | {total:.1f} | {megabytes / total:.2f} | {p50:.1f} | {p95:.1f} | "
            f"{max(times) * 1000:.0f} |"
        )
    if args.baseline:
        print(f"\nThe same blocks from both readers for {alike} of {len(pages)} pages.")


if __name__ == "__main__":
    main()
