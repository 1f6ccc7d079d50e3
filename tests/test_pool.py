"""Reads as a user go through a bounded psycopg_pool: no read ever runs as another user.

Real PostgreSQL: many threads read as different users through a pool of two connections, and
connections are handed back dirty on purpose (a session-level role and user setting).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from psycopg_pool import PoolTimeout

from enclave.config import Settings
from enclave.pipeline.store import Store


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


def test_connections_of_ended_threads_are_closed(store: Store) -> None:
    """A server's worker threads come and go; each ended thread's connection must not stay."""
    pids: list[int] = []

    def write() -> None:
        pids.append(store.conn.execute("select pg_backend_pid() as pid").fetchone()["pid"])

    for _ in range(3):  # bursts of short-lived threads, as a server's thread pool has them
        threads = [threading.Thread(target=write) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    ended = list(pids)
    assert len(set(ended)) >= 10  # each thread had a connection of its own
    # The ended threads' connections are closed when the next thread connects.
    last = threading.Thread(target=write)
    last.start()
    last.join()
    still_open = store.conn.execute(
        "select count(*) as n from pg_stat_activity where pid = any(%s)", [ended]
    ).fetchone()["n"]
    assert still_open == 0
