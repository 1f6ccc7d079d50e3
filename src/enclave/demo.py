"""`enclave demo`: ingest the fictional company corpus and show permissions at work."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console

from enclave.pipeline import audit
from enclave.pipeline.access import Principal
from enclave.pipeline.wiring import Enclave

QUESTIONS = [
    "How long does the audit log keep entries?",
    "Wie viele Urlaubstage bekommen Mitarbeitende?",
]


def corpus_dir() -> Path:
    """The demo corpus shipped inside the package."""
    return Path(str(resources.files("enclave") / "demo_corpus"))


def setup_demo(instance: Enclave) -> dict[str, Any]:
    """Create the demo users and ingest each corpus folder with its access list."""
    root = corpus_dir()
    access = json.loads((root / "access.json").read_text())
    for user, groups in access["users"].items():
        instance.store.add_user(user, groups)
    reports = {}
    for folder, allow in access["folders"].items():
        report = instance.ingestor.ingest([root / folder], [Principal.parse(a) for a in allow])
        reports[folder] = {
            "allow": allow,
            "documents": len(report.files),
            "failed": [f.path for f in report.with_status("failed")],
        }
    return {"users": access["users"], "folders": reports}


def run_demo(
    instance: Enclave, console: Console | None, emit: Callable[[dict[str, Any]], None] | None
) -> None:
    """Set up the corpus, then ask the same questions as alice and as bob."""
    setup = setup_demo(instance)
    users = list(setup["users"])
    result: dict[str, Any] = {"setup": setup, "runs": []}
    if console:
        console.print(f"[bold]Demo corpus ingested[/bold] into {instance.settings.data_dir}")
        for folder, info in setup["folders"].items():
            readers = ", ".join(info["allow"])
            console.print(f"  {folder}/: {info['documents']} documents, readable by {readers}")
        for user, groups in setup["users"].items():
            console.print(f"  user {user}: groups {', '.join(groups)}")
    for user in users:
        viewer = instance.store.viewer(user)
        visible = [d.title for d in instance.store.visible_documents(viewer)]
        run: dict[str, Any] = {"user": user, "visible_documents": visible, "answers": []}
        if console:
            console.rule(f"as {user} ({len(visible)} documents visible)")
        for question in QUESTIONS:
            if console:
                console.print(f"\n[bold]Q:[/bold] {question}\n[bold]A:[/bold] ", end="")
            answer = instance.assistant.ask(
                viewer,
                question,
                on_token=(lambda t: console.print(t, end="")) if console else None,
            )
            # The demo's users are shown passages like anyone else: the trail says so.
            instance.store.record(audit.asked(user, "cli", answer))
            run["answers"].append(
                {
                    "question": question,
                    "answer": answer.text,
                    "abstained": answer.abstained,
                    "sources": [h.title for h in answer.sources],
                    "citations": [
                        {"number": c.number, "title": c.hit.title} for c in answer.citations
                    ],
                }
            )
            if console and answer.abstained:
                console.print(
                    "\n   [dim](abstained: no passage this user may read answers it)[/dim]"
                )
            elif console:
                console.print()
                for n, hit in enumerate(answer.sources, start=1):
                    cited = "cited" if any(c.number == n for c in answer.citations) else "shown"
                    console.print(f"   [dim][{n}] {hit.title} ({hit.file_name}) — {cited}[/dim]")
        result["runs"].append(run)
    if console:
        console.rule()
        console.print(
            "Same questions, different answers: each user's sources come only from documents "
            "their groups may read.\n"
            'Try: enclave ask "How do I get a copy of the audit log?" --as alice'
        )
    if emit:
        emit(result)
