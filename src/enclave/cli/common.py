"""What every command shares: the options defined once, opening an Enclave, output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from enclave.config import ConfigError, Settings
from enclave.pipeline.access import AccessError
from enclave.pipeline.entities import page_mark

if TYPE_CHECKING:  # the pipeline loads on first use: `--help` and server calls stay fast
    from enclave.pipeline.wiring import Enclave

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory (default: $ENCLAVE_DATA_DIR, then ~/.local/share/enclave).",
        show_default=False,
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
AsUser = Annotated[str, typer.Option("--as", help="The user on whose behalf to read.")]
K = Annotated[int, typer.Option("-k", "--k", min=1, max=100, help="Number of results.")]
DocumentRef = Annotated[str, typer.Argument(help="Document id, path or file name.")]
CreatePrincipals = Annotated[
    bool,
    typer.Option(
        "--create-principals",
        help="Create users and groups named in --allow that do not exist yet (otherwise an "
        "unknown name is refused: a name shared under before its account exists would pass "
        "to whoever later gets it).",
    ),
]


def load_settings(data_dir: Path | None, **overrides: Any) -> Settings:
    """Settings for this command: environment, then its flags."""
    return Settings.load(data_dir=data_dir, **overrides)


@contextmanager
def reported(as_json: bool) -> Iterator[None]:
    """Known errors become a message (on stderr, and as JSON with --json) and exit code 2."""
    from enclave.pipeline.llm import LLMError

    try:
        yield
    except (ConfigError, AccessError, LLMError) as exc:
        if as_json:
            print(json.dumps({"error": str(exc)}))
        else:
            err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


@contextmanager
def enclave(data_dir: Path | None, as_json: bool, **overrides: Any) -> Iterator[Enclave]:
    """An Enclave for one command; known errors become a message and exit code 2."""
    from enclave.pipeline.wiring import Enclave

    with reported(as_json), Enclave(load_settings(data_dir, **overrides)) as instance:
        yield instance


def progress_bars(as_json: bool) -> Progress:
    """Progress on stderr (never in the way of --json on stdout)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=as_json,
    )


def emit(data: dict[str, Any]) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def where(hit: dict[str, Any]) -> str:
    """Where a hit (its JSON form) stands: file, page, headings."""
    parts = [hit["file_name"]]
    if hit["page"] is not None:
        parts.append(page_mark(hit["page"], hit.get("page_unit", "page")))
    if hit["heading_path"]:
        parts.append(" › ".join(hit["heading_path"]))
    return ", ".join(parts)


def counted(n: int, noun: str) -> str:
    """'1 document', '2 documents'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def excerpt(text: str, limit: int = 240) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def warn_unknown(instance: Enclave, user: str) -> None:
    if not instance.store.user_exists(user):
        err.print(f"[yellow]warning:[/yellow] unknown user {user!r}: no documents are visible")
