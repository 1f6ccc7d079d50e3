"""`enclave serve` and `enclave demo`."""

from __future__ import annotations

import signal
import sys
from typing import Annotated

import typer

from enclave.cli.common import (
    DataDir,
    JsonFlag,
    emit,
    enclave,
    err,
    out,
)


def demo(data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Ingest the built-in demo corpus and show two users getting different answers."""
    from enclave.demo import run_demo

    with enclave(data_dir, as_json) as instance:
        run_demo(instance, out if not as_json else None, emit if as_json else None)


def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    data_dir: DataDir = None,
) -> None:
    """Run the HTTP API, the OpenAI-compatible API and the web UI."""
    import uvicorn

    from enclave.cli.remote import announced
    from enclave.server.accounts import Accounts
    from enclave.server.app import create_app

    with enclave(data_dir, False) as instance:
        if not Accounts(instance.store).admins():
            err.print(
                "[yellow]no admin yet:[/yellow] create one with "
                "`enclave users add NAME --admin --password`"
            )
        instance.warm_up()
        app = create_app(instance)
        # uvicorn raises SIGTERM again after its graceful shutdown; exit normally then, so
        # that the announcement below is removed.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        # The CLI's search, ask and docs use this server's warm models while it runs.
        with announced(instance.settings, host, port, app.state.services.operator_key):
            # On SIGTERM, open requests get 10 s to finish; streams still running then are
            # cancelled (which closes their generators and frees the model), and it exits.
            uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=10)
