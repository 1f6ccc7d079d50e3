"""Users, groups, memberships and documents' access lists."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from enclave.pipeline.access import AccessError, Principal
from enclave.pipeline.store.database import Database, Viewer, connected


class Principals(Database):
    """Who exists, who belongs to which group, and who may read which document."""

    @connected
    def ensure_principal(self, principal: Principal) -> int:
        """The id of a user or group, created if new."""
        row = self.conn.execute(
            "insert into principals(kind, name) values (%s, %s) on conflict (kind, name) "
            "do update set name = excluded.name returning id",
            [principal.kind, principal.name],
        ).fetchone()
        assert row is not None
        return int(row["id"])

    @connected
    def add_user(self, name: str, groups: Sequence[str]) -> None:
        """Create the user (if new) and add them to the groups (created if new)."""
        with self.conn.transaction():
            user_id = self.ensure_principal(Principal("user", name))
            for group in groups:
                group_id = self.ensure_principal(Principal("group", group))
                self.conn.execute(
                    "insert into memberships values (%s, %s) on conflict do nothing",
                    [user_id, group_id],
                )

    @connected
    def remove_from_group(self, name: str, group: str) -> bool:
        """Take a user out of a group; False if they were not in it."""
        cur = self.conn.execute(
            "delete from memberships m using principals u, principals g "
            "where m.user_id = u.id and m.group_id = g.id and u.kind = 'user' and u.name = %s "
            "and g.kind = 'group' and g.name = %s",
            [name, group],
        )
        return cur.rowcount > 0

    @connected
    def users(self) -> list[dict[str, Any]]:
        """Every user with their groups."""
        return self.conn.execute(
            "select u.name, coalesce(array_agg(g.name order by g.name) "
            "filter (where g.name is not null), '{}') as groups from principals u "
            "left join memberships m on m.user_id = u.id "
            "left join principals g on g.id = m.group_id "
            "where u.kind = 'user' group by u.name order by u.name"
        ).fetchall()

    @connected
    def viewer(self, user: str) -> Viewer:
        """The user's principal ids; an unknown user has none and so can read nothing."""
        rows = self.conn.execute(
            "select p.id from principals p where p.kind = 'user' and p.name = %(u)s union "
            "select m.group_id from memberships m join principals p on p.id = m.user_id "
            "where p.kind = 'user' and p.name = %(u)s",
            {"u": user},
        ).fetchall()
        return Viewer(user, sorted(int(r["id"]) for r in rows))

    @connected
    def user_exists(self, user: str) -> bool:
        return bool(
            self.conn.execute(
                "select 1 from principals where kind = 'user' and name = %s", [user]
            ).fetchone()
        )

    @connected
    def groups(self) -> list[str]:
        """Every group name."""
        rows = self.conn.execute(
            "select name from principals where kind = 'group' order by name"
        ).fetchall()
        return [r["name"] for r in rows]

    @connected
    def require_known(self, acl: Sequence[Principal]) -> None:
        """Refuse an access list naming a user or group that does not exist yet.

        Sharing under a name before its account exists would hand the documents to whoever
        later gets that name, so only admins create principals (`enclave users add`).
        """
        rows = self.conn.execute(
            "select kind || ':' || name as principal from principals "
            "where (kind, name) in (select * from unnest(%s::text[], %s::text[]))",
            [[p.kind for p in acl], [p.name for p in acl]],
        ).fetchall()
        unknown = sorted({str(p) for p in acl} - {r["principal"] for r in rows})
        if unknown:
            raise AccessError(
                f"unknown {', '.join(unknown)}: only an admin creates users and groups "
                "(`enclave users add NAME --group GROUP`, or `--create-principals` on the CLI)"
            )

    @connected
    def ensure_principals(self, acl: Sequence[Principal]) -> None:
        """Create the users and groups of an access list that do not exist yet."""
        with self.conn.transaction():
            for principal in acl:
                self.ensure_principal(principal)

    @connected
    def readers(self, document_id: int) -> list[dict[str, Any]]:
        """Every user who may read a document, with the access-list entries that let them."""
        return self.conn.execute(
            "select u.name as user, array_agg(distinct p.kind || ':' || p.name) as through "
            "from document_acl a join principals p on p.id = a.principal_id "
            "left join memberships m on p.kind = 'group' and m.group_id = p.id "
            "join principals u on u.kind = 'user' and u.id = case when p.kind = 'user' "
            "then p.id else m.user_id end "
            "where a.document_id = %s group by u.name order by u.name",
            [document_id],
        ).fetchall()

    @connected
    def set_acl(self, document_id: int, acl: Sequence[Principal]) -> None:
        """Replace a document's access list."""
        with self.conn.transaction():
            self._write_acl(document_id, acl)

    @connected
    def _write_acl(self, document_id: int, acl: Sequence[Principal]) -> None:
        self.conn.execute("delete from document_acl where document_id = %s", [document_id])
        for principal in acl:
            self.conn.execute(
                "insert into document_acl values (%s, %s) on conflict do nothing",
                [document_id, self.ensure_principal(principal)],
            )

    @connected
    def acl(self, document_id: int) -> list[Principal]:
        """A document's access list."""
        rows = self.conn.execute(
            "select p.kind, p.name from document_acl a join principals p on p.id = a.principal_id "
            "where a.document_id = %s order by p.kind, p.name",
            [document_id],
        ).fetchall()
        return [Principal(r["kind"], r["name"]) for r in rows]
