"""Commands that read the index as a user: docs, search, ask."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from enclave.cli.common import (
    AsUser,
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
    reported,
    warn_unknown,
    where,
)
from enclave.cli.remote import Remote, running_server, server_events
from enclave.config import ConfigError
from enclave.pipeline import audit


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
            with printing(as_json) as print_piece:
                answer = instance.assistant.ask(
                    instance.store.viewer(user),
                    question,
                    search=search_query,
                    k=k,
                    use_search=not no_search,
                    on_token=print_piece,
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
        with (
            printing(as_json) as print_piece,
            remote.stream("/api/ask", user, body | {"stream": True}) as response,
        ):
            for event, data in server_events(response):
                if event == "token":
                    print_piece(data["text"])
                elif event == "answer":
                    result = data
                elif event == "error":
                    raise ConfigError(data["message"])
    result.pop("conversation_id", None)
    return result


@contextmanager
def printing(as_json: bool) -> Iterator[Callable[[str], None] | None]:
    """What prints the answer's pieces on stdout as they come (None with --json). Until the
    first, a spinner on stderr (on a terminal) says the answer is being worked on: searching,
    reading and checking take seconds before anything is shown."""
    if as_json:
        yield None
        return
    status = err.status("Searching your documents and writing the answer…")
    status.start()

    def print_piece(piece: str) -> None:
        status.stop()
        sys.stdout.write(piece)
        sys.stdout.flush()

    try:
        yield print_piece
    finally:
        status.stop()


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
