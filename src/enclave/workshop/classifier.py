"""Training text classifiers: an encoder with a classification head, and a TF-IDF baseline.

Training: stratified train / validation / test split, AdamW with a linear schedule, accuracy
and macro-F1 on the validation set after each epoch, early stopping on validation F1 (the
best epoch's weights are kept), final numbers on the untouched test split next to a TF-IDF +
linear SVM baseline trained on the same split, and a confusion matrix plot.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enclave.pipeline.classification import DataError, encode
from enclave.pipeline.embedding import embedding_model_path
from enclave.workshop.runs import Run, plot_curves, seed_everything, training_device


@dataclass(frozen=True)
class Example:
    text: str
    label: str


def load_examples(path: Path, text_column: str = "text", label_column: str = "label") -> list:
    """Labelled texts from a CSV (with a header) or JSONL file."""
    if not path.is_file():
        raise DataError(f"{path} is not a file")
    if path.suffix.lower() in (".jsonl", ".json"):
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{number}: not JSON ({exc.msg})") from exc
    else:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    examples = []
    for number, row in enumerate(rows, start=1):
        if text_column not in row or label_column not in row:
            raise DataError(
                f"{path}: row {number} has no {text_column!r} or {label_column!r} "
                f"(columns: {', '.join(row)})"
            )
        text, label = str(row[text_column] or "").strip(), str(row[label_column] or "").strip()
        if text and label:
            examples.append(Example(text, label))
    if len({e.label for e in examples}) < 2:
        raise DataError(f"{path}: at least two different labels are needed")
    return examples


def split_examples(
    examples: Sequence[Example], validation: float, test: float, seed: int
) -> tuple[list[Example], list[Example], list[Example]]:
    """Stratified train / validation / test split (plain random where a class is too small)."""
    from sklearn.model_selection import train_test_split

    def cut(items: list[Example], fraction: float) -> tuple[list[Example], list[Example]]:
        labels = [e.label for e in items]
        counts = {label: labels.count(label) for label in labels}
        stratify = labels if min(counts.values()) >= 2 else None
        try:
            a, b = train_test_split(items, test_size=fraction, random_state=seed, stratify=stratify)
        except ValueError:  # fewer examples in the cut than classes
            a, b = train_test_split(items, test_size=fraction, random_state=seed)
        return list(a), list(b)

    rest, test_set = cut(list(examples), test)
    train, validation_set = cut(rest, validation / (1 - test))
    return train, validation_set, test_set


def scores(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": round(float(accuracy_score(truth, predicted)), 4),
        "macro_f1": round(float(f1_score(truth, predicted, average="macro", zero_division=0)), 4),
    }


def tfidf_baseline(train: Sequence[Example], test: Sequence[Example]) -> dict[str, float]:
    """TF-IDF (word 1-2 grams) + linear SVM: the reference a fine-tuned model must beat."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LinearSVC())
    model.fit([e.text for e in train], [e.label for e in train])
    return scores([e.label for e in test], list(model.predict([e.text for e in test])))


