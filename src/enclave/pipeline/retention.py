"""Retention: conversations and audit entries older than their configured age are deleted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from enclave.config import Settings
from enclave.pipeline.audit import Event, Interface
from enclave.pipeline.store import Store


@dataclass(frozen=True)
class Purged:
    """How many conversations and audit entries a purge deleted."""

    conversations: int
    audit_entries: int


def purge(store: Store, settings: Settings, actor: str | None, interface: Interface) -> Purged:
    """Apply ENCLAVE_RETAIN_CONVERSATIONS_DAYS and ENCLAVE_RETAIN_AUDIT_DAYS (0: keep)."""
    now = datetime.now(UTC)
    conversations = audit_entries = 0
    if settings.retain_conversations_days:
        cutoff = now - timedelta(days=settings.retain_conversations_days)
        conversations = store.purge_conversations(cutoff)
    if settings.retain_audit_days:
        audit_entries = store.purge_audit(now - timedelta(days=settings.retain_audit_days))
    purged = Purged(conversations, audit_entries)
    detail = {
        "conversations": conversations,
        "audit_entries": audit_entries,
        "retain_conversations_days": settings.retain_conversations_days,
        "retain_audit_days": settings.retain_audit_days,
    }
    store.record(Event(actor, interface, "purge", detail=detail))
    return purged
