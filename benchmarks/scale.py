"""Benchmark: approximate vs exact dense search and hybrid latency on a real 100k-chunk corpus.

    # 1. the corpus: Debian documentation packages, loaded and chunked by Enclave's own code
    apt-get download linux-doc-6.12 python3.11-doc   # (or the linux-doc-6.x the archive has)
    # unpack; gunzip the kernel's .rst.gz; Python's sources are html/_sources/*.txt. Copy only
    # those into FILES_DIR: the packages also hold the rendered HTML (the same text again)
    .venv/bin/python benchmarks/scale.py corpus FILES_DIR OUT/linux.jsonl.xz   # one per package
    .venv/bin/python benchmarks/scale.py texts OUT/texts.xz OUT/*.jsonl.xz
    #    (or --split 80000 [--offset N]: files of 80,000 texts, whose float16 vectors, 8 shards
    #    of 7.7 MB, one call to a GPU machine can bring back; N = chunks of corpus files before)
    # 2. the vectors (any machine with sentence-transformers; a GPU where there is one)
    python benchmarks/scale.py embed MODEL_DIR OUT/vectors OUT/texts.xz [--part i/n]
    python benchmarks/scale.py embed MODEL_DIR OUT/vectors OUT/texts-0080000.xz --offset 80000
    # 3. the measurements, on this machine (the corpus files in the order texts was given them)
    .venv/bin/python benchmarks/scale.py run OUT/vectors OUT/*.jsonl.xz --data-dir DIR

`run` loads the chunks and their vectors into a fresh embedded Enclave store (documents spread
over 100 groups at random), asks Enclave's own dense search as users who may read 1, 5, 15, 30
and 100 % of the chunks by each method (exact; the vectors' signs re-scored; HNSW at several
ef_search), 50 results as retrieval asks, compares the top 10 of each with the exact top 10
(recall@10), and times the whole hybrid query (embed + dense + BM25 + fusion) through
Enclave's retriever as configured.
Queries are section headings of the corpus: real text about the corpus's subjects. Prints
markdown tables.
"""

from __future__ import annotations

import argparse
import itertools
import json
import lzma
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from enclave.pipeline.wiring import Enclave

GROUPS = 100
READERS = {"reader1": 1, "reader5": 5, "reader15": 15, "reader30": 30, "reader100": 100}
# ef_search = factor * 50 for the 50 candidates retrieval asks; Enclave's EF_FACTOR is 8 (400).
EF_FACTORS = (2, 4, 8)


def read_documents(paths: list[Path]) -> Iterator[dict]:
    """The corpus step's documents, each with its chunks, in order."""
    for path in paths:
        with lzma.open(path, "rt") as lines:
            for line in lines:
                yield json.loads(line)


def corpus(files: Path, out: Path) -> None:
    """Load and chunk every file under files with Enclave's loaders and chunker.

    A chunk whose text an earlier file already gave is left out: generated documentation
    repeats its menus and notices on every page, and exact duplicates make recall@10 of
    approximate search depend on which of the tied copies each method happens to return.
    """
    from tqdm import tqdm

    from enclave.config import Settings
    from enclave.pipeline.embedding import MINILM, embedding_text
    from enclave.pipeline.loaders import LoadError, discover, load
    from enclave.pipeline.wiring import Enclave

    paths = sorted(discover([files]))
    written, repeated, seen = 0, 0, set()
    with (
        tempfile.TemporaryDirectory() as tmp,
        Enclave(Settings.load(data_dir=Path(tmp), embedding_model=MINILM)) as enclave,
        lzma.open(out, "wt", preset=6) as sink,
    ):
        settings, chunker = enclave.settings, enclave.chunker
        for path in tqdm(paths, desc="chunking", unit="file"):
            try:
                document = load(path, settings.max_file_mb * 2**20)
            except LoadError:
                continue
            made = chunker.chunk(document)
            fresh = [c for c in made if c.text not in seen]
            seen.update(c.text for c in fresh)
            repeated += len(made) - len(fresh)
            chunks = [
                {
                    "ordinal": c.ordinal,
                    "text": c.text,
                    "heading_path": list(c.heading_path),
                    "char_start": c.char_start,
                    "char_end": c.char_end,
                    "token_count": c.token_count,
                    "embed": embedding_text(document.title, c.heading_path, c.text),
                }
                for c in fresh
            ]
            row = {
                "source": str(path.relative_to(files)),
                "title": document.title,
                "mime": document.mime,
                "text": document.text,
                "content_hash": document.content_hash,
                "chunks": chunks,
            }
            sink.write(json.dumps(row) + "\n")
            written += len(chunks)
    print(f"{len(paths)} files, {written} chunks ({repeated} repeated ones left out) -> {out}")


