"""Accounts: passwords (argon2), the admin role, API tokens and browser sessions."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from enclave.pipeline.access import AccessError, Principal
from enclave.pipeline.store import Store, connected

MIN_PASSWORD_LENGTH = 10
SESSION_HOURS = 12
TOKEN_PREFIX = "enc_"

_hasher = PasswordHasher()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    """An API token as listed (never the secret itself)."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


@dataclass(frozen=True)
class Session:
    """A signed-in browser: the user and the CSRF token their forms must echo."""

    user: str
    csrf_token: str


class Accounts:
    """Credentials stored beside the principals they belong to."""

    def __init__(self, store: Store):
        self.store = store

    @connected
    def _user_id(self, user: str) -> int:
        row = self.store.conn.execute(
            "select id from principals where kind = 'user' and name = %s", [user]
        ).fetchone()
        if row is None:
            raise AccessError(f"unknown user {user!r}")
        return int(row["id"])

    def set_password(self, user: str, password: str) -> None:
        """Set (or replace) a user's password; ends their browser sessions."""
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AccessError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
        hashed = _hasher.hash(password)
        with self.store.connection() as conn, conn.transaction():
            user_id = self._user_id(user)
            conn.execute(
                "insert into accounts(user_id, password_hash) values (%s, %s) "
                "on conflict (user_id) do update set password_hash = excluded.password_hash",
                [user_id, hashed],
            )
            conn.execute("delete from sessions where user_id = %s", [user_id])

    def verify_password(self, user: str, password: str) -> bool:
        """True if the password is the user's; unknown users and users without one fail."""
        # Not holding a pooled connection through argon2's ~0.1 s of hashing.
        with self.store.connection() as conn:
            row = conn.execute(
                "select a.password_hash from accounts a join principals p on p.id = a.user_id "
                "where p.kind = 'user' and p.name = %s",
                [user],
            ).fetchone()
        if row is None or not row["password_hash"]:
            _hasher.hash(password)  # same cost either way: no user enumeration by timing
            return False
        try:
            return _hasher.verify(row["password_hash"], password)
        except (VerificationError, InvalidHashError):
            return False

    @connected
    def set_admin(self, user: str, admin: bool) -> None:
        """Grant or take away the admin role."""
        self.store.conn.execute(
            "insert into accounts(user_id, is_admin) values (%s, %s) "
            "on conflict (user_id) do update set is_admin = excluded.is_admin",
            [self._user_id(user), admin],
        )

    @connected
    def is_admin(self, user: str) -> bool:
        row = self.store.conn.execute(
            "select a.is_admin from accounts a join principals p on p.id = a.user_id "
            "where p.kind = 'user' and p.name = %s",
            [user],
        ).fetchone()
        return bool(row and row["is_admin"])

    @connected
    def admins(self) -> list[str]:
        rows = self.store.conn.execute(
            "select p.name from accounts a join principals p on p.id = a.user_id "
            "where a.is_admin order by p.name"
        ).fetchall()
        return [r["name"] for r in rows]

    # -- API tokens ---------------------------------------------------------------------------

    @connected
    def create_token(self, user: str, name: str) -> tuple[int, str]:
        """A new personal API token: (id, secret). The secret is shown once, stored hashed."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = self.store.conn.execute(
            "insert into api_tokens(user_id, name, token_hash, prefix) values (%s, %s, %s, %s) "
            "returning id",
            [self._user_id(user), name or "token", _digest(secret), secret[:12]],
        ).fetchone()
        assert row is not None
        return int(row["id"]), secret

    @connected
    def tokens(self, user: str) -> list[TokenInfo]:
        rows = self.store.conn.execute(
            "select t.id, t.name, t.prefix, t.created_at, t.last_used_at, "
            "t.revoked_at is not null as revoked from api_tokens t "
            "join principals p on p.id = t.user_id where p.kind = 'user' and p.name = %s "
            "order by t.id",
            [user],
        ).fetchall()
        return [TokenInfo(**r) for r in rows]

    @connected
    def all_tokens(self) -> list[tuple[str, TokenInfo]]:
        """Every user's tokens (for admins), as (user, token)."""
        rows = self.store.conn.execute(
            "select p.name as user, t.id, t.name, t.prefix, t.created_at, t.last_used_at, "
            "t.revoked_at is not null as revoked from api_tokens t "
            "join principals p on p.id = t.user_id order by p.name, t.id"
        ).fetchall()
        return [(r.pop("user"), TokenInfo(**r)) for r in rows]

    @connected
    def revoke_any_token(self, token_id: int) -> bool:
        """Revoke a token whoever owns it (admins)."""
        cur = self.store.conn.execute(
            "update api_tokens set revoked_at = now() where id = %s and revoked_at is null",
            [token_id],
        )
        return cur.rowcount > 0

    @connected
    def revoke_token(self, user: str, token_id: int) -> bool:
        """Revoke one of the user's tokens; False if they have no such live token."""
        cur = self.store.conn.execute(
            "update api_tokens set revoked_at = now() where id = %s and user_id = %s "
            "and revoked_at is null",
            [token_id, self._user_id(user)],
        )
        return cur.rowcount > 0

    def user_for_authorization(self, header: str) -> str | None:
        """The user of an `Authorization: Bearer <token>` header, or None."""
        scheme, _, secret = header.partition(" ")
        return self.user_for_token(secret.strip()) if scheme.lower() == "bearer" else None

    @connected
    def user_for_token(self, secret: str) -> str | None:
        """The user a live token belongs to, or None."""
        if not secret.startswith(TOKEN_PREFIX):
            return None
        row = self.store.conn.execute(
            "update api_tokens t set last_used_at = now() from principals p "
            "where t.token_hash = %s and t.revoked_at is null and p.id = t.user_id "
            "returning p.name",
            [_digest(secret)],
        ).fetchone()
        return row["name"] if row else None

    # -- browser sessions ---------------------------------------------------------------------

    @connected
    def create_session(self, user: str) -> tuple[str, Session]:
        """A new session: (cookie secret, session)."""
        secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self.store.conn.execute(
            "insert into sessions values (%s, %s, %s, now() + make_interval(hours => %s))",
            [_digest(secret), self._user_id(user), csrf, SESSION_HOURS],
        )
        return secret, Session(user, csrf)

    @connected
    def session(self, secret: str) -> Session | None:
        row = self.store.conn.execute(
            "select p.name, s.csrf_token from sessions s join principals p on p.id = s.user_id "
            "where s.token_hash = %s and s.expires_at > now()",
            [_digest(secret)],
        ).fetchone()
        return Session(row["name"], row["csrf_token"]) if row else None

    @connected
    def end_session(self, secret: str) -> None:
        self.store.conn.execute("delete from sessions where token_hash = %s", [_digest(secret)])


def parse_allow(entries: list[str]) -> list[Principal]:
    """Access-list entries from a form or JSON body."""
    return [Principal.parse(e) for e in entries if e.strip()]
