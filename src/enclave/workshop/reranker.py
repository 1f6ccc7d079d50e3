"""The workshop's reranker step: fine-tune a cross-encoder, measured as reranking of the
hybrid top-N through the product's own Retriever."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from enclave.pipeline.embedding import embedding_model_path
from enclave.pipeline.reranking import Reranker
from enclave.pipeline.retrieval import Retriever
from enclave.pipeline.store import Viewer
from enclave.pipeline.wiring import Enclave
from enclave.workshop.runs import Run, seed_everything, training_device
from enclave.workshop.training_data import PairSet
from enclave.workshop.tuning import (
    EvalQuery,
    plot_loss,
    ranking_metrics,
    test_queries,
    trainer_arguments,
)


def rerank_rankings(
    enclave: Enclave,
    viewer: Viewer,
    queries: Sequence[EvalQuery],
    candidates: int,
    reranker: Reranker | None,
) -> list[list[int]]:
    """Document rankings of the hybrid top-`candidates`, reranked by a cross-encoder if given.

    Measured through the product's own retriever, so evaluation and search rerank alike.
    """
    settings = enclave.settings
    retriever = Retriever(
        enclave.store, enclave.embedder, reranker, settings.rrf_k, candidates, enclave.dense_weight
    )
    return [
        list(dict.fromkeys(h.document_id for h in retriever.search(viewer, q.text, k=candidates)))
        for q in queries
    ]


def tune_reranker(
    enclave: Enclave,
    user: str,
    base: str,
    pairs: PairSet,
    run: Run,
    epochs: int = 2,
    batch_size: int = 16,
    learning_rate: float = 5e-5,
    candidates: int = 30,
    seed: int = 0,
    extra_queries: Sequence[EvalQuery] = (),
) -> dict[str, Any]:
    """Fine-tune a cross-encoder (binary cross-entropy on positives and mined negatives).

    Measured as reranking of the hybrid top-`candidates` for the held-out queries, as `user`.
    """
    if not pairs.train:
        raise ValueError("no training pairs: build them with `enclave tune pairs`")
    seed_everything(seed)
    viewer = enclave.store.viewer(user)
    rows = _reranker_rows(pairs)
    path = embedding_model_path(base, "--base")
    model_dir, trainer = _train_cross_encoder(
        path, rows, run, epochs, batch_size, learning_rate, seed
    )
    metrics: dict[str, Any] = {
        "model": str(model_dir),
        "base": base,
        "train_rows": len(rows["label"]),
    }
    rerankers = {
        # Without any configured reranker: the baseline is the plain hybrid ranking.
        "hybrid": None,
        # The base with a fresh (seeded) head: shows what the training itself added.
        "hybrid+untuned cross-encoder": Reranker(path),
        "hybrid+tuned cross-encoder": Reranker(str(model_dir)),
    }
    evaluations = {"test_pairs": test_queries(pairs), "extra": list(extra_queries)}
    for name, queries in evaluations.items():
        if queries:
            metrics[name] = _rerank_metrics(enclave, viewer, queries, candidates, rerankers)
    metrics["loss"] = plot_loss(run, trainer, "cross-encoder fine-tuning")
    return metrics


def _train_cross_encoder(
    path: str,
    rows: dict[str, list[Any]],
    run: Run,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
) -> tuple[Path, Any]:
    """Train a one-logit cross-encoder from path on the rows; (saved model folder, trainer)."""
    from datasets import Dataset
    from sentence_transformers.cross_encoder import (
        CrossEncoder,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    model = CrossEncoder(path, num_labels=1, device=training_device())
    args = trainer_arguments(
        CrossEncoderTrainingArguments,
        run,
        len(rows["label"]),
        epochs,
        batch_size,
        learning_rate,
        seed,
    )
    positives = sum(rows["label"])
    trainer = CrossEncoderTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict(rows),
        # Weigh the positives up to the negatives' count, so neither class dominates.
        loss=BinaryCrossEntropyLoss(
            model, pos_weight=_pos_weight(len(rows["label"]) - positives, positives)
        ),
    )
    trainer.train()
    model_dir = run.folder / "model"
    model.save(str(model_dir))
    return model_dir, trainer


def _rerank_metrics(
    enclave: Enclave,
    viewer: Viewer,
    queries: Sequence[EvalQuery],
    candidates: int,
    rerankers: dict[str, Reranker | None],
) -> dict[str, Any]:
    return {
        label: ranking_metrics(
            rerank_rankings(enclave, viewer, queries, candidates, reranker), queries
        )
        for label, reranker in rerankers.items()
    }


def _reranker_rows(pairs: PairSet) -> dict[str, list[Any]]:
    """(query, passage, label) rows: each pair's positive (1) and its mined negatives (0)."""
    texts = {i: text for i, (_, text) in pairs.corpus.items()}
    rows: dict[str, list[Any]] = {"query": [], "passage": [], "label": []}
    for pair in pairs.train:
        rows["query"].append(pair.query)
        # Every passage in the form the retriever scores it (title and headings first);
        # a heading pair's bare positive would let the model learn the format, not relevance.
        positive = pair.positive if pair.origin == "sentence" else texts[pair.chunk_id]
        rows["passage"].append(positive)
        rows["label"].append(1.0)
        for negative_id in pair.negative_ids:
            rows["query"].append(pair.query)
            rows["passage"].append(texts[negative_id])
            rows["label"].append(0.0)
    return rows


def _pos_weight(negatives: float, positives: float) -> Any:
    import torch

    return torch.tensor(max(negatives, 1.0) / max(positives, 1.0))