class _Training:
    """A sequence-classification model being fine-tuned, with its tokenizer and labels."""

    def __init__(self, base: str, labels: list[str], learning_rate: float, steps: int):
        import torch
        from transformers import (
            AutoModelForSequenceClassification,
            AutoTokenizer,
            get_linear_schedule_with_warmup,
        )

        self.labels = labels
        self.index = {label: i for i, label in enumerate(labels)}
        path = embedding_model_path(base, "--base")
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=self.index
        )
        self.device = training_device()
        self.model.to(self.device)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=learning_rate, weight_decay=0.01
        )
        self.schedule = get_linear_schedule_with_warmup(self.optimizer, int(0.1 * steps), steps)

    def epoch(self, train: Sequence[Example], batch_size: int, generator: Any) -> float:
        """One pass over train in a seeded random order; the mean training loss."""
        import torch

        self.model.train()
        order = torch.randperm(len(train), generator=generator).tolist()
        total = 0.0
        for start in range(0, len(order), batch_size):
            items = [train[i] for i in order[start : start + batch_size]]
            batch = encode(self.tokenizer, [e.text for e in items], self.device)
            target = torch.tensor([self.index[e.label] for e in items], device=self.device)
            loss = self.model(**batch, labels=target).loss
            loss.backward()
            self.optimizer.step()
            self.schedule.step()
            self.optimizer.zero_grad()
            total += float(loss.detach()) * len(items)
        return total / len(train)

    def predict(self, items: Sequence[Example]) -> list[str]:
        import torch

        self.model.eval()
        out: list[str] = []
        with torch.no_grad():
            for start in range(0, len(items), 64):
                texts = [e.text for e in items[start : start + 64]]
                logits = self.model(**encode(self.tokenizer, texts, self.device)).logits
                out += [self.labels[int(i)] for i in logits.argmax(-1)]
        return out

    def state(self) -> dict[str, Any]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def save(self, folder: Path, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state)
        self.model.save_pretrained(str(folder))
        self.tokenizer.save_pretrained(str(folder))


def train_classifier(
    examples: Sequence[Example],
    run: Run,
    base: str = "all-MiniLM-L6-v2",
    epochs: int = 10,
    batch_size: int = 16,
    learning_rate: float = 5e-5,
    patience: int = 2,
    validation: float = 0.15,
    test: float = 0.15,
    seed: int = 0,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Fine-tune base with a classification head; returns metrics (model in run/model)."""
    import torch

    seed_everything(seed)
    train, val, held_out = split_examples(examples, validation, test, seed)
    labels = sorted({e.label for e in examples})
    steps = -(-len(train) // batch_size) * epochs
    training = _Training(base, labels, learning_rate, steps)
    generator = torch.Generator().manual_seed(seed)
    history: list[dict[str, Any]] = []
    best_f1, best_state, stale = -1.0, None, 0
    for epoch in range(1, epochs + 1):
        loss = training.epoch(train, batch_size, generator)
        entry = {"epoch": epoch, "train_loss": round(loss, 4)}
        val_scores = scores([e.label for e in val], training.predict(val))
        entry |= {f"val_{k}": v for k, v in val_scores.items()}
        history.append(entry)
        if on_epoch:
            on_epoch(entry)
        if entry["val_macro_f1"] > best_f1:
            best_f1, best_state, stale = entry["val_macro_f1"], training.state(), 0
        else:
            stale += 1
            if stale >= patience:
                break
    assert best_state is not None
    model_dir = run.folder / "model"
    training.save(model_dir, best_state)
    predicted, truth = training.predict(held_out), [e.label for e in held_out]
    _plots(run.folder, history, truth, predicted, labels)
    return {
        "model": str(model_dir),
        "base": base,
        "device": training.device,
        "labels": labels,
        "examples": {"train": len(train), "validation": len(val), "test": len(held_out)},
        "epochs": history,
        "best_epoch": max(history, key=lambda h: h["val_macro_f1"])["epoch"],
        "test": scores(truth, predicted),
        "baseline_tfidf_svm_test": tfidf_baseline(train, held_out),
    }


def _plots(
    folder: Path,
    history: list[dict[str, Any]],
    truth: Sequence[str],
    predicted: Sequence[str],
    labels: list[str],
) -> None:
    confusion_plot(folder / "confusion.png", truth, predicted, labels)
    plot_curves(
        folder / "curves.png",
        {
            "train loss": [(h["epoch"], h["train_loss"]) for h in history],
            "val macro-F1": [(h["epoch"], h["val_macro_f1"]) for h in history],
        },
        "classifier training",
    )


def confusion_plot(
    path: Path, truth: Sequence[str], predicted: Sequence[str], labels: list
) -> Path:
    """The test split's confusion matrix (rows: true label, columns: predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    size = min(4 + 0.25 * len(labels), 20)
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay.from_predictions(
        truth, predicted, labels=labels, ax=ax, colorbar=False, include_values=len(labels) <= 12
    )
    ax.tick_params(axis="x", labelrotation=90)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
