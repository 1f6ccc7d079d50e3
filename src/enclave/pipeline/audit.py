"""What the audit trail records: one Event per action, and how entries are chained.

Every search, answer, document view, upload, deletion, access-list change, sign-in, token
and admin change becomes one entry: when, who (a random key per person), through which interface,
what was asked, which chunks and documents were shown or given to the model, whether the
answer abstained, and a hash of the answer. Each entry's hash covers the one before it.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from enclave.pipeline.entities import Answer, Hit

Interface = Literal["cli", "web", "api", "openai", "server"]
GENESIS = "0" * 64
# Actions that show a person passages or documents: what "who has seen D" is made of.
SEEING = ("search", "ask", "view")


@dataclass(frozen=True)
class Event:
    """One thing to record. actor/subject are user names; the store keeps only their keys."""

    actor: str | None
    interface: Interface
    action: str
    subject: str | None = None
    query: str | None = None
    chunk_ids: tuple[int, ...] = ()
    document_ids: tuple[int, ...] = ()
    abstained: bool | None = None
    answer_hash: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def searched(actor: str, interface: Interface, query: str, hits: Sequence[Hit]) -> Event:
    """A search and the passages it showed."""
    return Event(
        actor,
        interface,
        "search",
        query=query,
        chunk_ids=tuple(h.chunk_id for h in hits),
        document_ids=_documents(hits),
    )


def asked(actor: str, interface: Interface, answer: Answer, completed: bool = True) -> Event:
    """A question, the passages given to the model, and a hash of what it answered.

    completed False: the caller went away during the answer (the sources were still given
    to the model, and are recorded).
    """
    return Event(
        actor,
        interface,
        "ask",
        query=answer.question,
        chunk_ids=tuple(h.chunk_id for h in answer.sources),
        document_ids=_documents(answer.sources),
        abstained=answer.abstained if completed else None,
        answer_hash=text_hash(answer.text) if completed else None,
        detail={
            "search_query": answer.search_query,
            "used_search": answer.used_search,
            "cited_chunk_ids": [c.hit.chunk_id for c in answer.citations],
            "completed": completed,
        },
    )


def _documents(hits: Sequence[Hit]) -> tuple[int, ...]:
    return tuple(dict.fromkeys(h.document_id for h in hits))


def operator() -> str:
    """Who runs an administrative CLI command: the operating-system account, marked as such."""
    try:
        return f"shell:{getpass.getuser()}"
    except (KeyError, OSError):
        return "shell:unknown"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def name_mac(secret: str, key: str, name: str) -> str:
    """Seals which name a person's key stands for, so that swapping names is detected."""
    message = f"{key}\n{name}".encode("utf-8", "surrogatepass")
    return hmac.new(secret.encode(), message, "sha256").hexdigest()


def entry_hash(prev_hash: str, entry: dict[str, Any]) -> str:
    """The hash of an entry (as stored, without its own hash) chained to the previous one."""
    fields = (
        "id",
        "at",
        "actor_key",
        "interface",
        "action",
        "subject_key",
        "query",
        "chunk_ids",
        "document_ids",
        "abstained",
        "answer_hash",
        "detail",
    )
    values = {name: entry[name] for name in fields}
    values["at"] = entry["at"].astimezone(UTC).isoformat()
    values["chunk_ids"] = [int(i) for i in entry["chunk_ids"]]
    values["document_ids"] = [int(i) for i in entry["document_ids"]]
    canonical = json.dumps([prev_hash, values], sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """A point in time from `7d`, `12h`, `30m` (ago) or an ISO date/time (UTC if no zone)."""
    if not text:
        return None
    now = now or datetime.now(UTC)
    units = {"d": "days", "h": "hours", "m": "minutes"}
    number, unit = text[:-1], text[-1:]
    if unit in units and number.isdigit():
        return now - timedelta(**{units[unit]: int(number)})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{text!r}: give a time as 7d, 12h, 30m or an ISO date") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
