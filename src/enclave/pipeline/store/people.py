"""Data-subject duties and retention: a person's data exported or erased, old data purged."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from enclave.pipeline.store.audit import AuditTrail
from enclave.pipeline.store.database import connected


class People(AuditTrail):
    """What is stored about a person, their erasure, and deletion by age."""

    @connected
    def person_record(self, name: str) -> dict[str, Any] | None:
        """Everything stored about a user (GDPR Art. 15), or None if there is no such user."""
        account = self.conn.execute(
            "select p.id, p.name, p.created_at, coalesce(a.is_admin, false) as admin, "
            "a.password_hash is not null as has_password from principals p "
            "left join accounts a on a.user_id = p.id where p.kind = 'user' and p.name = %s",
            [name],
        ).fetchone()
        if account is None:
            return None
        user_id = account.pop("id")
        groups = self.conn.execute(
            "select g.name from memberships m join principals g on g.id = m.group_id "
            "where m.user_id = %s order by g.name",
            [user_id],
        ).fetchall()
        tokens = self.conn.execute(
            "select id, name, prefix, created_at, last_used_at, revoked_at from api_tokens "
            "where user_id = %s order by id",
            [user_id],
        ).fetchall()
        sessions = self.conn.execute(
            "select count(*) as n from sessions where user_id = %s", [user_id]
        ).fetchone()
        return {
            "account": account,
            "groups": [g["name"] for g in groups],
            "tokens": tokens,
            "active_sessions": sessions["n"] if sessions else 0,
            "owned_documents": self.conn.execute(
                "select id as document_id, title from documents where owner_id = %s order by id",
                [user_id],
            ).fetchall(),
            "conversations": self._conversations_of(user_id),
            # Which documents they were shown, by title: the entries below name only ids.
            "documents_seen": self.seen_by(name),
            "audit_entries": self.audit_entries(user=name, limit=None),
        }

    @connected
    def _conversations_of(self, user_id: int) -> list[dict[str, Any]]:
        conversations = self.conn.execute(
            "select id, title, created_at from conversations where user_id = %s order by id",
            [user_id],
        ).fetchall()
        for conversation in conversations:
            conversation["messages"] = self.conn.execute(
                "select role, content, sources, created_at from messages "
                "where conversation_id = %s order by id",
                [conversation["id"]],
            ).fetchall()
        return conversations

    @connected
    def erase_person(self, name: str) -> bool:
        """Delete a user with their account, sessions, tokens, memberships and conversations
        (GDPR Art. 17); the audit trail keeps their entries under a pseudonym only."""
        with self.conn.transaction():
            cur = self.conn.execute(
                "delete from principals where kind = 'user' and name = %s", [name]
            )
            self.forget_person(name)
        return cur.rowcount > 0

    @connected
    def purge_conversations(self, before: datetime) -> int:
        """Delete conversations with no message since `before`."""
        cur = self.conn.execute(
            "delete from conversations c where coalesce((select max(m.created_at) from messages m "
            "where m.conversation_id = c.id), c.created_at) < %s",
            [before],
        )
        return cur.rowcount
