"""Ingest as jobs in PostgreSQL (procrastinate): enqueue files, and workers that ingest them.

Any number of `enclave worker` processes, on any machine that reaches the database and the
files, take one job (a few files, embedded in shared batches) at a time. Each file is
ingested in its own transaction (a re-run of the same file finds it unchanged), so a job
that is retried after its worker died neither loses nor duplicates a document. A worker
that stops sending heartbeats is presumed dead: the other workers put its job back in the
queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import procrastinate
from procrastinate.schema import SchemaManager

from enclave.pipeline.access import Principal
from enclave.pipeline.audit import Event, operator
from enclave.pipeline.ingest import discover
from enclave.pipeline.store import Store

if TYPE_CHECKING:
    from enclave.pipeline.wiring import Enclave

QUEUE = "ingest"
TASK = "enclave.ingest_files"
# Files per job: enough to fill the encoder's batches, few enough to spread over workers.
FILES_PER_JOB = 8
_SCHEMA_LOCK = 7361003

log = logging.getLogger("enclave.worker")
tasks = procrastinate.Blueprint()


@tasks.task(name=TASK, queue=QUEUE, retry=3, pass_context=True)
def ingest_files(
    context: procrastinate.JobContext, paths: list[str], allow: list[str] | None
) -> dict[str, str]:
    """Ingest a few files with the worker's Enclave; the job's result is each file's status."""
    enclave = context.additional_context["enclave"]
    acl = [Principal.parse(a) for a in allow] if allow is not None else None
    report = enclave.ingestor.ingest([Path(p) for p in paths], acl)
    for result in report.with_status("failed"):
        log.warning("%s: %s", result.path, result.error)
    changed = report.with_status("added") + report.with_status("updated")
    if changed:
        detail = {"files": len(paths), "changed": len(changed), "job_id": context.job.id}
        ids = tuple(r.document_id for r in changed if r.document_id is not None)
        enclave.store.record(Event(operator(), "cli", "ingest", document_ids=ids, detail=detail))
    return {r.path: r.status for r in report.files}


def queue_app(database_url: str) -> procrastinate.App:
    """The job queue on Enclave's database (its tables are created on first use)."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=database_url))
    app.add_tasks_from(tasks, namespace="enclave")
    return app


def ensure_queue(store: Store) -> None:
    """Create procrastinate's tables in Enclave's database, once (concurrent callers wait)."""
    with store.connection() as conn, conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", [_SCHEMA_LOCK])
        found = conn.execute(
            "select to_regclass('procrastinate_jobs') is not null as present"
        ).fetchone()
        if not (found and found["present"]):
            conn.execute(SchemaManager.get_schema())


def enqueue(
    store: Store,
    paths: Sequence[Path],
    allow: Sequence[Principal] | None,
    files_per_job: int = FILES_PER_JOB,
) -> tuple[int, list[int]]:
    """Jobs for the files under paths, files_per_job each: (number of files, job ids)."""
    files = [
        str(f) for f in sorted({f.resolve() for f in discover(p for p in paths if p.exists())})
    ]
    batches = [files[i : i + files_per_job] for i in range(0, len(files), files_per_job)]
    entries = [str(p) for p in allow] if allow is not None else None
    ensure_queue(store)

    async def defer() -> list[int]:
        app = queue_app(store.url)
        async with app.open_async():
            task = app.tasks[f"enclave:{TASK}"]
            return await task.batch_defer_async(
                *({"paths": batch, "allow": entries} for batch in batches)
            )

    return len(files), (asyncio.run(defer()) if batches else [])


def run_worker(
    enclave: Enclave,
    concurrency: int = 1,
    until_empty: bool = False,
    stalled_after_s: float = 30.0,
) -> None:
    """Process ingest jobs until stopped (or, until_empty, until none is left)."""
    ensure_queue(enclave.store)

    async def work() -> None:
        app = queue_app(enclave.store.url)
        async with app.open_async():
            await _requeue_stalled(app, stalled_after_s)
            watcher = asyncio.create_task(_watch_stalled(app, stalled_after_s))
            try:
                await app.run_worker_async(
                    queues=[QUEUE],
                    concurrency=concurrency,
                    wait=not until_empty,
                    additional_context={"enclave": enclave},
                    update_heartbeat_interval=max(0.5, stalled_after_s / 6),
                    stalled_worker_timeout=stalled_after_s,
                    install_signal_handlers=True,
                )
            finally:
                watcher.cancel()

    asyncio.run(work())


async def _requeue_stalled(app: procrastinate.App, stalled_after_s: float) -> int:
    """Put back the jobs of workers that stopped sending heartbeats (killed, crashed)."""
    stalled = await app.job_manager.get_stalled_jobs(
        queue=QUEUE, seconds_since_heartbeat=stalled_after_s
    )
    for job in stalled:
        log.warning("job %s (%s) was left by a dead worker: retrying it", job.id, job.task_kwargs)
        await app.job_manager.retry_job(job)
    return len(list(stalled))


async def _watch_stalled(app: procrastinate.App, stalled_after_s: float) -> None:
    while True:
        await asyncio.sleep(stalled_after_s / 2)
        try:
            await _requeue_stalled(app, stalled_after_s)
        except Exception:  # the next round tries again; the worker itself goes on
            log.exception("could not look for stalled jobs")
