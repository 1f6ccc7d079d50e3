"""The model workshop on XQuAD: bi-encoder and cross-encoder fine-tuning, before and after.

    .venv/bin/python benchmarks/workshop.py [--xquad DIR] [--languages de en] [--no-llm]

For each language the 240 XQuAD paragraphs are indexed as documents of one user; training
pairs come from those chunks (LLM questions, headings, inverse cloze), 30% of the documents
are held out. Measured on the held-out documents: the synthetic test pairs, and the human
XQuAD questions about those documents (nobody here wrote them), nDCG@10 over the whole corpus.
Writes benchmarks/workshop.md and benchmarks/workshop/*.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from enclave.config import Settings
from enclave.pipeline.reranking import Reranker
from enclave.pipeline.retrieval import passage
from enclave.pipeline.wiring import Enclave
from enclave.workshop.evaluation import EVAL_USER, Evaluator, load_squad
from enclave.workshop.reranker import rerank_rankings, tune_reranker
from enclave.workshop.runs import Run
from enclave.workshop.training_data import PairSet, mine_negatives
from enclave.workshop.tuning import EvalQuery, build_pairs, ranking_metrics, tune_embedder

HERE = Path(__file__).resolve().parent
RERANK_DEPTHS = (10, 20, 30, 50)


def rerank_sweep(enclave: Enclave, model: str, queries: list[EvalQuery]) -> list[dict]:
    """nDCG@10 and per-query latency of reranking the hybrid top-N, per N."""
    viewer = enclave.store.viewer(EVAL_USER)
    rows = []
    reranker = Reranker(model)
    for depth in RERANK_DEPTHS:
        times = []
        rankings = []
        for query in queries:
            start = time.perf_counter()
            rankings += rerank_rankings(enclave, viewer, [query], depth, reranker)
            times.append((time.perf_counter() - start) * 1000)
        metrics = ranking_metrics(rankings, queries)
        times.sort()
        rows.append(
            {
                "n": depth,
                "ndcg@10": metrics["ndcg@10"],
                "p50_ms": round(statistics.median(times), 1),
                "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
            }
        )
        print(rows[-1], flush=True)
    return rows


def saved_pairs(enclave: Enclave, folder: Path, negatives: int) -> PairSet:
    """Pairs of an earlier run on the same index (ids are reproducible), negatives mined anew."""
    pairs = PairSet.load(folder)
    viewer = enclave.store.viewer(EVAL_USER)
    current = {h.chunk_id: passage(h) for h in enclave.store.readable_chunks(viewer)}
    if current != {i: text for i, (_, text) in pairs.corpus.items()}:
        raise SystemExit(f"{folder} was built on a different index: run without --reuse-pairs")
    pairs.train = [mine_negatives(p, enclave.retriever, viewer, negatives) for p in pairs.train]
    return pairs


def run_language(
    lang: str, xquad: Path, use_llm: bool, out: Path, reuse: bool, negatives: int
) -> dict:
    data, items = load_squad(xquad / f"xquad.{lang}.json")
    data.name = f"xquad.{lang}"
    with (
        tempfile.TemporaryDirectory() as tmp,
        Enclave(Settings.load(data_dir=Path(tmp) / "data")) as enclave,
    ):
        evaluator = Evaluator(enclave)
        evaluator.index(data, Path(tmp))
        runs = Path(tmp) / "runs"
        keep = out / f"pairs-{lang}"
        start = time.perf_counter()
        if reuse and keep.is_dir():
            pairs = saved_pairs(enclave, keep, negatives)
            stats = json.loads((keep / "stats.json").read_text())
        else:
            pairs, stats = build_pairs(
                enclave, EVAL_USER, keep, use_llm, negatives=negatives, test_fraction=0.3, seed=0
            )
            stats["seconds"] = round(time.perf_counter() - start, 1)
            (keep / "stats.json").write_text(json.dumps(stats))
        print(stats, flush=True)
        enclave_id = {dataset_id: doc for doc, dataset_id in evaluator.doc_of.items()}
        test_docs = {p.document_id for p in pairs.test}
        human = [
            EvalQuery(i.question, enclave_id[i.doc_id])
            for i in items
            if enclave_id[i.doc_id] in test_docs
        ]
        start = time.perf_counter()
        embedder = tune_embedder(
            "all-MiniLM-L6-v2",
            pairs,
            Run.create(runs, "embedder", {}),
            epochs=1,
            seed=0,
            extra_queries=human,
        )
        embedder["seconds"] = round(time.perf_counter() - start, 1)
        print({k: embedder[k] for k in ("before", "after", "seconds")}, flush=True)
        start = time.perf_counter()
        reranker = tune_reranker(
            enclave,
            EVAL_USER,
            "all-MiniLM-L6-v2",
            pairs,
            Run.create(runs, "reranker", {}),
            seed=0,
            extra_queries=human,
        )
        reranker["seconds"] = round(time.perf_counter() - start, 1)
        print({k: reranker[k] for k in ("test_pairs", "extra", "seconds")}, flush=True)
        sweep = rerank_sweep(enclave, reranker["model"], human)
        # Keep the tuned models for other benchmarks (quality.py --reranker).
        keep = out / f"models-{lang}"
        for name, model in (("embedder", embedder["model"]), ("reranker", reranker["model"])):
            shutil.rmtree(keep / name, ignore_errors=True)
            shutil.copytree(model, keep / name)
        result = {
            "pairs": stats,
            "human_queries": len(human),
            "embedder": embedder,
            "reranker": reranker,
            "rerank_sweep": sweep,
        }
    (out / f"{lang}.json").write_text(json.dumps(result, indent=2, default=str))
    return result


def table(results: dict[str, dict]) -> list[str]:
    lines = [
        "| language | queries | measure | before | after |",
        "|---|---|---|---:|---:|",
    ]
    for lang, r in results.items():
        for name, label in (("test_pairs", "synthetic test pairs"), ("extra", "human questions")):
            b, a = r["embedder"]["before"][name], r["embedder"]["after"][name]
            lines.append(
                f"| {lang} | {label} ({b['queries']}) | dense nDCG@10 | "
                f"{b['ndcg@10']:.3f} | {a['ndcg@10']:.3f} |"
            )
        for name, label in (("test_pairs", "synthetic test pairs"), ("extra", "human questions")):
            m = r["reranker"][name]
            lines.append(
                f"| {lang} | {label} ({m['hybrid']['queries']}) | hybrid → +tuned "
                f"cross-encoder nDCG@10 (untuned: "
                f"{m['hybrid+untuned cross-encoder']['ndcg@10']:.3f}) | "
                f"{m['hybrid']['ndcg@10']:.3f} | "
                f"{m['hybrid+tuned cross-encoder']['ndcg@10']:.3f} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--xquad", type=Path, default=HERE.parents[1] / "shared/datasets/xquad")
    parser.add_argument("--languages", nargs="+", default=["de", "en"])
    parser.add_argument("--no-llm", action="store_true")
    parser.add_argument("--negatives", type=int, default=3, help="hard negatives per pair")
    parser.add_argument(
        "--reuse-pairs",
        action="store_true",
        help="reuse benchmarks/workshop/pairs-<lang> (LLM questions are slow)",
    )
    args = parser.parse_args()
    out = HERE / "workshop"
    out.mkdir(exist_ok=True)
    results = {
        lang: run_language(lang, args.xquad, not args.no_llm, out, args.reuse_pairs, args.negatives)
        for lang in args.languages
    }
    lines = ["# Model workshop on XQuAD", "", "Generated by `benchmarks/workshop.py`.", ""]
    lines += table(results)
    for lang, r in results.items():
        lines += [
            "",
            f"**{lang}**: pairs {json.dumps(r['pairs'])}; embedder "
            f"{r['embedder']['seconds']} s, reranker {r['reranker']['seconds']} s",
            "",
            "| rerank top-N | nDCG@10 | p50 ms | p95 ms |",
            "|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {s['n']} | {s['ndcg@10']:.3f} | {s['p50_ms']} | {s['p95_ms']} |"
            for s in r["rerank_sweep"]
        ]
    (HERE / "workshop.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
