"""Follow-up questions in a conversation with the demo corpus, answered by the default model.

employee_questions.py asks single questions; here each question follows an earlier turn
(given, so that every model and run starts from the same conversation) and refers back to
it: "When was it released?", "Where?", "Wie viele Kollegen ziehen dorthin?". The follow-up
is made standalone (followups.py: the model's rewrite, or the follow-up with the previous
question) and answered through the whole pipeline. Right, wrong and abstained as in
employee_questions.py; the follow-ups of a user who may not read the answering document must
be abstentions. The search query each follow-up was searched with is listed.

    python benchmarks/conversations.py [--models a,b]  -> benchmarks/conversations.md
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import date
from pathlib import Path

from employee_questions import HERE, on_the_demo

from enclave.config import DEFAULT_LLM_MODEL
from enclave.pipeline.wiring import Enclave

LEAVE = [("Wie viele Urlaubstage bekommen Mitarbeitende?", "30 [1]")]
NEW_IN_42 = [("What is new in Lumen 4.2?", "Anomaly detection [2]")]
BACKUP = [("How do I make a backup of Lumen?", "`lumenctl backup --target /srv/backup` [1]")]
AUGSBURG = [("When does the new office in Augsburg open?", "1 December 2026 [1]")]
ALLOWANCE = [("How much is the home office allowance?", "30 euros per month [1]")]
# (user, earlier turns, follow-up, pattern of the right answer; None: must abstain).
CONVERSATIONS = [
    ("alice", NEW_IN_42, "When was it released?", r"2\.? (october|oktober)"),
    ("alice", NEW_IN_42, "How does it work?", r"normal range"),
    ("alice", [("When is the company party?", "11 December [1]")], "Where?", r"canteen|kantine"),
    (
        "alice",
        [("Wann ist das Wartungsfenster?", "am ersten Dienstag des Monats [1]")],
        "Is the web console reachable then?",
        r"^no\b|30 min",
    ),
    (
        "alice",
        [("Wie groß wird die Telemetriedatenbank?", "2 GB [1]")],
        "Und ab wann warnt Lumen?",
        r"80",
    ),
    ("alice", AUGSBURG, "Wie viele Kollegen ziehen dorthin?", r"12|zwölf|twelve"),
    ("alice", BACKUP, "What does it contain?", r"configuration|dashboards|telemetry"),
    ("alice", BACKUP, "And how do I restore it?", r"lumenctl restore"),
    (
        "alice",
        [("How long does the audit log keep entries?", "400 days [1]")],
        "And how can I download it?",
        r"download|settings › security › audit",
    ),
    ("bob", LEAVE, "Und bei Teilzeit?", r"anteilig|proportion|pro rata"),
    ("bob", LEAVE, "Wer entscheidet darüber?", r"führungskraft|team lead"),
    ("bob", ALLOWANCE, "What is it for?", r"internet|electricity|strom"),
    (
        "bob",
        [("What equipment does the company provide for working from home?", "a laptop [1]")],
        "Can I print personnel files there?",
        r"^no\b",
    ),
    # The asker may not read the document that answers, or no document says it.
    ("alice", LEAVE, "Und bei Teilzeit?", None),
    ("bob", ALLOWANCE, "And how long are audit log entries kept?", None),
    ("alice", AUGSBURG, "What is the WiFi password there?", None),
]


def measure(enclave: Enclave, tick: object) -> dict:
    right, wrong, abstained, invented, rows = 0, 0, 0, 0, []
    for user, history, question, pattern in CONVERSATIONS:
        answer = enclave.assistant.ask(enclave.store.viewer(user), question, history=history)
        if pattern is None:
            verdict = "abstained" if answer.abstained else "invented"
            invented += not answer.abstained
        elif answer.abstained:
            verdict, abstained = "abstained", abstained + 1
        elif re.search(pattern, answer.text, re.IGNORECASE):
            verdict, right = "right", right + 1
        else:
            verdict, wrong = "wrong", wrong + 1
        rows.append((user, history[-1][0], question, answer.search_query, answer.text, verdict))
        tick()  # type: ignore[operator]
    return {
        "right": right,
        "wrong": wrong,
        "abstained": abstained,
        "invented": invented,
        "rows": rows,
    }


def report(results: dict[str, dict]) -> str:
    n = sum(1 for c in CONVERSATIONS if c[3] is not None)
    m = len(CONVERSATIONS) - n
    lines = [
        "# Follow-up questions on the demo corpus",
        "",
        "Written by `benchmarks/conversations.py` (whole pipeline with the follow-up made",
        f"standalone, k=5, llama.cpp on 2 CPU threads). {n} follow-ups the asker's documents",
        f"answer, {m} that must be abstentions. Measured {date.today().isoformat()}.",
        "",
        "| model | right | wrong | abstained | abstentions where it must |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['right']}/{n} | {r['wrong']} | {r['abstained']} | "
            f"{m - r['invented']}/{m} |"
        )
    for name, r in results.items():
        lines += ["", f"## {name}", "", "| user | after | follow-up | searched as | answer | |"]
        lines += ["|---|---|---|---|---|---|"]
        for user, before, question, searched, text, verdict in r["rows"]:
            cells = (user, before, question, searched or "", text[:80].replace("\n", " "), verdict)
            lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT_LLM_MODEL)
    parser.add_argument("--out", type=Path, default=HERE / "conversations.md")
    args = parser.parse_args()
    text = report(on_the_demo(args.models, len(CONVERSATIONS), measure))
    args.out.write_text(text, encoding="utf-8")
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
