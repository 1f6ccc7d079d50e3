"""Does German compound splitting pay in keyword search? BM25 on XQuAD German, with and without.

    .venv/bin/pip install compound-split   # GPL-3.0: a measuring instrument, not a dependency
    .venv/bin/python benchmarks/compounds.py

Splits every German word of 10+ letters with compound-split's character n-gram model (score
> 0.5) and adds the parts to the chunk's keyword index and to the query, then compares BM25
nDCG@10 / recall@10 with the plain index on the 1,190 German XQuAD questions.
"""

from __future__ import annotations

import re
import statistics
import tempfile
from pathlib import Path

from enclave.config import Settings
from enclave.pipeline.wiring import Enclave
from enclave.workshop.evaluation import EVAL_USER, Evaluator, load_squad, ndcg_at_k, recall_at_k

HERE = Path(__file__).resolve().parent


def compound_parts(text: str) -> str:
    from compound_split import char_split

    parts = []
    for word in re.findall(r"\w{10,}", text):
        score, head, tail = char_split.split_compound(word)[0]
        if score > 0.5:
            parts += [head, tail]
    return " ".join(parts)


def measure(evaluator: Evaluator, data, expand: bool) -> dict[str, float]:
    store = evaluator.enclave.store
    viewer = store.viewer(EVAL_USER)
    ndcg, recall = [], []
    for qid, query in data.queries.items():
        q = f"{query} {compound_parts(query)}" if expand else query
        ranked = evaluator.documents_ranked([i for i, _ in store.keyword_search(viewer, q, 100)])
        ndcg.append(ndcg_at_k(ranked, data.qrels[qid], 10))
        recall.append(recall_at_k(ranked, data.qrels[qid], 10))
    return {"ndcg@10": statistics.mean(ndcg), "recall@10": statistics.mean(recall)}


def main() -> None:
    data, _ = load_squad(HERE.parents[1] / "shared/datasets/xquad/xquad.de.json")
    with (
        tempfile.TemporaryDirectory() as tmp,
        Enclave(Settings.load(data_dir=Path(tmp) / "data")) as enclave,
    ):
        evaluator = Evaluator(enclave)
        evaluator.index(data, Path(tmp))
        plain = measure(evaluator, data, expand=False)
        with enclave.store.connection() as conn, conn.transaction():
            rows = conn.execute("select id, text from chunks where lang = 'german'::regconfig")
            for row in rows.fetchall():
                conn.execute(
                    "update chunks set tsv = tsv || to_tsvector('german', %s) where id = %s",
                    [compound_parts(row["text"]), row["id"]],
                )
            ids = [r["id"] for r in conn.execute("select id from documents").fetchall()]
            conn.execute("delete from postings")
            enclave.store.index_chunks(ids)
        split = measure(evaluator, data, expand=True)
    print("| BM25 on XQuAD de (1,190 questions) | nDCG@10 | recall@10 |")
    print("|---|---:|---:|")
    for name, m in (("plain (stemming + folding)", plain), ("+ compound parts", split)):
        print(f"| {name} | {m['ndcg@10']:.3f} | {m['recall@10']:.3f} |")


if __name__ == "__main__":
    main()
