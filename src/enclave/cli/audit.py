"""`enclave audit ...` (read and verify the trail) and `enclave purge` (retention)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from enclave.cli.acl import resolve_document
from enclave.cli.common import (
    DataDir,
    DocumentRef,
    JsonFlag,
    counted,
    emit,
    enclave,
    err,
    excerpt,
    out,
)
from enclave.pipeline.audit import operator, parse_since

audit_app = typer.Typer(help="Read and verify the audit trail.", no_args_is_help=True)


def _since(text: str | None) -> datetime | None:
    try:
        return parse_since(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from exc


Since = Annotated[
    str | None, typer.Option("--since", help="Only from then on: 7d, 12h, 30m or an ISO date.")
]


@audit_app.command("list")
def audit_list(
    user: Annotated[
        str | None, typer.Option("--user", help="Entries by or about this user.")
    ] = None,
    document: Annotated[
        str | None, typer.Option("--document", help="Entries touching this document (id).")
    ] = None,
    since: Since = None,
    action: Annotated[
        str | None, typer.Option("--action", help="search, ask, view, upload, sign_in, ...")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 200,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Audit entries, newest first."""
    moment = _since(since)
    with enclave(data_dir, as_json) as instance:
        document_id = resolve_document(instance, document) if document else None
        entries = instance.store.audit_entries(user, document_id, moment, action, limit)
    if as_json:
        emit({"entries": entries})
        return
    table = Table("id", "time", "who", "via", "action", "query", "documents", "chunks")
    for e in entries:
        who = e["actor"] or ""
        if e["subject"]:
            who += f" → {e['subject']}"
        table.add_row(
            str(e["id"]),
            f"{e['at']:%Y-%m-%d %H:%M:%S}",
            who,
            e["interface"],
            e["action"] + (" (abstained)" if e["abstained"] else ""),
            excerpt(e["query"] or "", 60),
            _ids(e["document_ids"]),
            _ids(e["chunk_ids"]),
        )
    out.print(table)


def _ids(ids: list[int]) -> str:
    return ", ".join(map(str, ids[:8])) + (" …" if len(ids) > 8 else "")


@audit_app.command("verify")
def audit_verify(data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Recompute the hash chain; exit 1 and name the first entry that was changed."""
    with enclave(data_dir, as_json) as instance:
        check = instance.store.verify_audit()
    if as_json:
        emit(check.__dict__)
    elif check.ok:
        out.print(f"audit trail intact: {check.entries} entries, head {check.head}")
    else:
        err.print(
            f"[red]audit trail broken at entry {check.broken_id}:[/red] {check.reason} "
            f"({check.entries} entries before it verified)"
        )
    if not check.ok:
        raise typer.Exit(1)


@audit_app.command("who-saw")
def who_saw(
    document: DocumentRef,
    since: Since = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Who was shown passages of a document (search, answers, views) since a time."""
    moment = _since(since)
    with enclave(data_dir, as_json) as instance:
        document_id = resolve_document(instance, document)
        users = instance.store.who_saw(document_id, moment)
    if as_json:
        emit({"document_id": document_id, "since": moment, "users": users})
        return
    _table(users, "user", f"{counted(len(users), 'user')} saw document {document_id}")


@audit_app.command("seen-by")
def seen_by(
    user: Annotated[str, typer.Argument(help="User name.")],
    since: Since = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Which documents a user was shown passages of since a time."""
    moment = _since(since)
    with enclave(data_dir, as_json) as instance:
        documents = instance.store.seen_by(user, moment)
    if as_json:
        emit({"user": user, "since": moment, "documents": documents})
        return
    _table(documents, "title", f"{counted(len(documents), 'document')} seen by {user}")


def _table(rows: list[dict[str, Any]], key: str, title: str) -> None:
    table = Table(key, "times", "first", "last", "how", title=title)
    for r in rows:
        table.add_row(
            str(r[key]) if key != "title" else f"{r['document_id']}: {r['title']}",
            str(r["times"]),
            f"{r['first']:%Y-%m-%d %H:%M}",
            f"{r['last']:%Y-%m-%d %H:%M}",
            ", ".join(r["actions"]),
        )
    out.print(table)


def purge(data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Delete conversations and audit entries older than their retention
    (ENCLAVE_RETAIN_CONVERSATIONS_DAYS, ENCLAVE_RETAIN_AUDIT_DAYS; 0 keeps them)."""
    from enclave.pipeline.retention import purge as apply_retention

    with enclave(data_dir, as_json) as instance:
        settings = instance.settings
        purged = apply_retention(instance.store, settings, operator(), "cli")
    if as_json:
        emit(purged.__dict__)
        return
    out.print(
        f"deleted {purged.conversations} conversations (kept "
        f"{settings.retain_conversations_days or 'forever'} days) and {purged.audit_entries} "
        f"audit entries (kept {settings.retain_audit_days or 'forever'} days)"
    )
