"""Ingest through the job queue: `enclave ingest --queue` and `enclave worker` processes on
one database, with a worker killed half-way (SIGKILL)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from enclave.config import Settings
from enclave.pipeline.store import Store
from tests.conftest import sql
from tests.test_cli import ENCLAVE, as_json


def write_corpus(folder: Path, files: int) -> None:
    folder.mkdir()
    for i in range(files):
        paragraphs = "\n\n".join(
            f"Paragraph {p} of memo {i} covers valve {i * p}, pump {p} and line {i + p}."
            for p in range(40)
        )
        (folder / f"memo{i:02}.md").write_text(f"# Memo {i}\n\n{paragraphs}\n")


def second_job_just_started(store: Store) -> bool:
    """A job has succeeded, and another started less than a second ago."""
    row = sql(
        store,
        "select (select count(*) from procrastinate_jobs where status = 'succeeded') as done, "
        "(select min(extract(epoch from now() - e.at)) from procrastinate_jobs j "
        "join procrastinate_events e on e.job_id = j.id and e.type = 'started' "
        "where j.status = 'doing') as running_s",
    )[0]
    return row["done"] >= 1 and row["running_s"] is not None and row["running_s"] < 1.0


def test_a_killed_worker_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    corpus, data = tmp_path / "corpus", tmp_path / "data"
    write_corpus(corpus, 30)
    queued = as_json(
        data, "ingest", str(corpus), "--allow", "group:all", "--create-principals", "--queue"
    )
    assert queued["queued"] == 30 and len(queued["job_ids"]) == 4  # 8 files a job
    worker = [*ENCLAVE, "worker", "--stalled-after", "2", "--data-dir", str(data)]
    first = subprocess.Popen(worker, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = Store(Settings.load(data_dir=data))
    try:
        # Kill it just after it started its second job (a job takes seconds): half-way.
        deadline = time.time() + 300
        while time.time() < deadline and not second_job_just_started(store):
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    done = store.counts()["documents"]
    left = sql(store, "select id from procrastinate_jobs where status = 'doing'")
    assert 0 < done < 30 and len(left) == 1, "the kill must land in the middle of a job"
    time.sleep(3)  # the dead worker's heartbeat is now older than --stalled-after

    second = subprocess.run([*worker, "--until-empty"], capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert "left by a dead worker" in second.stderr
    jobs = sql(store, "select id, status, attempts from procrastinate_jobs order by id")
    assert {j["status"] for j in jobs} == {"succeeded"} and len(jobs) == 4
    (retried,) = [j for j in jobs if j["id"] == left[0]["id"]]
    assert retried["attempts"] == 2
    rows = sql(
        store,
        "select d.source, count(c.id) as n, max(c.ordinal) as last, "
        "bool_and(substr(d.body, c.char_start + 1, c.char_end - c.char_start) = c.text) "
        "as exact from documents d left join chunks c on c.document_id = d.id group by d.id",
    )
    assert len(rows) == 30 and len({r["source"] for r in rows}) == 30
    assert all(r["n"] > 0 and r["last"] == r["n"] - 1 and r["exact"] for r in rows)
    store.close()
