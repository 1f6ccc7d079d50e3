"""Text classifiers: a fine-tuned encoder with a classification head, and a TF-IDF baseline.

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

import numpy as np

from enclave.embedding import embedding_model_path
from enclave.runs import Run, plot_curves, seed_everything, training_device

MAX_TOKENS = 256


class DataError(ValueError):
    """The labelled data cannot be used (missing file or column, too few examples)."""


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


class TextClassifier:
    """A saved classifier (a transformers sequence-classification model) applied to texts."""

    def __init__(self, path: str | Path, device: str = "cpu"):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        folder = Path(path).expanduser()
        if not (folder / "config.json").is_file():
            raise DataError(f"{folder} holds no classifier (config.json missing)")
        self.name = str(folder)
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.model = AutoModelForSequenceClassification.from_pretrained(str(folder)).to(device)
        self.model.eval()
        self.device = device
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]

    def probabilities(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        import torch

        out = []
        with torch.no_grad():
            for start in range(0, len(texts), batch_size):
                batch = self.tokenizer(
                    list(texts[start : start + batch_size]),
                    truncation=True,
                    max_length=MAX_TOKENS,
                    padding=True,
                    return_tensors="pt",
                ).to(self.device)
                out.append(torch.softmax(self.model(**batch).logits, dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)))

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(label, probability) per text."""
        probs = self.probabilities(texts)
        return [(self.labels[int(p.argmax())], float(p.max())) for p in probs]


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
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        get_linear_schedule_with_warmup,
    )

    seed_everything(seed)
    train, val, held_out = split_examples(examples, validation, test, seed)
    labels = sorted({e.label for e in examples})
    index = {label: i for i, label in enumerate(labels)}
    path = embedding_model_path(base, "--base")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(
        path,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id=index,
    )
    device = training_device()
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    steps = -(-len(train) // batch_size) * epochs
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.1 * steps), steps)
    generator = torch.Generator().manual_seed(seed)

    def predict(items: Sequence[Example]) -> list[str]:
        model.eval()
        out: list[str] = []
        with torch.no_grad():
            for start in range(0, len(items), 64):
                batch = tokenizer(
                    [e.text for e in items[start : start + 64]],
                    truncation=True,
                    max_length=MAX_TOKENS,
                    padding=True,
                    return_tensors="pt",
                ).to(device)
                out += [labels[int(i)] for i in model(**batch).logits.argmax(-1)]
        return out

    history: list[dict[str, Any]] = []
    best_f1, best_state, stale = -1.0, None, 0
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(train), generator=generator).tolist()
        total = 0.0
        for start in range(0, len(order), batch_size):
            batch_items = [train[i] for i in order[start : start + batch_size]]
            batch = tokenizer(
                [e.text for e in batch_items],
                truncation=True,
                max_length=MAX_TOKENS,
                padding=True,
                return_tensors="pt",
            ).to(device)
            target = torch.tensor([index[e.label] for e in batch_items], device=device)
            loss = model(**batch, labels=target).loss
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            total += float(loss.detach()) * len(batch_items)
        entry = {"epoch": epoch, "train_loss": round(total / len(train), 4)}
        entry |= {f"val_{k}": v for k, v in scores([e.label for e in val], predict(val)).items()}
        history.append(entry)
        if on_epoch:
            on_epoch(entry)
        if entry["val_macro_f1"] > best_f1:
            best_f1, stale = entry["val_macro_f1"], 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if stale >= patience:
                break
    assert best_state is not None
    model.load_state_dict(best_state)
    model_dir = run.folder / "model"
    model.save_pretrained(str(model_dir))
    tokenizer.save_pretrained(str(model_dir))
    predicted = predict(held_out)
    truth = [e.label for e in held_out]
    confusion_plot(run.folder / "confusion.png", truth, predicted, labels)
    plot_curves(
        run.folder / "curves.png",
        {
            "train loss": [(h["epoch"], h["train_loss"]) for h in history],
            "val macro-F1": [(h["epoch"], h["val_macro_f1"]) for h in history],
        },
        "classifier training",
    )
    return {
        "model": str(model_dir),
        "base": base,
        "device": device,
        "labels": labels,
        "examples": {"train": len(train), "validation": len(val), "test": len(held_out)},
        "epochs": history,
        "best_epoch": max(history, key=lambda h: h["val_macro_f1"])["epoch"],
        "test": scores(truth, predicted),
        "baseline_tfidf_svm_test": tfidf_baseline(train, held_out),
    }


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
