"""`enclave tune classifier` and `enclave classify`: text classifiers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from enclave.cli.common import (
    DataDir,
    JsonFlag,
    emit,
    err,
    load_settings,
    out,
)
from enclave.cli.tune import Seed, command_config, finish_run, tune_app


@tune_app.command("classifier")
def tune_classifier(
    ctx: typer.Context,
    data: Annotated[
        Path, typer.Option("--data", help="Labelled CSV (with header) or JSONL.", exists=True)
    ],
    text_column: Annotated[str, typer.Option("--text-column")] = "text",
    label_column: Annotated[str, typer.Option("--label-column")] = "label",
    base: Annotated[str, typer.Option("--base", help="Encoder to start from.")] = (
        "all-MiniLM-L6-v2"
    ),
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="At most this many.")] = 10,
    patience: Annotated[
        int, typer.Option("--patience", min=1, help="Stop after N epochs without better F1.")
    ] = 2,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 16,
    learning_rate: Annotated[float, typer.Option("--learning-rate")] = 5e-5,
    seed: Seed = 0,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Fine-tune a text classifier; accuracy/F1 per epoch, early stopping, TF-IDF baseline."""
    from enclave.pipeline.classification import DataError
    from enclave.workshop.classifier import load_examples, train_classifier
    from enclave.workshop.runs import Run

    try:
        examples = load_examples(data, text_column, label_column)
    except DataError as exc:
        raise typer.BadParameter(str(exc), param_hint="--data") from exc
    settings = load_settings(data_dir)
    run = Run.create(settings.data_dir / "runs", "classifier", command_config(ctx))

    metrics = train_classifier(
        examples,
        run,
        base,
        epochs,
        batch_size,
        learning_rate,
        patience,
        seed=seed,
        on_epoch=None if as_json else print_epoch,
    )
    test, baseline = metrics["test"], metrics["baseline_tfidf_svm_test"]
    summary = (
        f"classifier: test accuracy {test['accuracy']:.3f}, macro-F1 {test['macro_f1']:.3f} "
        f"(TF-IDF + linear SVM: {baseline['accuracy']:.3f}, {baseline['macro_f1']:.3f}); "
        f"best epoch {metrics['best_epoch']}"
    )
    finish_run(run, metrics, summary, as_json)


def print_epoch(entry: dict[str, Any]) -> None:
    """One line per epoch on stderr, so a long training run shows it is alive."""
    err.print(
        f"epoch {entry['epoch']}: loss {entry['train_loss']:.4f}, validation accuracy "
        f"{entry['val_accuracy']:.3f}, macro-F1 {entry['val_macro_f1']:.3f}"
    )


def classify(
    model: Annotated[str, typer.Option("--model", help="A `tune classifier` model folder.")],
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to classify.")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="Classify this document's text.", exists=True)
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Apply a fine-tuned classifier to texts or a document."""
    from enclave.pipeline.classification import DataError, TextClassifier
    from enclave.pipeline.loaders import LoadError, load

    inputs = list(texts or [])
    try:
        if file:
            inputs.append(load(file, 50 * 2**20).text)
        if not inputs:
            raise typer.BadParameter("give texts or --file")
        classifier = TextClassifier(model)
    except (DataError, LoadError, OSError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    results = [
        {"label": label, "score": round(score, 4)} for label, score in classifier.predict(inputs)
    ]
    if as_json:
        emit({"model": classifier.name, "results": results})
    else:
        for result in results:
            out.print(f"{result['label']}\t{result['score']:.3f}")
