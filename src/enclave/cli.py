"""The `enclave` command line. Thin: parse, call the pipeline, print (text or --json)."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from enclave.access import AccessError, Principal, check_name
from enclave.accounts import Accounts
from enclave.app import Enclave
from enclave.config import ConfigError, Settings
from enclave.entities import Answer, Hit
from enclave.ingest import IngestReport
from enclave.llm import LLMError
from enclave.serialize import answer_json, document_json, hit_json

app = typer.Typer(
    help="Enclave: ask questions of your own documents, with access control, on your own hardware.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
users_app = typer.Typer(help="Manage users and their groups.", no_args_is_help=True)
acl_app = typer.Typer(help="Show or change who may read a document.", no_args_is_help=True)
app.add_typer(users_app, name="users")
eval_app = typer.Typer(
    help="Measure retrieval and answer quality on BEIR / SQuAD-format data.", no_args_is_help=True
)
tune_app = typer.Typer(
    help="The model workshop: adapt the models to your own documents, measured before/after.",
    no_args_is_help=True,
)
app.add_typer(acl_app, name="acl")
app.add_typer(eval_app, name="eval")
app.add_typer(tune_app, name="tune")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory (default: $ENCLAVE_DATA_DIR, then ~/.local/share/enclave).",
        show_default=False,
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
AsUser = Annotated[str, typer.Option("--as", help="The user on whose behalf to read.")]
K = Annotated[int, typer.Option("-k", "--k", min=1, max=100, help="Number of results.")]


@contextmanager
def enclave(data_dir: Path | None, as_json: bool, **overrides: Any) -> Iterator[Enclave]:
    """An Enclave for one command; known errors become a message and exit code 2."""
    try:
        with Enclave(Settings.load(data_dir=data_dir, **overrides)) as instance:
            yield instance
    except (ConfigError, AccessError, LLMError) as exc:
        if as_json:
            print(json.dumps({"error": str(exc)}))
        else:
            err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


def progress_bars(as_json: bool) -> Progress:
    """Progress on stderr (never in the way of --json on stdout)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=as_json,
    )


def emit(data: dict[str, Any]) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def where(hit: Hit) -> str:
    parts = [hit.file_name]
    if hit.page is not None:
        parts.append(f"p. {hit.page}")
    if hit.heading_path:
        parts.append(" › ".join(hit.heading_path))
    return ", ".join(parts)


def excerpt(text: str, limit: int = 240) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def warn_unknown(instance: Enclave, user: str) -> None:
    if not instance.store.user_exists(user):
        err.print(f"[yellow]warning:[/yellow] unknown user {user!r}: no documents are visible")


@app.command()
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
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Add or update documents in the index."""
    with enclave(data_dir, as_json, classifier_model=classifier) as instance:
        acl = [Principal.parse(a) for a in allow] if allow else None
        with progress_bars(as_json) as progress:
            report = instance.ingestor.ingest(paths, acl, prune=prune, progress=progress)
    print_report(report, as_json, acl)
    if report.with_status("failed") and not (
        report.with_status("added")
        or report.with_status("updated")
        or report.with_status("unchanged")
    ):
        raise typer.Exit(1)


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


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name.")],
    group: Annotated[
        list[str] | None, typer.Option("--group", help="Group to add the user to (repeatable).")
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an administrator.")] = False,
    password: Annotated[
        bool, typer.Option("--password", help="Prompt for a password (for the web UI).")
    ] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a user (or add an existing one to more groups)."""
    secret = read_password(password, password_stdin)
    with enclave(data_dir, as_json) as instance:
        groups = [check_name(g) for g in group or []]
        instance.store.add_user(check_name(name), groups)
        accounts = Accounts(instance.store)
        if secret:
            accounts.set_password(name, secret)
        if admin:
            accounts.set_admin(name, True)
        user = next(u for u in instance.store.users() if u["name"] == name)
        is_admin = accounts.is_admin(name)
    if as_json:
        emit({"user": user["name"], "groups": user["groups"], "admin": is_admin})
    else:
        role = " (admin)" if is_admin else ""
        out.print(f"user {name}{role}: groups {', '.join(user['groups']) or '(none)'}")


def read_password(prompt: bool, stdin: bool) -> str | None:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    if prompt:
        return typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return None


