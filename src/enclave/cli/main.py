"""The root `enclave` command: global options, and where every command lives."""

from __future__ import annotations

from typing import Any

import typer

from enclave.cli import classify, documents, ingesting, serve
from enclave.cli.acl import acl_app
from enclave.cli.audit import audit_app, purge
from enclave.cli.common import DataDir
from enclave.cli.evaluation import eval_app
from enclave.cli.models import models_app
from enclave.cli.tune import tune_app
from enclave.cli.users import users_app

app = typer.Typer(
    help="Enclave: ask questions of your own documents, with access control, on your own hardware.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root(ctx: typer.Context, data_dir: DataDir = None) -> None:
    """Enclave: ask questions of your own documents, with access control, on your own hardware.

    --data-dir may stand before the command (as with git and docker) or after it.
    """
    if data_dir is not None:
        # The global value becomes the default of every command's own --data-dir.
        ctx.default_map = defaults_for_every_command(ctx.command, {"data_dir": data_dir})


def defaults_for_every_command(group: Any, values: dict[str, Any]) -> dict[str, Any]:
    """A click default map giving every (sub)command of group these option values."""
    return {
        name: defaults_for_every_command(command, values)
        if hasattr(command, "commands")
        else values
        for name, command in group.commands.items()
    }


for command in (
    ingesting.ingest,
    ingesting.worker,
    documents.docs,
    documents.search,
    documents.ask,
):
    app.command()(command)
app.add_typer(users_app, name="users")
app.add_typer(acl_app, name="acl")
app.add_typer(audit_app, name="audit")
app.command()(purge)
app.add_typer(models_app, name="models")
app.command()(serve.demo)
app.command()(serve.serve)
app.add_typer(eval_app, name="eval")
app.command()(ingesting.reindex)
app.add_typer(tune_app, name="tune")
app.command()(classify.classify)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `enclave` script."""
    app(args=argv)
