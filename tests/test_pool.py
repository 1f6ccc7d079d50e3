"""Reads as a user go through a bounded psycopg_pool: no read ever runs as another user.

Real PostgreSQL: many threads read as different users through a pool of two connections, and
connections are handed back dirty on purpose (a session-level role and user setting). Writes
take their connections from a bounded pool too.
"""

from __future__ import annotations

import ast
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import PoolTimeout

import enclave
from enclave.config import Settings
from enclave.pipeline.store import Store, connected


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    pooled = Store(replace(settings, database_pool_size=2, database_pool_wait_seconds=2))
    yield pooled
    pooled.close()


def seen_as(store: Store, user: str) -> tuple[str, str]:
    """The role and enclave.user a read as user runs under."""
    with store.reading_as(store.viewer(user)) as cur:
        row = cur.execute(
            "select current_user as role, current_setting('enclave.user', true) as viewer"
        ).fetchone()
    return row["role"], row["viewer"]


def test_concurrent_reads_each_see_only_their_own_user(store: Store) -> None:
    users = [f"user{i}" for i in range(12)]
    for name in users:
        store.add_user(name, [f"group{i % 3}" for i in range(2)])
    rng = random.Random(5)
    asked = [rng.choice(users) for _ in range(600)]
    with ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(lambda user: (user, seen_as(store, user)), asked))
    assert all(role == "enclave_reader" and viewer == user for user, (role, viewer) in seen)
    assert store._readers.get_stats()["pool_size"] <= 2


def test_a_read_as_a_user_is_read_only_under_the_reader_role(store: Store) -> None:
    store.add_user("alice", ["staff"])
    with store.reading_as(store.viewer("alice")) as cur:
        row = cur.execute(
            "select current_user as role, current_setting('transaction_read_only') as ro"
        ).fetchone()
        assert row == {"role": "enclave_reader", "ro": "on"}
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            cur.execute("insert into audit_secret(id, key) values (2, 'x')")


def test_a_connection_left_dirty_is_reset_before_anyone_else_gets_it(store: Store) -> None:
    store.add_user("alice", ["staff"])
    store.add_user("mallory", ["staff"])
    with store.reading_as(store.viewer("mallory")) as cur:
        # Session-level, not transaction-local: these would outlive the read without the reset.
        cur.execute("select set_config('enclave.user', 'mallory', false)")
        cur.execute("set role enclave_reader")
    for _ in range(6):
        with store._readers.connection() as conn:
            row = conn.execute(
                "select current_user = session_user as own, "
                "coalesce(current_setting('enclave.user', true), '') as viewer"
            ).fetchone()
            assert row["own"] and row["viewer"] == ""
        assert seen_as(store, "alice") == ("enclave_reader", "alice")


def test_the_checkout_check_refuses_a_dirty_connection(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should a reset ever miss something, the check on checkout still keeps it out."""
    store.add_user("alice", ["staff"])
    store.add_user("mallory", ["staff"])
    monkeypatch.setattr(store._readers, "_reset", None)
    with store.reading_as(store.viewer("mallory")) as cur:
        cur.execute("select set_config('enclave.user', 'mallory', false)")
    refused_before = store._readers.get_stats().get("connections_lost", 0)
    for _ in range(4):
        assert seen_as(store, "alice") == ("enclave_reader", "alice")
    assert store._readers.get_stats().get("connections_lost", 0) > refused_before


def test_an_exhausted_pool_refuses_after_the_wait(store: Store) -> None:
    store.add_user("alice", ["staff"])
    viewer = store.viewer("alice")
    with store.reading_as(viewer), store.reading_as(viewer):  # both connections taken
        began = time.monotonic()
        with pytest.raises(PoolTimeout), store.reading_as(viewer):
            pass
        assert 1.5 < time.monotonic() - began < 10
    assert seen_as(store, "alice") == ("enclave_reader", "alice")


def test_writes_share_a_bounded_pool_however_many_threads_run(store: Store) -> None:
    """A server's worker threads come and go (anyio: up to 40); writes must not hold one
    connection per thread, or replicas exhaust PostgreSQL's max_connections."""
    store.add_user("alice", ["staff"])
    pids: set[int] = set()
    lock = threading.Lock()

    @connected
    def write(self: Store) -> None:
        pid = self.conn.execute("select pg_backend_pid() as pid").fetchone()["pid"]
        self.viewer("alice")  # nested: the same connection, not a second one
        assert self.conn.execute("select pg_backend_pid() as pid").fetchone()["pid"] == pid
        with lock:
            pids.add(pid)

    for _ in range(3):  # bursts of short-lived threads, as a server's thread pool has them
        threads = [threading.Thread(target=write, args=(store,)) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert 1 <= len(pids) <= 2  # 60 threads, one connection each before the writers' pool
    assert store._writers.get_stats()["pool_size"] <= 2


def test_a_write_outside_a_connection_block_is_refused(store: Store) -> None:
    with pytest.raises(RuntimeError, match="outside a connection"):
        store.conn.execute("select 1")
    with store.connection() as conn:
        assert store.conn is conn


def test_every_use_of_conn_holds_a_pooled_connection() -> None:
    """Statically: each function that touches `.conn` is @connected (else it would fail at run
    time on a path the tests might not reach)."""
    unguarded = []
    for path in Path(enclave.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef) or node.name in ("conn", "connection"):
                continue  # Database's own: where the held connection is kept
            touches = any(isinstance(n, ast.Attribute) and n.attr == "conn" for n in ast.walk(node))
            guarded = any(getattr(d, "id", None) == "connected" for d in node.decorator_list)
            if touches and not guarded:
                unguarded.append(f"{path.name}:{node.name}")
    assert unguarded == []