def texts(documents: list[Path], out: Path, split: int, offset: int) -> None:
    """What the bi-encoder sees of every chunk, one JSON string a line: all a GPU machine needs.

    With split, files of that many texts each, named out-NNNNNNN.xz by the position of their
    first text in the whole corpus (offset: the chunks of corpus files loaded before these),
    so that one GPU call can carry the texts whose vectors one call can bring back.
    """
    lines = [
        json.dumps(chunk["embed"]) + "\n"
        for document in read_documents(documents)
        for chunk in document["chunks"]
    ]
    size = split or len(lines)
    for first in range(0, len(lines), size):
        target = out.with_name(f"{out.stem}-{offset + first:07}.xz") if split else out
        with lzma.open(target, "wt", preset=9) as sink:
            sink.writelines(lines[first : first + size])


def read_texts(path: Path) -> list[str]:
    with lzma.open(path, "rt") as lines:
        return [json.loads(line) for line in lines]


def embed(
    texts_file: Path,
    model: str,
    out: Path,
    part: str,
    batch_sizes: list[int],
    cpu_sample: int,
    offset: int,
) -> None:
    """Vectors (float16) for part i/n of the texts, by Enclave's Embedder; a chunks/s table.

    Every batch size is timed on the first 20,000 texts of the part; the vectors come from the
    last. cpu_sample texts are also timed on the CPU. The model runs in float32, as Enclave
    runs it; float16 halves what travels back from a GPU machine. Shards of 10,000 vectors.
    """
    from enclave.pipeline.embedding import Embedder

    index, count = (int(x) for x in part.split("/"))
    texts = read_texts(texts_file)
    size = -(-len(texts) // count)
    start = index * size
    texts = texts[start : start + size]
    print("| device | batch | chunks | seconds | chunks/s |\n|---|---:|---:|---:|---:|")
    embedder = Embedder(model)
    runs = [
        (embedder, batch, texts if batch == batch_sizes[-1] else texts[:20000])
        for batch in batch_sizes
    ]
    if cpu_sample and embedder.model.device.type != "cpu":
        runs.insert(0, (Embedder(model, "cpu"), 32, texts[:cpu_sample]))
    for current, batch, timed in runs:
        current.model.float()
        current.embed_passages(timed[:256], batch_size=batch)  # warm-up: kernels, allocator
        began = time.perf_counter()
        vectors = current.embed_passages(timed, batch_size=batch)
        took = time.perf_counter() - began
        print(
            f"| {current.model.device} | {batch} | {len(timed)} | {took:.1f} | "
            f"{len(timed) / took:.0f} |",
            flush=True,
        )
    out.mkdir(parents=True, exist_ok=True)
    for first in range(0, len(vectors), 10000):
        shard = vectors[first : first + 10000].astype(np.float16)
        np.save(out / f"vectors-{offset + start + first:07}.npy", shard)


def read_vectors(vectors: Path) -> np.ndarray:
    """The corpus's chunk vectors (the embed step's shards, in order), float32, unit length."""
    shards = sorted(vectors.glob("vectors-*.npy"))
    matrix = np.concatenate([np.load(shard) for shard in shards]).astype(np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def load_corpus(enclave: Enclave, documents: list[Path], vectors: Path, rng) -> None:
    """Store every document through the store's own write path, each readable by one group."""
    from tqdm import tqdm

    from enclave.pipeline.access import Principal
    from enclave.pipeline.entities import Chunk, Document

    store = enclave.store
    matrix = read_vectors(vectors)
    store.check_embedding_model(enclave.embedder.name, 384)
    # Built once after loading, as a bulk load would; inserting into it row by row is slower.
    with store.connection() as conn:
        conn.execute("drop index if exists chunks_embedding_hnsw")
    offset = 0
    bar = tqdm(total=len(matrix), desc="loading", unit="chunk")
    for row in read_documents(documents):
        chunks = [
            Chunk(
                ordinal=c["ordinal"],
                text=c["text"],
                char_start=c["char_start"],
                char_end=c["char_end"],
                page=None,
                heading_path=tuple(c["heading_path"]),
                token_count=c["token_count"],
            )
            for c in row["chunks"]
        ]
        if not chunks:
            continue
        document = Document(
            source=row["source"],
            title=row["title"],
            mime=row["mime"],
            text=row["text"],
            sections=(),
            section_starts=(),
            content_hash=row["content_hash"],
        )
        group = Principal("group", f"g{int(rng.integers(GROUPS))}")
        n = len(chunks)
        store.replace_document(
            document, chunks, matrix[offset : offset + n], ["english"] * n, [group]
        )
        offset += n
        bar.update(n)
    bar.close()
    assert offset == len(matrix), f"{offset} chunks but {len(matrix)} vectors"
    for user, groups in READERS.items():
        store.add_user(user, [f"g{i}" for i in range(groups)])
    with store.connection() as conn:
        conn.execute("analyze")


def build_hnsw(enclave: Enclave, m: int, ef_construction: int) -> float:
    """(Re)build the HNSW index with these parameters unless it has them; seconds taken."""
    with enclave.store.connection() as conn:
        built = conn.execute(
            "select reloptions from pg_class where relname = 'chunks_embedding_hnsw'"
        ).fetchone()
        if built and set(built["reloptions"] or ()) == {
            f"m={m}",
            f"ef_construction={ef_construction}",
        }:
            return 0.0  # a 1M-chunk graph takes ~10 minutes to build
        conn.execute("drop index if exists chunks_embedding_hnsw")
        conn.execute("set maintenance_work_mem = '4GB'")
        began = time.perf_counter()
        conn.execute(
            "create index chunks_embedding_hnsw on chunks using hnsw "
            f"((embedding::vector(384)) vector_cosine_ops) with (m = {m}, "
            f"ef_construction = {ef_construction})"
        )
        return time.perf_counter() - began


def headings(documents: list[Path]) -> list[str]:
    """Section headings of the corpus (reStructuredText underlined lines, 3+ words), sorted."""
    found = set()
    for document in read_documents(documents):
        lines = document["text"].splitlines()
        for line, under in itertools.pairwise(lines):
            marks = set(under.strip())
            underlined = (
                len(marks) == 1 and marks <= set("=-~^*") and len(under.strip()) >= len(line)
            )
            if underlined and len(line.split()) >= 3:
                found.add(line.strip())
    return sorted(found)


def queries(ordered: list[str], count: int, rng) -> list[str]:
    """count of the headings, drawn without repeats."""
    return [ordered[int(i)] for i in rng.choice(len(ordered), count, replace=False)]


def dense_rows(
    enclave: Enclave, vectors: list[np.ndarray], label: str, readers: list[str]
) -> list[str]:
    """Exact, signs re-scored and HNSW (ef_search sweep) dense search, 50 results as retrieval
    asks: recall@10 of their top 10 against exact, and latency.

    Per query the two methods Enclave chooses between (the signs, HNSW at its own ef_search)
    go first, taking turns, so each meets every query as a new one, as a user's next question
    is: a graph larger than PostgreSQL's shared buffers is read in part from the operating
    system on a new query, and a second HNSW walk for the same query would find it cached.
    The other ef_search and the exact scan follow."""
    from enclave.pipeline.store import search

    store, rows = enclave.store, []
    shipped, ef_factor = store.settings, search.EF_FACTOR
    methods = [("exact", 10**9, 10**9, ef_factor), ("signs", 0, 10**9, ef_factor)] + [
        (f"HNSW ef_search {f * 50}", 0, 0, f) for f in EF_FACTORS
    ]
    shipped_hnsw = f"HNSW ef_search {ef_factor * 50}"
    chosen = [m for m in methods if m[0] in ("signs", shipped_hnsw)]
    after = [m for m in methods if m not in chosen and m[0] != "exact"] + methods[:1]
    for user in readers:
        viewer = store.viewer(user)
        with store.connection() as conn:
            permitted = conn.execute(
                "select sum(chunk_count) as n from documents where id in (select document_id "
                "from document_acl where principal_id = any(%s))",
                [viewer.principals],
            ).fetchone()["n"]
        found: dict[str, list[list[int]]] = {m[0]: [] for m in methods}
        took: dict[str, list[float]] = {m[0]: [] for m in methods}
        for turn, vector in enumerate(vectors):
            for name, exact, signs, factor in chosen[turn % 2 :] + chosen[: turn % 2] + after:
                limits = {"exact_search_limit": exact, "signs_search_limit": signs}
                store.settings = replace(shipped, **limits)
                search.EF_FACTOR = factor
                began = time.perf_counter()
                hits = store.dense_search(viewer, vector, 50)
                took[name].append(time.perf_counter() - began)
                found[name].append([i for i, _ in hits][:10])
        search.EF_FACTOR, store.settings = ef_factor, shipped
        for name, *_ in methods:
            hit = sum(
                len(set(f) & set(t)) for f, t in zip(found[name], found["exact"], strict=True)
            )
            recall = hit / max(1, sum(len(t) for t in found["exact"]))
            rows.append(row(label, user, permitted, name, recall, took[name]))
    return rows


def hybrid_rows(
    enclave: Enclave, texts: list[str], label: str, readers: list[str], warming: list[str]
) -> list[str]:
    """The whole query as the server runs it (embed, dense alongside BM25, fuse, fetch 5),
    each reader first asking the warming queries untimed."""
    rows = []
    for user in readers:
        viewer = enclave.store.viewer(user)
        for text in warming:
            enclave.retriever.search(viewer, text, 5)
        cold, warm, keyword = [], [], []
        for text in texts:
            began = time.perf_counter()
            enclave.store.keyword_search(viewer, text, 50)
            keyword.append(time.perf_counter() - began)
            enclave.retriever.clear_query_cache()
            began = time.perf_counter()
            enclave.retriever.search(viewer, text, 5)
            cold.append(time.perf_counter() - began)
            began = time.perf_counter()
            enclave.retriever.search(viewer, text, 5)
            warm.append(time.perf_counter() - began)
        rows.append(row(label, user, None, "bm25 alone (50)", None, keyword))
        rows.append(row(label, user, None, "hybrid", None, cold))
        rows.append(row(label, user, None, "hybrid, repeated query", None, warm))
    return rows


def row(label, user, permitted, query, recall, took) -> str:
    shown = "" if recall is None else f"{recall:.3f}"
    count = "" if permitted is None else f"{permitted:,}"
    p50, p95 = (float(np.percentile(took, q)) * 1000 for q in (50, 95))
    return f"| {label} | {user} | {count} | {query} | {shown} | {p50:.1f} | {p95:.1f} |"


def run(
    documents: list[Path],
    vectors: Path,
    data_dir: Path,
    count: int,
    hnsw: list[tuple[int, int]],
    hybrid: bool = True,
    groups: list[int] | None = None,
    warm: int = 0,
    warm_up: int = 0,
) -> None:
    """Load (once per data_dir), then print the dense and hybrid tables for readers of these
    numbers of groups (default READERS); before the hybrid queries each reader asks `warm`
    other headings, as a server that has been answering has the indexes' busy pages cached.
    warm_up: the store's own warm-up with that many probes first, as `enclave serve` starts."""
    from enclave.config import Settings
    from enclave.pipeline.embedding import MINILM
    from enclave.pipeline.wiring import Enclave

    rng = np.random.default_rng(11)
    with Enclave(Settings.load(data_dir=data_dir, embedding_model=MINILM)) as enclave:
        if not enclave.store.counts()["chunks"]:
            began = time.perf_counter()
            load_corpus(enclave, documents, vectors, rng)
            print(f"<!-- loaded in {time.perf_counter() - began:.0f} s -->")
        if warm_up:
            began = time.perf_counter()
            probes = enclave.store.warm_up(warm_up)
            print(f"<!-- store warm-up: {probes} probes, {time.perf_counter() - began:.1f} s -->")
        readers = {f"reader{n}": n for n in groups} if groups else READERS
        for user, n in readers.items():  # readers added since the corpus was loaded
            enclave.store.add_user(user, [f"g{i}" for i in range(n)])
        ordered = headings(documents)
        texts = queries(ordered, count, rng)
        others = queries(ordered, count + warm, np.random.default_rng(12))
        warming = [t for t in others if t not in texts][:warm]
        vectors_of = [enclave.embedder.embed_query(t) for t in texts]
        header = "| index | user | permitted chunks | search | recall@10 | p50 ms | p95 ms |"
        print(header + "\n|---|---|---:|---|---:|---:|---:|")
        chunks = enclave.store.counts()["chunks"]
        for m, ef_construction in hnsw:
            took = build_hnsw(enclave, m, ef_construction)
            label = f"{chunks:,} chunks, m={m} ef_c={ef_construction}"
            print(f"<!-- HNSW built in {took:.0f} s -->" if took else "<!-- HNSW kept -->")
            print("\n".join(dense_rows(enclave, vectors_of, label, list(readers))), flush=True)
        if hybrid:
            label = f"{chunks:,} chunks"
            rows = hybrid_rows(enclave, texts, label, list(readers), warming)
            print("\n".join(rows), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    step = commands.add_parser("corpus", help="load and chunk the files")
    step.add_argument("files", type=Path)
    step.add_argument("out", type=Path)
    step = commands.add_parser("embed", help="embed part i/n of the chunks")
    step.add_argument("model")
    step.add_argument("out", type=Path)
    step.add_argument("--part", default="0/1")
    step.add_argument("--batch-sizes", type=int, nargs="+", default=[32])
    step.add_argument("--cpu-sample", type=int, default=0)
    step.add_argument("--offset", type=int, default=0, help="position of the first text")
    step.add_argument("texts", type=Path)
    step = commands.add_parser("texts", help="the embedding texts of the corpus, for embed")
    step.add_argument("out", type=Path)
    step.add_argument("--split", type=int, default=0, help="texts a file (0: one file)")
    step.add_argument("--offset", type=int, default=0, help="chunks of the corpus before these")
    step.add_argument("documents", type=Path, nargs="+")
    step = commands.add_parser("run", help="load, then measure recall and latency")
    step.add_argument("vectors", type=Path)
    step.add_argument("documents", type=Path, nargs="+")
    step.add_argument("--data-dir", type=Path, required=True)
    step.add_argument("--queries", type=int, default=100)
    step.add_argument(
        "--hnsw", nargs="*", default=["16,64"], help="m,ef_construction ... (none: hybrid only)"
    )
    step.add_argument("--dense-only", action="store_true", help="no hybrid rows")
    step.add_argument("--warm", type=int, default=0, help="untimed queries a reader asks first")
    step.add_argument("--warm-up", type=int, default=0, help="the store's warm-up, N probes")
    step.add_argument(
        "--readers", type=int, nargs="+", help="readers of this many of the 100 groups each"
    )
    args = parser.parse_args()
    if args.command == "corpus":
        corpus(args.files, args.out)
    elif args.command == "texts":
        texts(args.documents, args.out, args.split, args.offset)
    elif args.command == "embed":
        embed(
            args.texts,
            args.model,
            args.out,
            args.part,
            args.batch_sizes,
            args.cpu_sample,
            args.offset,
        )
    elif args.command == "run":
        hnsw = [tuple(int(x) for x in spec.split(",")) for spec in args.hnsw]
        run(
            args.documents,
            args.vectors,
            args.data_dir,
            args.queries,
            hnsw,
            not args.dense_only,
            args.readers,
            args.warm,
            args.warm_up,
        )


if __name__ == "__main__":
    main()
