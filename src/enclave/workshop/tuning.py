"""The model workshop's retrieval steps: training pairs, bi-encoder and cross-encoder tuning.

Each step measures before and after on the held-out documents' queries (nDCG@10 over every
passage the user may read) and writes a run folder (runs.py).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import Progress

from enclave.pipeline.embedding import embedding_model_path
from enclave.pipeline.retrieval import passage
from enclave.pipeline.wiring import Enclave
from enclave.workshop.evaluation import mrr_at_k, ndcg_at_k, recall_at_k
from enclave.workshop.runs import Run, plot_curves, seed_everything, training_device
from enclave.workshop.training_data import (
    PairSet,
    heading_pairs,
    llm_pairs,
    mine_negatives,
    sentence_pairs,
    split_by_document,
)


@dataclass(frozen=True)
class EvalQuery:
    """A query and the document that answers it."""

    text: str
    document_id: int


def build_pairs(
    enclave: Enclave,
    user: str,
    out: Path,
    use_llm: bool = True,
    max_chunks: int | None = None,
    negatives: int = 1,
    test_fraction: float = 0.2,
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[PairSet, dict[str, Any]]:
    """Pairs from the chunks `user` may read (and nothing else), split by document."""
    viewer = enclave.store.viewer(user)
    chunks = enclave.store.readable_chunks(viewer)
    if not chunks:
        raise ValueError(f"user {user!r} can read no chunks: nothing to train on")
    rng = random.Random(seed)
    sample = rng.sample(chunks, max_chunks) if max_chunks and max_chunks < len(chunks) else chunks
    pairs = heading_pairs(sample) + sentence_pairs(sample, rng)
    if use_llm:
        task = progress.add_task("LLM questions", total=len(sample)) if progress else None
        pairs += llm_pairs(
            sample,
            enclave.llm,
            (lambda: progress.advance(task)) if progress and task is not None else None,
        )
    train, test, test_docs = split_by_document(pairs, test_fraction, seed)
    task = progress.add_task("mining negatives", total=len(train)) if progress else None
    mined = []
    for pair in train:
        mined.append(mine_negatives(pair, enclave.retriever, viewer, negatives))
        if progress and task is not None:
            progress.advance(task)
    corpus = {h.chunk_id: (h.document_id, passage(h)) for h in chunks}
    pair_set = PairSet(mined, test, corpus)
    pair_set.save(out)
    stats = {
        "chunks_readable": len(chunks),
        "chunks_sampled": len(sample),
        "train_pairs": len(mined),
        "test_pairs": len(test),
        "test_documents": len(test_docs),
        "by_origin": {
            origin: sum(p.origin == origin for p in pairs)
            for origin in ("heading", "sentence", "llm")
        },
        "with_negatives": sum(bool(p.negatives) for p in mined),
    }
    return pair_set, stats


def test_queries(pairs: PairSet) -> list[EvalQuery]:
    return [EvalQuery(p.query, p.document_id) for p in pairs.test]


def ranking_metrics(rankings: Sequence[Sequence[int]], queries: Sequence[EvalQuery]) -> dict:
    """nDCG@10, recall@10, MRR@10 of document rankings (one per query), averaged."""
    out = {"ndcg@10": 0.0, "recall@10": 0.0, "mrr@10": 0.0, "queries": len(queries)}
    for ranking, query in zip(rankings, queries, strict=True):
        ranked = [str(d) for d in ranking]
        relevant = {str(query.document_id): 1}
        out["ndcg@10"] += ndcg_at_k(ranked, relevant, 10)
        out["recall@10"] += recall_at_k(ranked, relevant, 10)
        out["mrr@10"] += mrr_at_k(ranked, relevant, 10)
    for key in ("ndcg@10", "recall@10", "mrr@10"):
        out[key] = round(out[key] / max(len(queries), 1), 4)
    return out


def _documents(chunk_ids: Sequence[int], corpus: dict[int, tuple[int, str]]) -> list[int]:
    """Chunk ranking -> document ranking (each document at its best chunk's place)."""
    return list(dict.fromkeys(corpus[c][0] for c in chunk_ids))


def evaluate_dense(
    model_path: str, corpus: dict[int, tuple[int, str]], queries: Sequence[EvalQuery]
) -> dict:
    """Dense retrieval quality of a bi-encoder over corpus (exact search, in memory)."""
    from enclave.pipeline.embedding import Embedder

    embedder = Embedder(model_path)
    ids = list(corpus)
    passages = embedder.embed_passages([corpus[i][1] for i in ids])
    rankings = []
    for query in queries:
        scores = passages @ embedder.embed_query(query.text)
        top = np.argsort(-scores, kind="stable")[:100]
        rankings.append(_documents([ids[i] for i in top], corpus))
    return ranking_metrics(rankings, queries)


def loss_curve(log_history: list[dict[str, Any]]) -> list[tuple[float, float]]:
    return [(e["step"], round(e["loss"], 4)) for e in log_history if "loss" in e]


def trainer_arguments(
    cls: Any,
    run: Run,
    rows: int,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    **extra: Any,
) -> Any:
    """The settings both sentence-transformers trainers share (no checkpoints, no reporting,
    about 50 loss points per run)."""
    return cls(
        output_dir=str(run.folder / "checkpoints"),
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        warmup_steps=0.1,
        seed=seed,
        data_seed=seed,
        logging_steps=max(1, -(-rows // batch_size) * epochs // 50),
        save_strategy="no",
        report_to="none",
        use_cpu=training_device() == "cpu",
        **extra,
    )


def tune_embedder(
    base: str,
    pairs: PairSet,
    run: Run,
    epochs: int = 1,
    batch_size: int = 32,
    learning_rate: float = 2e-5,
    seed: int = 0,
    extra_queries: Sequence[EvalQuery] = (),
) -> dict[str, Any]:
    """Fine-tune a bi-encoder with MultipleNegativesRankingLoss (in-batch + hard negatives).

    The model is saved to run/model; metrics hold nDCG@10 before and after on the test pairs
    (and on extra_queries, e.g. human questions about the held-out documents).
    """
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

    if not pairs.train:
        raise ValueError("no training pairs: build them with `enclave tune pairs`")
    seed_everything(seed)
    evaluations = {"test_pairs": test_queries(pairs), "extra": list(extra_queries)}
    before = _dense_metrics(base, pairs, evaluations)
    model = SentenceTransformer(embedding_model_path(base, "--base"), device=training_device())
    columns = _mnrl_columns(pairs)
    args = trainer_arguments(
        SentenceTransformerTrainingArguments,
        run,
        len(pairs.train),
        epochs,
        batch_size,
        learning_rate,
        seed,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict(columns),
        loss=MultipleNegativesRankingLoss(model),
    )
    trainer.train()
    model_dir = run.folder / "model"
    model.save(str(model_dir))
    return {
        "model": str(model_dir),
        "base": base,
        "train_pairs": len(pairs.train),
        "hard_negatives": "negative" in columns,
        "before": before,
        "after": _dense_metrics(str(model_dir), pairs, evaluations),
        "loss": plot_loss(run, trainer, "bi-encoder fine-tuning"),
    }


def _dense_metrics(
    model: str, pairs: PairSet, evaluations: dict[str, list[EvalQuery]]
) -> dict[str, Any]:
    return {
        name: evaluate_dense(model, pairs.corpus, queries)
        for name, queries in evaluations.items()
        if queries
    }


def _mnrl_columns(pairs: PairSet) -> dict[str, list[str]]:
    """Anchor, positive (and negative) columns; MNRL needs the same columns in every row,
    so a hard negative only where every pair has one."""
    columns = {
        "anchor": [p.query for p in pairs.train],
        "positive": [p.positive for p in pairs.train],
    }
    if all(p.negatives for p in pairs.train):
        columns["negative"] = [p.negatives[0] for p in pairs.train]
    return columns


def plot_loss(run: Run, trainer: Any, title: str) -> list[tuple[float, float]]:
    """The trainer's loss curve, plotted to run/loss.png."""
    curve = loss_curve(trainer.state.log_history)
    plot_curves(run.folder / "loss.png", {"train loss": curve}, title)
    return curve
