"""The audit trail's table: appending chained entries, reading them, verifying the chain.

Entries are appended under an advisory lock, so that concurrent writers (threads, server
replicas, CLI processes) form one chain. Triggers refuse updates and truncation; only the
retention purge may delete, and only entries older than its cut-off.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from psycopg.types.json import Jsonb

from enclave.pipeline.audit import GENESIS, SEEING, Event, entry_hash, name_mac
from enclave.pipeline.store.database import Database, connected

_APPEND_LOCK = 7361002


@dataclass(frozen=True)
class ChainCheck:
    """The result of verifying the chain: ok, or the first entry that does not fit."""

    ok: bool
    entries: int
    head: str
    broken_id: int | None = None
    reason: str = ""


class AuditTrail(Database):
    """Append, read and verify the audit trail."""

    @cached_property
    @connected
    def _audit_secret(self) -> str:
        row = self.conn.execute("select key from audit_secret where id = 1").fetchone()
        assert row is not None
        return str(row["key"])

    @connected
    def person_key(self, name: str) -> str | None:
        """The key standing for this person in the trail; None if they are not in it."""
        row = self.conn.execute("select key from audit_people where name = %s", [name])
        found = row.fetchone()
        return found["key"] if found else None

    @connected
    def record(self, event: Event) -> int:
        """Append one entry to the chain; its id."""
        with self.conn.transaction():
            actor = self._person(event.actor)
            subject = self._person(event.subject)
            detail = self._pseudonymous(event.detail)
            self.conn.execute("select pg_advisory_xact_lock(%s)", [_APPEND_LOCK])
            last = (
                self.conn.execute(
                    "select id, hash from audit_log order by id desc limit 1"
                ).fetchone()
                or self._anchor()
            )
            entry = {
                "id": int(last["id"]) + 1,
                "at": datetime.now(UTC),
                "actor_key": actor,
                "interface": event.interface,
                "action": event.action,
                "subject_key": subject,
                "query": event.query,
                "chunk_ids": list(event.chunk_ids),
                "document_ids": list(event.document_ids),
                "abstained": event.abstained,
                "answer_hash": event.answer_hash,
                "detail": detail,
            }
            entry["hash"] = entry_hash(last["hash"], entry)
            self.conn.execute(
                "insert into audit_log (id, at, actor_key, interface, action, subject_key, "
                "query, chunk_ids, document_ids, abstained, answer_hash, detail, prev_hash, "
                "hash) values (%(id)s, %(at)s, %(actor_key)s, %(interface)s, %(action)s, "
                "%(subject_key)s, %(query)s, %(chunk_ids)s, %(document_ids)s, %(abstained)s, "
                "%(answer_hash)s, %(detail)s, %(prev)s, %(hash)s)",
                entry | {"detail": Jsonb(detail), "prev": last["hash"]},
            )
        return int(entry["id"])

    @connected
    def _person(self, name: str | None) -> str | None:
        if name is None:
            return None
        key = secrets.token_hex(16)
        self.conn.execute(
            "insert into audit_people values (%s, %s, %s) on conflict (name) do nothing",
            [key, name, name_mac(self._audit_secret, key, name)],
        )
        return self.person_key(name)

    def _pseudonymous(self, detail: dict[str, Any]) -> dict[str, Any]:
        """Users named in an access list are stored by key, like actors and subjects."""
        if "allow" not in detail:
            return detail
        allow = [
            f"user#{self._person(entry[5:])}" if entry.startswith("user:") else entry
            for entry in detail["allow"]
        ]
        return detail | {"allow": allow}

    @connected
    def _named(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        keys = {
            entry[5:]
            for e in entries
            for entry in e["detail"].get("allow", [])
            if entry.startswith("user#")
        }
        names = {
            r["key"]: r["name"]
            for r in self.conn.execute(
                "select key, name from audit_people where key = any(%s)", [list(keys)]
            )
        }
        for e in entries:
            if "allow" in e["detail"]:
                e["detail"]["allow"] = [
                    (f"user:{names.get(x[5:], '~' + x[5:17])}" if x.startswith("user#") else x)
                    for x in e["detail"]["allow"]
                ]
        return entries

    @connected
    def _anchor(self) -> dict[str, Any]:
        row = self.conn.execute(
            "select last_id as id, last_hash as hash from audit_anchor where id = 1"
        ).fetchone()
        return row or {"id": 0, "hash": GENESIS}

    @connected
    def audit_entries(
        self,
        user: str | None = None,
        document_id: int | None = None,
        since: datetime | None = None,
        action: str | None = None,
        limit: int | None = 1000,
    ) -> list[dict[str, Any]]:
        """Entries, newest first; a user's are those they did and those about them."""
        where, params = ["true"], {"limit": limit}  # limit None: all
        if user is not None:
            # An erased person has no key any more: nothing is found under their name.
            where.append("(l.actor_key = %(key)s or l.subject_key = %(key)s)")
            params["key"] = self.person_key(user) or "-"
        if document_id is not None:
            where.append("%(document)s = any(l.document_ids)")
            params["document"] = document_id
        if since is not None:
            where.append("l.at >= %(since)s")
            params["since"] = since
        if action is not None:
            where.append("l.action = %(action)s")
            params["action"] = action
        rows = self.conn.execute(
            "select l.id, l.at, coalesce(a.name, '~' || left(l.actor_key, 12)) as actor, "
            "l.interface, l.action, coalesce(s.name, '~' || left(l.subject_key, 12)) as subject, "
            "l.query, l.chunk_ids, l.document_ids, l.abstained, l.answer_hash, l.detail "
            "from audit_log l left join audit_people a on a.key = l.actor_key "
            "left join audit_people s on s.key = l.subject_key "
            f"where {' and '.join(where)} order by l.id desc limit %(limit)s",
            params,
        ).fetchall()
        return self._named(rows)

    @connected
    def who_saw(self, document_id: int, since: datetime | None = None) -> list[dict[str, Any]]:
        """Everyone shown passages of a document (search, answer, view), with when and what."""
        return self.conn.execute(
            "select coalesce(p.name, '~' || left(l.actor_key, 12)) as user, count(*) as times, "
            "min(l.at) as first, max(l.at) as last, array_agg(distinct l.action) as actions "
            "from audit_log l left join audit_people p on p.key = l.actor_key "
            "where %(d)s = any(l.document_ids) and l.action = any(%(seeing)s) "
            "and l.at >= %(since)s group by 1 order by 1",
            {"d": document_id, "seeing": list(SEEING), "since": since or datetime.min},
        ).fetchall()

    @connected
    def seen_by(self, user: str, since: datetime | None = None) -> list[dict[str, Any]]:
        """The documents a user was shown passages of, with how often, when and how."""
        return self.conn.execute(
            "select d.id as document_id, coalesce(doc.title, '(deleted)') as title, "
            "count(distinct l.id) as times, min(l.at) as first, max(l.at) as last, "
            "array_agg(distinct l.action) as actions from audit_log l "
            "cross join lateral unnest(l.document_ids) d(id) "
            "left join documents doc on doc.id = d.id "
            "where l.actor_key = %(key)s and l.action = any(%(seeing)s) and l.at >= %(since)s "
            "group by d.id, doc.title order by d.id",
            {
                "key": self.person_key(user) or "-",
                "seeing": list(SEEING),
                "since": since or datetime.min,
            },
        ).fetchall()

    @connected
    def verify_audit(self) -> ChainCheck:
        """Recompute every entry's hash from the previous one; name the first that differs.
        Also check that no person's name was swapped for another's."""
        for person in self.conn.execute("select key, name, mac from audit_people"):
            if name_mac(self._audit_secret, person["key"], person["name"]) != person["mac"]:
                return ChainCheck(False, 0, "", None, f"name of person {person['key']} changed")
        anchor = self._anchor()
        prev, count, expected_id = anchor["hash"], 0, int(anchor["id"]) + 1
        with self.conn.transaction(), self.conn.cursor(name="audit_verify") as cur:
            cur.execute("select * from audit_log order by id")
            for row in cur:
                if row["id"] != expected_id:
                    return ChainCheck(False, count, prev, expected_id, "entry missing")
                if row["prev_hash"] != prev:
                    return ChainCheck(False, count, prev, row["id"], "previous hash differs")
                if entry_hash(prev, row) != row["hash"]:
                    return ChainCheck(False, count, prev, row["id"], "content changed")
                prev, count, expected_id = row["hash"], count + 1, expected_id + 1
        return ChainCheck(True, count, prev)

    @connected
    def forget_person(self, name: str) -> int:
        """Erase a person's name from the trail: their entries keep only an unlinkable key."""
        cur = self.conn.execute("delete from audit_people where name = %s", [name])
        return cur.rowcount

    @connected
    def purge_audit(self, before: datetime) -> int:
        """Delete entries older than `before`; the chain then starts from the last deleted."""
        with self.conn.transaction():
            self.conn.execute("select pg_advisory_xact_lock(%s)", [_APPEND_LOCK])
            last = self.conn.execute(
                "select id, hash from audit_log where at < %s order by id desc limit 1", [before]
            ).fetchone()
            if last is None:
                return 0
            self.conn.execute(
                "select set_config('enclave.audit_purge_before', %s, true)", [before.isoformat()]
            )
            cur = self.conn.execute("delete from audit_log where id <= %s", [last["id"]])
            self.conn.execute(
                "insert into audit_anchor values (1, %(id)s, %(hash)s) on conflict (id) "
                "do update set last_id = excluded.last_id, last_hash = excluded.last_hash",
                last,
            )
            return cur.rowcount
