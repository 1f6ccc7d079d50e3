"""Per-user chat history for the web UI."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from enclave.pipeline.store import Store, connected


class Conversations:
    """Conversations belong to one user; every read and write checks that owner."""

    def __init__(self, store: Store):
        self.store = store

    @connected
    def start(self, user: str, title: str) -> int:
        row = self.store.conn.execute(
            "insert into conversations(user_id, title) select id, %s from principals "
            "where kind = 'user' and name = %s returning id",
            [title[:200], user],
        ).fetchone()
        assert row is not None
        return int(row["id"])

    @connected
    def owns(self, user: str, conversation_id: int) -> bool:
        return bool(
            self.store.conn.execute(
                "select 1 from conversations c join principals p on p.id = c.user_id "
                "where c.id = %s and p.kind = 'user' and p.name = %s",
                [conversation_id, user],
            ).fetchone()
        )

    @connected
    def add(self, conversation_id: int, role: str, content: str, sources: Any = ()) -> None:
        self.store.conn.execute(
            "insert into messages(conversation_id, role, content, sources) values (%s, %s, %s, %s)",
            [conversation_id, role, content, Jsonb(list(sources))],
        )

    def turns(self, user: str, conversation_id: int) -> list[tuple[str, str]]:
        """The conversation so far as (question, answer) pairs, oldest first."""
        turns, question = [], None
        for message in self.messages(user, conversation_id) or []:
            if message["role"] == "user":
                question = message["content"]
            elif question is not None:
                turns.append((question, message["content"]))
                question = None
        return turns

    @connected
    def list(self, user: str) -> list[dict[str, Any]]:
        return self.store.conn.execute(
            "select c.id, c.title, c.created_at::text as created_at from conversations c "
            "join principals p on p.id = c.user_id where p.kind = 'user' and p.name = %s "
            "order by c.id desc limit 100",
            [user],
        ).fetchall()

    @connected
    def messages(self, user: str, conversation_id: int) -> list[dict[str, Any]] | None:
        """The conversation's messages, or None if it is not this user's."""
        if not self.owns(user, conversation_id):
            return None
        return self.store.conn.execute(
            "select role, content, sources, created_at::text as created_at from messages "
            "where conversation_id = %s order by id",
            [conversation_id],
        ).fetchall()
