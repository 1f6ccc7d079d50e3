"""`enclave acl ...`: who may read a document."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from enclave.cli.common import (
    CreatePrincipals,
    DataDir,
    DocumentRef,
    JsonFlag,
    counted,
    emit,
    enclave,
    out,
)
from enclave.config import ConfigError
from enclave.pipeline.access import Principal
from enclave.pipeline.audit import Event, operator

if TYPE_CHECKING:
    from enclave.pipeline.wiring import Enclave

acl_app = typer.Typer(help="Show or change who may read a document.", no_args_is_help=True)


@acl_app.command("show")
def acl_show(
    document: DocumentRef,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Who may read a document."""
    with enclave(data_dir, as_json) as instance:
        document_id = resolve_document(instance, document)
        entries = instance.store.acl(document_id)
    _print_acl(document_id, entries, as_json)


@acl_app.command("set")
def acl_set(
    document: DocumentRef,
    allow: Annotated[
        list[str], typer.Option("--allow", help="user:NAME or group:NAME (repeatable).")
    ],
    create_principals: CreatePrincipals = False,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Replace a document's access list."""
    with enclave(data_dir, as_json) as instance:
        document_id = resolve_document(instance, document)
        acl = [Principal.parse(a) for a in allow]
        if not create_principals:
            instance.store.require_known(acl)
        instance.store.set_acl(document_id, acl)
        detail = {"allow": [str(p) for p in acl]}
        instance.store.record(
            Event(operator(), "cli", "acl_change", document_ids=(document_id,), detail=detail)
        )
        entries = instance.store.acl(document_id)
    _print_acl(document_id, entries, as_json)


@acl_app.command("who-can-read")
def who_can_read(
    document: DocumentRef,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Every user who may read a document, resolved through their groups."""
    with enclave(data_dir, as_json) as instance:
        document_id = resolve_document(instance, document)
        readers = instance.store.readers(document_id)
    if as_json:
        emit({"document_id": document_id, "readers": readers})
        return
    title = f"{counted(len(readers), 'user')} may read document {document_id}"
    table = Table("user", "through", title=title)
    for reader in readers:
        table.add_row(reader["user"], ", ".join(reader["through"]))
    out.print(table)


@acl_app.command("readable-by")
def readable_by(
    user: Annotated[str, typer.Argument(help="User name.")],
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Every document a user may read."""
    with enclave(data_dir, as_json) as instance:
        if not instance.store.user_exists(user):
            raise ConfigError(f"no user {user!r}")
        documents = instance.store.visible_documents(instance.store.viewer(user))
    if as_json:
        from enclave.pipeline.serialize import document_json

        emit({"user": user, "documents": [document_json(d) for d in documents]})
        return
    title = f"{counted(len(documents), 'document')} readable by {user}"
    table = Table("id", "title", "file", title=title)
    for doc in documents:
        table.add_row(str(doc.document_id), doc.title, doc.file_name)
    out.print(table)


def _print_acl(document_id: int, entries: list[Principal], as_json: bool) -> None:
    if as_json:
        emit({"document_id": document_id, "allow": [str(p) for p in entries]})
    else:
        out.print(f"document {document_id}: {', '.join(map(str, entries)) or '(nobody)'}")


def resolve_document(instance: Enclave, ref: str) -> int:
    document_id = instance.store.find_document(ref)
    if document_id is None:
        raise ConfigError(f"no single document matches {ref!r} (give its id from `enclave docs`)")
    return document_id
