"""`enclave acl ...`: who may read a document."""

from __future__ import annotations

from typing import Annotated

import typer

from enclave.cli.common import (
    DataDir,
    JsonFlag,
    emit,
    enclave,
    out,
)
from enclave.config import ConfigError
from enclave.pipeline.access import Principal
from enclave.pipeline.wiring import Enclave

acl_app = typer.Typer(help="Show or change who may read a document.", no_args_is_help=True)


@acl_app.command("show")
def acl_show(
    document: Annotated[str, typer.Argument(help="Document id, path or file name.")],
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Who may read a document."""
    with enclave(data_dir, as_json) as instance:
        document_id = resolve_document(instance, document)
        entries = instance.store.acl(document_id)
    if as_json:
        emit({"document_id": document_id, "allow": [str(p) for p in entries]})
    else:
        out.print(f"document {document_id}: {', '.join(map(str, entries)) or '(nobody)'}")


@acl_app.command("set")
def acl_set(
    document: Annotated[str, typer.Argument(help="Document id, path or file name.")],
    allow: Annotated[
        list[str], typer.Option("--allow", help="user:NAME or group:NAME (repeatable).")
    ],
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Replace a document's access list."""
    with enclave(data_dir, as_json) as instance:
        document_id = resolve_document(instance, document)
        instance.store.set_acl(document_id, [Principal.parse(a) for a in allow])
        entries = instance.store.acl(document_id)
    if as_json:
        emit({"document_id": document_id, "allow": [str(p) for p in entries]})
    else:
        out.print(f"document {document_id}: {', '.join(map(str, entries))}")


def resolve_document(instance: Enclave, ref: str) -> int:
    document_id = instance.store.find_document(ref)
    if document_id is None:
        raise ConfigError(f"no single document matches {ref!r} (give its id from `enclave docs`)")
    return document_id