@users_app.command("passwd")
def users_passwd(
    name: Annotated[str, typer.Argument(help="User name.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Set a user's password (ends their browser sessions)."""
    secret = read_password(True, password_stdin)
    with enclave(data_dir, as_json) as instance:
        Accounts(instance.store).set_password(name, secret or "")
    if as_json:
        emit({"user": name, "password_set": True})
    else:
        out.print(f"password of {name} set")


@users_app.command("token")
def users_token(
    name: Annotated[str, typer.Argument(help="User name.")],
    token_name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "cli",
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a personal API token (shown once; stored hashed)."""
    with enclave(data_dir, as_json) as instance:
        token_id, secret = Accounts(instance.store).create_token(name, token_name)
    if as_json:
        emit({"user": name, "id": token_id, "name": token_name, "token": secret})
    else:
        out.print(f"token {token_id} for {name} (shown once, store it now):\n{secret}")


@users_app.command("tokens")
def users_tokens(
    name: Annotated[str, typer.Argument(help="User name.")],
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """List a user's API tokens (never their secrets)."""
    with enclave(data_dir, as_json) as instance:
        tokens = Accounts(instance.store).tokens(name)
    if as_json:
        emit({"user": name, "tokens": [asdict(t) for t in tokens]})
        return
    for token in tokens:
        state = "revoked" if token.revoked else f"last used {token.last_used_at or 'never'}"
        out.print(f"{token.id}  {token.name}  {token.prefix}…  {state}")


@users_app.command("revoke")
def users_revoke(
    name: Annotated[str, typer.Argument(help="User name.")],
    token_id: Annotated[int, typer.Argument(help="Token id (from `enclave users tokens`).")],
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Revoke an API token."""
    with enclave(data_dir, as_json) as instance:
        revoked = Accounts(instance.store).revoke_token(name, token_id)
    if as_json:
        emit({"user": name, "id": token_id, "revoked": revoked})
    else:
        out.print(f"token {token_id} {'revoked' if revoked else 'not found (or already revoked)'}")
    if not revoked:
        raise typer.Exit(1)


@users_app.command("list")
def users_list(data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """List users and their groups."""
    with enclave(data_dir, as_json) as instance:
        users = instance.store.users()
    if as_json:
        emit({"users": [{"user": u["name"], "groups": u["groups"]} for u in users]})
        return
    table = Table("user", "groups")
    for user in users:
        table.add_row(user["name"], ", ".join(user["groups"]))
    out.print(table)


@users_app.command("remove-group")
def users_remove_group(
    name: Annotated[str, typer.Argument(help="User name.")],
    group: Annotated[str, typer.Option("--group", help="Group to take the user out of.")],
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Take a user out of a group."""
    with enclave(data_dir, as_json) as instance:
        removed = instance.store.remove_from_group(name, group)
    if as_json:
        emit({"user": name, "group": group, "removed": removed})
    else:
        out.print(f"{name} {'removed from' if removed else 'was not in'} {group}")


@app.command()
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


@app.command()
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


@app.command()
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
    if not answer.sources:
        out.print("[dim](no documents you may read matched the question)[/dim]")
        return
    if not answer.citations:
        out.print("[dim](the answer cites no source; sources shown to the model:)[/dim]")
        for n, hit in enumerate(answer.sources, start=1):
            out.print(f"  [{n}] {hit.title} [dim]({where(hit)})[/dim]")
        return
    out.print("\n[bold]Sources[/bold]")
    for citation in answer.citations:
        hit = citation.hit
        how = (
            " [dim](matched to the answer, not cited by the model)[/dim]"
            if citation.inferred
            else ""
        )
        out.print(f"  [{citation.number}] {hit.title} [dim]({where(hit)})[/dim]{how}")
        out.print(f"      “{excerpt(hit.text, 300)}”")


@acl_app.command("show")
def acl_show(
    document: Annotated[str, typer.Argument(help="Document id, path or file name.")],
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Who may read a document."""
    with enclave(data_dir, as_json) as instance:
        document_id = resolve_document(instance, document)
        entries = instance.store.acl(document_id)
    if as_json:
        emit({"document_id": document_id, "allow": [str(p) for p in entries]})
    else:
        out.print(f"document {document_id}: {', '.join(map(str, entries)) or '(nobody)'}")


@acl_app.command("set")
def acl_set(
    document: Annotated[str, typer.Argument(help="Document id, path or file name.")],
    allow: Annotated[
        list[str], typer.Option("--allow", help="user:NAME or group:NAME (repeatable).")
    ],
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Replace a document's access list."""
    with enclave(data_dir, as_json) as instance:
        document_id = resolve_document(instance, document)
        instance.store.set_acl(document_id, [Principal.parse(a) for a in allow])
        entries = instance.store.acl(document_id)
    if as_json:
        emit({"document_id": document_id, "allow": [str(p) for p in entries]})
    else:
        out.print(f"document {document_id}: {', '.join(map(str, entries))}")


def resolve_document(instance: Enclave, ref: str) -> int:
    document_id = instance.store.find_document(ref)
    if document_id is None:
        raise ConfigError(f"no single document matches {ref!r} (give its id from `enclave docs`)")
    return document_id


@app.command()
def demo(data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Ingest the built-in demo corpus and show two users getting different answers."""
    from enclave.demo import run_demo

    with enclave(data_dir, as_json) as instance:
        run_demo(instance, out if not as_json else None, emit if as_json else None)


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    data_dir: DataDir = None,
) -> None:
    """Run the HTTP API, the OpenAI-compatible API and the web UI."""
    import uvicorn

    from enclave.web import create_app

    with enclave(data_dir, False) as instance:
        if not Accounts(instance.store).admins():
            err.print(
                "[yellow]no admin yet:[/yellow] create one with "
                "`enclave users add NAME --admin --password`"
            )
        instance.warm_up()
        uvicorn.run(create_app(instance), host=host, port=port, log_level="info")


Dataset = Annotated[
    Path, typer.Option("--dataset", help="A BEIR folder or a SQuAD-format JSON file.")
]
Questions = Annotated[
    Path | None,
    typer.Option("--questions", help="SQuAD file with the same question ids in another language."),
]
Limit = Annotated[int | None, typer.Option("--limit", min=1, help="Use only the first N queries.")]


@contextmanager
def evaluation(data_dir: Path | None, as_json: bool) -> Iterator[tuple[Enclave, Path]]:
    """An Enclave on a scratch data directory unless one is given: evaluations index a corpus."""
    with tempfile.TemporaryDirectory(prefix="enclave-eval-") as scratch:
        work = Path(scratch)
        with enclave(data_dir or work / "data", as_json) as instance:
            yield instance, work


@eval_app.command("retrieval")
def eval_retrieval(
    dataset: Dataset,
    questions: Questions = None,
    limit: Limit = None,
    out: Annotated[Path, typer.Option("--out", help="Folder for JSON and chart.")] = Path(
        "eval-results"
    ),
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """nDCG@10, recall@10/@100, MRR@10 and latency for BM25, dense, hybrid (and rerank)."""
    from enclave.evaluation import Evaluator, load_dataset, retrieval_table, save_report

    corpus, _ = load_dataset(dataset, questions)
    if limit:
        corpus.queries = dict(list(corpus.queries.items())[:limit])
    with evaluation(data_dir, as_json) as (instance, work):
        evaluator = Evaluator(instance)
        evaluator.index(corpus, work)
        report = evaluator.retrieval(corpus)
    json_path, png_path = save_report(report, out)
    if as_json:
        emit(report.__dict__ | {"json": str(json_path), "chart": str(png_path)})
    else:
        print(retrieval_table(report))
        print(f"\nwritten: {json_path}, {png_path}")


@eval_app.command("qa")
def eval_qa(
    dataset: Dataset,
    questions: Questions = None,
    limit: Limit = 50,
    k: K = 5,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Gold-passage hit@k, answer exact match / F1 and citation precision (runs the LLM)."""
    from enclave.evaluation import Evaluator, load_dataset

    corpus, items = load_dataset(dataset, questions)
    if not items:
        raise typer.BadParameter(
            "QA needs a SQuAD-format file with answers", param_hint="--dataset"
        )
    with evaluation(data_dir, as_json) as (instance, work):
        evaluator = Evaluator(instance)
        evaluator.index(corpus, work)
        result = evaluator.qa(items[:limit], k=k)
    if as_json:
        emit({"dataset": corpus.name} | result)
    else:
        for name, value in result.items():
            out.print(
                f"{name:>24}: {value:.3f}" if isinstance(value, float) else f"{name:>24}: {value}"
            )


@app.command()
def reindex(
    embedding_model: Annotated[
        str,
        typer.Option(
            "--embedding-model",
            help="The model to switch to: a folder (e.g. a `tune embedder` run's model/), "
            "a Hugging Face id, or all-MiniLM-L6-v2.",
        ),
    ],
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Re-embed every chunk with another embedding model, then switch search over to it.

    Search keeps the old vectors until the switch (one transaction); an interrupted run
    resumes where it stopped. Restart running servers afterwards.
    """
    from enclave.embedding import Embedder
    from enclave.ingest import reembed

    with enclave(data_dir, as_json) as instance:
        old = instance.store.indexed_embedding_model()
        embedder = Embedder(
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


Seed = Annotated[int, typer.Option("--seed", help="Random seed: the same seed, the same metrics.")]
PairsDir = Annotated[
    Path,
    typer.Option("--pairs", help="A `tune pairs` run folder.", exists=True, file_okay=False),
]


def runs_root(instance: Enclave) -> Path:
    return instance.settings.data_dir / "runs"


def finish_run(run: Any, metrics: dict[str, Any], summary: str, as_json: bool) -> None:
    """Write metrics and the one-line summary; print it (or everything as JSON)."""
    run.save_metrics(metrics)
    run.save_summary(summary)
    if as_json:
        emit({"run": str(run.folder), "summary": summary} | metrics)
    else:
        out.print(summary)
        out.print(f"run folder: {run.folder}")


@tune_app.command("pairs")
def tune_pairs(
    user: AsUser,
    llm: Annotated[
        bool, typer.Option("--llm/--no-llm", help="Also let the local LLM write questions.")
    ] = True,
    max_chunks: Annotated[
        int | None, typer.Option("--max-chunks", min=1, help="Use a sample of N chunks.")
    ] = None,
    negatives: Annotated[int, typer.Option("--negatives", min=0, max=10)] = 1,
    test_fraction: Annotated[float, typer.Option("--test-fraction", min=0.0, max=0.9)] = 0.2,
    seed: Seed = 0,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Training pairs from the documents USER may read, hard negatives, held-out documents."""
    from enclave.runs import Run
    from enclave.workshop import build_pairs

    config = {
        "user": user,
        "llm": llm,
        "max_chunks": max_chunks,
        "negatives": negatives,
        "test_fraction": test_fraction,
        "seed": seed,
    }
    with enclave(data_dir, as_json) as instance:
        warn_unknown(instance, user)
        run = Run.create(runs_root(instance), "pairs", config)
        with progress_bars(as_json) as progress:
            try:
                _, stats = build_pairs(
                    instance,
                    user,
                    run.folder,
                    llm,
                    max_chunks,
                    negatives,
                    test_fraction,
                    seed,
                    progress,
                )
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint="--as") from exc
    summary = (
        f"pairs: {stats['train_pairs']} train, {stats['test_pairs']} test "
        f"({stats['test_documents']} held-out documents) from {stats['chunks_sampled']} chunks "
        f"readable by {user}"
    )
    finish_run(run, stats, summary, as_json)


def _ndcg_line(metrics: dict[str, Any]) -> str:
    return f"{metrics['ndcg@10']:.3f}"


@tune_app.command("embedder")
def tune_embedder(
    pairs: PairsDir,
    base: Annotated[str, typer.Option("--base", help="Model to start from.")] = "",
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 1,
    batch_size: Annotated[int, typer.Option("--batch-size", min=2)] = 32,
    learning_rate: Annotated[float, typer.Option("--learning-rate")] = 2e-5,
    seed: Seed = 0,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Fine-tune the embedding model (MNRL with hard negatives); nDCG@10 before and after."""
    from enclave.runs import Run
    from enclave.training_data import PairSet
    from enclave.workshop import tune_embedder as tune

    config = {
        "pairs": str(pairs),
        "base": base,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
    }
    with enclave(data_dir, as_json) as instance:
        base = base or instance.store.indexed_embedding_model() or "all-MiniLM-L6-v2"
        run = Run.create(runs_root(instance), "embedder", config | {"base": base})
        # The trainer prints its log lines on stdout: keep stdout for the result.
        with redirect_stdout(sys.stderr):
            metrics = tune(base, PairSet.load(pairs), run, epochs, batch_size, learning_rate, seed)
    switch = f"switch with `enclave reindex --embedding-model {metrics['model']}`"
    if "test_pairs" in metrics["before"]:
        before, after = metrics["before"]["test_pairs"], metrics["after"]["test_pairs"]
        summary = (
            f"embedder: nDCG@10 on {before['queries']} held-out queries {_ndcg_line(before)} -> "
            f"{_ndcg_line(after)}; {switch}"
        )
    else:
        summary = f"embedder: trained (no held-out queries to measure: --test-fraction 0); {switch}"
    finish_run(run, metrics, summary, as_json)


@tune_app.command("reranker")
def tune_reranker(
    pairs: PairsDir,
    user: AsUser,
    base: Annotated[str, typer.Option("--base", help="Model to start from.")] = "all-MiniLM-L6-v2",
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 2,
    batch_size: Annotated[int, typer.Option("--batch-size", min=2)] = 16,
    candidates: Annotated[
        int, typer.Option("--candidates", min=1, help="Hybrid top-N reranked.")
    ] = 30,
    seed: Seed = 0,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Fine-tune a cross-encoder reranker on the pairs and their mined negatives."""
    from enclave.runs import Run
    from enclave.training_data import PairSet
    from enclave.workshop import tune_reranker as tune

    config = {
        "pairs": str(pairs),
        "user": user,
        "base": base,
        "epochs": epochs,
        "batch_size": batch_size,
        "candidates": candidates,
        "seed": seed,
    }
    with enclave(data_dir, as_json) as instance:
        warn_unknown(instance, user)
        run = Run.create(runs_root(instance), "reranker", config)
        with redirect_stdout(sys.stderr):
            metrics = tune(
                instance,
                user,
                base,
                PairSet.load(pairs),
                run,
                epochs,
                batch_size,
                candidates=candidates,
                seed=seed,
            )
    use = f"use it with ENCLAVE_RERANKER_MODEL={metrics['model']}"
    if "test_pairs" not in metrics:
        summary = f"reranker: trained (no held-out queries to measure); {use}"
    else:
        test = metrics["test_pairs"]
        summary = (
            f"reranker: nDCG@10 on {test['hybrid']['queries']} held-out queries, hybrid "
            f"{_ndcg_line(test['hybrid'])} -> reranked "
            f"{_ndcg_line(test['hybrid+tuned cross-encoder'])} (untuned "
            f"{_ndcg_line(test['hybrid+untuned cross-encoder'])}); {use}"
        )
    finish_run(run, metrics, summary, as_json)


@tune_app.command("classifier")
def tune_classifier(
    data: Annotated[
        Path, typer.Option("--data", help="Labelled CSV (with header) or JSONL.", exists=True)
    ],
    text_column: Annotated[str, typer.Option("--text-column")] = "text",
    label_column: Annotated[str, typer.Option("--label-column")] = "label",
    base: Annotated[str, typer.Option("--base", help="Encoder to start from.")] = (
        "all-MiniLM-L6-v2"
    ),
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="At most this many.")] = 10,
    patience: Annotated[
        int, typer.Option("--patience", min=1, help="Stop after N epochs without better F1.")
    ] = 2,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 16,
    learning_rate: Annotated[float, typer.Option("--learning-rate")] = 5e-5,
    seed: Seed = 0,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Fine-tune a text classifier; accuracy/F1 per epoch, early stopping, TF-IDF baseline."""
    from enclave.classifier import DataError, load_examples, train_classifier
    from enclave.runs import Run

    try:
        examples = load_examples(data, text_column, label_column)
    except DataError as exc:
        raise typer.BadParameter(str(exc), param_hint="--data") from exc
    config = {
        "data": str(data),
        "text_column": text_column,
        "label_column": label_column,
        "base": base,
        "epochs": epochs,
        "patience": patience,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
    }
    settings = Settings.load(data_dir=data_dir)
    run = Run.create(settings.data_dir / "runs", "classifier", config)

    def report(entry: dict[str, Any]) -> None:
        if not as_json:
            err.print(
                f"epoch {entry['epoch']}: loss {entry['train_loss']:.4f}, validation accuracy "
                f"{entry['val_accuracy']:.3f}, macro-F1 {entry['val_macro_f1']:.3f}"
            )

    metrics = train_classifier(
        examples,
        run,
        base,
        epochs,
        batch_size,
        learning_rate,
        patience,
        seed=seed,
        on_epoch=report,
    )
    test, baseline = metrics["test"], metrics["baseline_tfidf_svm_test"]
    summary = (
        f"classifier: test accuracy {test['accuracy']:.3f}, macro-F1 {test['macro_f1']:.3f} "
        f"(TF-IDF + linear SVM: {baseline['accuracy']:.3f}, {baseline['macro_f1']:.3f}); "
        f"best epoch {metrics['best_epoch']}"
    )
    finish_run(run, metrics, summary, as_json)


@tune_app.command("llm")
def tune_llm(
    data: Annotated[
        Path, typer.Option("--data", help='Chat JSONL: {"messages": [...]} per line.', exists=True)
    ],
    base: Annotated[
        str, typer.Option("--base", help="gemma-3-270m (packaged) or a Hugging Face id / folder.")
    ] = "gemma-3-270m",
    steps: Annotated[int, typer.Option("--steps", min=1)] = 20,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 4,
    learning_rate: Annotated[float, typer.Option("--learning-rate")] = 2e-4,
    rank: Annotated[int, typer.Option("--rank", min=1, help="LoRA rank.")] = 8,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=16)] = 512,
    gguf: Annotated[
        bool,
        typer.Option(
            "--gguf/--no-gguf", help="Also export the merged model as GGUF (F16, Q4_K_M)."
        ),
    ] = True,
    seed: Seed = 0,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """LoRA fine-tune a small LLM; held-out loss before/after; adapter, merged model, GGUF."""
    from enclave.gguf_export import ExportError
    from enclave.lora import ChatDataError, export_to_gguf, train_lora
    from enclave.runs import Run

    config = {
        "data": str(data),
        "base": base,
        "steps": steps,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "rank": rank,
        "max_tokens": max_tokens,
        "seed": seed,
    }
    settings = Settings.load(data_dir=data_dir)
    run = Run.create(settings.data_dir / "runs", "llm", config)
    with progress_bars(as_json) as progress:
        task = progress.add_task("LoRA steps", total=steps)
        try:
            metrics = train_lora(
                base,
                data,
                run,
                steps,
                batch_size,
                learning_rate,
                rank,
                2 * rank,
                max_tokens,
                seed=seed,
                on_step=lambda _step, _loss: progress.advance(task),
            )
        except ChatDataError as exc:
            raise typer.BadParameter(str(exc), param_hint="--data") from exc
    summary = (
        f"llm: held-out loss {metrics['held_out_loss_before']:.3f} -> "
        f"{metrics['held_out_loss_after']:.3f} after {steps} steps "
        f"({metrics['train_tokens_per_second']} tokens/s on {metrics['device']})"
    )
    if gguf:
        try:
            metrics["gguf"] = export_to_gguf(run.folder, base)
            quantized = metrics["gguf"]["Q4_K_M"]
            summary += (
                f"; GGUF Q4_K_M {quantized['mb']} MB, {quantized['tokens_per_second']} tokens/s "
                f"(F16 {metrics['gguf']['f16']['mb']} MB): ENCLAVE_LLM_MODEL={quantized['path']}"
            )
        except ExportError as exc:
            metrics["gguf"] = {"error": str(exc)}
            summary += f"; no GGUF: {exc}"
    finish_run(run, metrics, summary, as_json)


@app.command()
def classify(
    model: Annotated[str, typer.Option("--model", help="A `tune classifier` model folder.")],
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to classify.")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="Classify this document's text.", exists=True)
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Apply a fine-tuned classifier to texts or a document."""
    from enclave.classifier import DataError, TextClassifier
    from enclave.loaders import LoadError, load

    inputs = list(texts or [])
    try:
        if file:
            inputs.append(load(file, 50 * 2**20).text)
        if not inputs:
            raise typer.BadParameter("give texts or --file")
        classifier = TextClassifier(model)
    except (DataError, LoadError, OSError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    results = [
        {"label": label, "score": round(score, 4)} for label, score in classifier.predict(inputs)
    ]
    if as_json:
        emit({"model": classifier.name, "results": results})
    else:
        for result in results:
            out.print(f"{result['label']}\t{result['score']:.3f}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `enclave` script."""
    app(args=argv)


if __name__ == "__main__":
    main()
