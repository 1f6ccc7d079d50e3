"""The embedded PostgreSQL server gets Enclave's settings (shared buffers, no JIT)."""

from __future__ import annotations

from pathlib import Path

from enclave.config import Settings
from enclave.pipeline.store import Store
from enclave.pipeline.store.database import embedded_server_settings
from tests.conftest import sql


def test_the_embedded_server_is_tuned_from_its_next_start(tmp_path: Path) -> None:
    settings = Settings.load(data_dir=tmp_path / "data", database_url="")
    wanted = embedded_server_settings()
    megabytes = int(wanted["shared_buffers"].removesuffix("MB"))
    with Store(settings) as store:
        assert sql(store, "show jit")[0]["jit"] == "off"  # applies at once
        saved = dict(
            (r["name"], r["setting"])
            for r in sql(
                store,
                "select name, setting from pg_file_settings where sourcefile like '%auto.conf'",
            )
        )
        assert saved == wanted
    with Store(settings) as store:  # the server stopped with its last user and started again
        row = sql(
            store,
            "select setting::bigint * 8 / 1024 as mb from pg_settings "
            "where name = 'shared_buffers'",
        )[0]
        assert row["mb"] == megabytes
        assert sql(store, "show jit")[0]["jit"] == "off"
