"""`enclave eval ...`: retrieval and answer quality on BEIR / SQuAD-format data."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from enclave.cli.common import (
    DataDir,
    JsonFlag,
    K,
    emit,
    enclave,
    out,
)

if TYPE_CHECKING:
    from enclave.pipeline.wiring import Enclave

eval_app = typer.Typer(
    help="Measure retrieval and answer quality on BEIR / SQuAD-format data.", no_args_is_help=True
)


Dataset = Annotated[
    Path, typer.Option("--dataset", help="A BEIR folder or a SQuAD-format JSON file.")
]
Questions = Annotated[
    Path | None,
    typer.Option("--questions", help="SQuAD file with the same question ids in another language."),
]
Limit = Annotated[int | None, typer.Option("--limit", min=1, help="Use only the first N queries.")]


@contextmanager
def evaluation(data_dir: Path | None, as_json: bool) -> Iterator[tuple[Enclave, Path]]:
    """An Enclave on a scratch data directory unless one is given: evaluations index a corpus."""
    with tempfile.TemporaryDirectory(prefix="enclave-eval-") as scratch:
        work = Path(scratch)
        with enclave(data_dir or work / "data", as_json) as instance:
            yield instance, work


@eval_app.command("retrieval")
def eval_retrieval(
    dataset: Dataset,
    questions: Questions = None,
    limit: Limit = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for JSON and chart.")] = Path(
        "eval-results"
    ),
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """nDCG@10, recall@10/@100, MRR@10 and latency for BM25, dense, hybrid (and rerank)."""
    from enclave.workshop.evaluation import Evaluator, load_dataset, retrieval_table, save_report

    corpus, _ = load_dataset(dataset, questions)
    if limit:
        corpus.queries = dict(list(corpus.queries.items())[:limit])
    with evaluation(data_dir, as_json) as (instance, work):
        evaluator = Evaluator(instance)
        evaluator.index(corpus, work)
        report = evaluator.retrieval(corpus)
    json_path, png_path = save_report(report, out)
    if as_json:
        emit(report.__dict__ | {"json": str(json_path), "chart": str(png_path)})
    else:
        print(retrieval_table(report))
        print(f"\nwritten: {json_path}, {png_path}")


@eval_app.command("qa")
def eval_qa(
    dataset: Dataset,
    questions: Questions = None,
    limit: Limit = 50,
    k: K = 5,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Gold-passage hit@k, answer exact match / F1 and citation precision (runs the LLM)."""
    from enclave.workshop.evaluation import Evaluator, load_dataset

    corpus, items = load_dataset(dataset, questions)
    if not items:
        raise typer.BadParameter(
            "QA needs a SQuAD-format file with answers", param_hint="--dataset"
        )
    with evaluation(data_dir, as_json) as (instance, work):
        evaluator = Evaluator(instance)
        evaluator.index(corpus, work)
        result = evaluator.qa(items[:limit], k=k)
    if as_json:
        emit({"dataset": corpus.name} | result)
    else:
        for name, value in result.items():
            out.print(
                f"{name:>24}: {value:.3f}" if isinstance(value, float) else f"{name:>24}: {value}"
            )
