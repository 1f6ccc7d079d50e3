"""Questions an employee asks of the demo corpus, answered by every offline catalogue model.

XQuAD (answers.py) measures reading of Wikipedia paragraphs against exact answer spans.
This asks what alice (engineering) and bob (HR) would ask of the demo firm's documents, in
German and English, through the whole pipeline as the CLI runs it (hybrid retrieval, k=5,
generation, grounding). An answer is right when it holds the fact the documents give
(a pattern per question, e.g. "8443", "zwei Wochen|two weeks"), wrong when it answers
without it, abstained when it says the documents do not answer. Questions about documents
the asker may not read, or about facts in no document, must be abstentions: an answer there
is invented. Time to first token and the whole answer's time are per question (p50).

    python benchmarks/employee_questions.py [--models a,b]  -> benchmarks/employee_questions.md
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from enclave.config import Settings
from enclave.demo import setup_demo
from enclave.pipeline.catalogue import CATALOGUE, default_models_dir, pull
from enclave.pipeline.llamacpp import LlamaCppLLM
from enclave.pipeline.wiring import Enclave

HERE = Path(__file__).resolve().parent
OFFLINE = [name for name, model in CATALOGUE.items() if model.offline]

# (user, question, pattern of the right answer); the answers stand in the demo corpus.
ANSWERABLE = [
    ("alice", "When does the new office in Augsburg open?", r"1\.? (december|dezember)"),
    ("alice", "Wann ist das Wartungsfenster?", r"dienstag|tuesday|18[:.]00|18 uhr"),
    ("alice", "How much memory does a Lumen server need?", r"16 ?gb"),
    ("alice", "Which port does the web console use?", r"8443"),
    ("alice", "What happens to unacknowledged alerts?", r"escalat|eskal"),
    ("alice", "Wann warnt Lumen vor dem Ablauf des Zertifikats?", r"30 (tage|days)"),
    ("alice", "What is new in Lumen 4.2?", r"anomal|normal range|shift report|dark mode|csv"),
    ("alice", "When is the company party?", r"11\.? (december|dezember)"),
    ("alice", "Ab wann gibt es vegetarisches Essen in der Kantine?", r"januar"),
    ("alice", "How do I make a backup of Lumen?", r"lumenctl backup"),
    # The model joins the restore command to the backup's options (verbatim.py).
    ("alice", "How do I restore a backup?", r"lumenctl restore(?! --)"),
    # It answers these two with the backup command and `apt install` (verbatim.py).
    ("alice", "How do I restore a backup of Lumen?", r"lumenctl restore(?! --)"),
    ("alice", "How do I create the Lumen configuration?", r"lumenctl init"),
    ("alice", "Which identity providers work for single sign-on?", r"saml|openid"),
    ("alice", "Wie stark wächst die Telemetriedatenbank pro Monat?", r"2 ?gb"),
    ("alice", "How long does the audit log keep entries?", r"400"),
    ("alice", "Where does the company party take place?", r"canteen|kantine"),
    ("alice", "How do I get a copy of the audit log?", r"download|settings › security › audit"),
    ("alice", "How do I send audit log entries to Splunk?", r"syslog|forwarding"),
    # An e-mail's author stands in its "From:" line only (grounding._stated).
    ("alice", "Who wrote the notes from the all-hands meeting?", r"katrin vogel"),
    # The default model answered with the third worked example's "travel office".
    ("alice", "Who is moving to Augsburg?", r"engineering|customer support|twelve|colleagues"),
    # The question's word in another form: "fast", "Festplattenverschlüsselung" (wordforms.py).
    ("alice", "What got faster in Lumen 4.2?", r"dashboard"),
    ("alice", "Bekommen die Laptops eine Verschlüsselung?", r"^ja\b"),
    ("bob", "How many days a week can I work from home?", r"\b(3|three|drei)\b"),
    ("bob", "How much is the home office allowance?", r"30 ?(euro|€)"),
    ("bob", "Bis wann kann ich Resturlaub nehmen?", r"31\.? (märz|march)|march 31"),
    ("bob", "Wie früh muss ich Urlaub beantragen?", r"(zwei|2) wochen|(two|2) weeks"),
    ("bob", "When is the data protection training deadline?", r"30\.? november"),
    ("bob", "Wie viele Urlaubstage bekommen Mitarbeitende?", r"\b30\b"),
    ("bob", "What equipment does the company provide for working from home?", r"laptop|headset"),
    # Yes or no: the answer's first word says it (polar.py).
    ("alice", "Can I download the audit log as a CSV file?", r"^yes\b"),
    ("alice", "Can administrators shorten the audit log retention to 30 days?", r"^no\b"),
    ("bob", "Does the company provide a second monitor for working from home?", r"^yes\b"),
    ("bob", "Can I work from home five days a week?", r"^no\b|three"),
    ("bob", "Darf ich Personalakten zu Hause ausdrucken?", r"^nein\b"),
    # "may only be opened on company devices": a restriction says no yes to this.
    ("bob", "Can I open confidential documents on my own laptop?", r"^no\b"),
    # "Administrators manage users": said of another role.
    ("alice", "Can operators manage users?", r"^no\b"),
    # "es sei denn, ...": not always.
    ("bob", "Verfällt Resturlaub nach dem 31. März immer?", r"^nein\b"),
    # Answered "30 Tage", from the certificate warning in a German passage below the threshold.
    ("alice", "When are alert e-mails sent?", r"rule fires|threshold"),
    ("alice", "Who manages data sources in Lumen?", r"administrator"),
]
# Each must be an abstention: the asker may not read the document, or no document says it.
UNANSWERABLE = [
    ("alice", "How many days a week can I work from home?"),
    ("alice", "Wie viele Urlaubstage bekommen Mitarbeitende?"),
    ("bob", "Which port does the web console use?"),
    ("bob", "How long does the audit log keep entries?"),
    ("bob", "What is the CEO's salary?"),
    ("alice", "Who is the data protection officer?"),
    ("bob", "Wie hoch ist das Weihnachtsgeld?"),
    ("alice", "What is the WiFi password in the Augsburg office?"),
    # Answered "jedem Team", from a German passage about laptops; not shown now (answering.citable).
    ("bob", "When are alert e-mails sent?"),
    # Facts in no document, beside ones that are (2026-12-03). Of these first fifteen the default
    # model answered six with a neighbouring fact, which three checks now withdraw (docs/answers.md,
    # "Facts in no document"): the CEO questions' "Nordlicht Systems GmbH [1]" and "Katrin
    # Vogel [4]", the backup's "every night [1]", and from passages in the other language
    # "Katrin [2]" and "30 [3]"; "Telemetriedatenbank [1]" still stands.
    ("alice", "Who is the CEO of Nordlicht?"),
    ("alice", "How much does a Lumen licence cost?"),
    ("alice", "When will Lumen 4.3 be released?"),
    ("alice", "Wer leitet das neue Büro in Augsburg?"),
    ("alice", "Which database does Lumen use to store telemetry?"),
    ("alice", "What is the address of the Augsburg office?"),
    ("alice", "Wie viel kostet das vegetarische Gericht in der Kantine?"),
    ("alice", "How long does a backup take?"),
    ("alice", "Who is the shift supervisor?"),
    ("bob", "Who is the head of HR?"),
    ("bob", "Wie lange dauert die Probezeit?"),
    ("bob", "How many days of special leave do I get for my wedding?"),
    ("bob", "Can I bring my dog to the office?"),
    ("bob", "Wie hoch ist die Fahrtkostenerstattung?"),
    ("bob", "Who is the CEO of Nordlicht?"),
    # Written before those checks, asked before and after them: 9 of 10 abstentions, then 10
    # ("two weeks [4]" to the notice period, from the German leave policy, is withdrawn).
    ("alice", "Who signs off the release of Lumen 4.2?"),
    ("alice", "How many customers use Lumen?"),
    ("alice", "Wann wurde Nordlicht gegründet?"),
    ("alice", "Who is responsible for the canteen?"),
    ("alice", "How long is the web console unavailable during a backup?"),
    ("alice", "Which sensor vendors does Lumen support?"),
    ("bob", "Wie viel Gehalt bekommt ein Werkstudent?"),
    ("bob", "How long is the notice period?"),
    ("bob", "Wie viele Tage darf ich krank sein ohne Attest?"),
    ("bob", "Wer ist mein Ansprechpartner in der Personalabteilung?"),
]


def use_model(enclave: Enclave, name: str) -> None:
    """Answer with catalogue model name from now on, on 2 threads, as catalogued."""
    model = CATALOGUE[name]
    enclave.__dict__["llm"] = LlamaCppLLM(
        str(pull(model, default_models_dir())),
        enclave.settings.llm_context,
        2,
        quote=model.quote,
        min_first_logprob=model.min_first_logprob,
        min_next_logprob=model.min_next_logprob,
        lora=enclave.settings.llm_lora or None,
    )
    enclave.__dict__.pop("assistant", None)


def on_the_demo(
    models: str, steps: int, measure: Callable[[Enclave, Callable[[], None]], dict]
) -> dict[str, dict]:
    """measure(enclave, tick) on a fresh copy of the demo corpus for each model (catalogue
    names, comma-separated), with a progress bar of steps ticks per model."""
    results: dict[str, dict] = {}
    with (
        tempfile.TemporaryDirectory(prefix="enclave-demo-") as scratch,
        Enclave(Settings.load(data_dir=Path(scratch), llm_threads=2)) as enclave,
        Progress(console=Console(stderr=True), transient=True) as progress,
    ):
        setup_demo(enclave)
        for name in models.split(","):
            use_model(enclave, name)
            task = progress.add_task(name, total=steps)
            results[name] = measure(enclave, lambda: progress.advance(task))  # noqa: B023
    return results


def timed(enclave: Enclave, user: str, question: str) -> tuple[object, float, float]:
    """(answer, seconds to the first piece, seconds to the whole answer), retrieval included."""
    start = time.perf_counter()
    stream = enclave.assistant.stream(enclave.store.viewer(user), question, k=5)
    first = None
    for _ in stream:
        first = first or time.perf_counter()
    end = time.perf_counter()
    return stream.answer, (first or end) - start, end - start


def measure(
    enclave: Enclave,
    tick: object,
    answerable: list[tuple[str, str, str]] = ANSWERABLE,
    unanswerable: list[tuple[str, str]] = UNANSWERABLE,
) -> dict:
    """Right, wrong and abstained answers to the answerable questions (user, question, pattern
    of the right answer), answers that must have been abstentions (user, question), p50 times,
    and the wrong and invented answers."""
    right, wrong, abstained, invented, ttft, total, examples = 0, 0, 0, 0, [], [], []
    for user, question, pattern in answerable:
        answer, first, whole = timed(enclave, user, question)
        ttft.append(first)
        total.append(whole)
        if answer.abstained:  # type: ignore[attr-defined]
            abstained += 1
        elif re.search(pattern, answer.text, re.IGNORECASE):  # type: ignore[attr-defined]
            right += 1
        else:
            wrong += 1
            examples.append(f"{question} → {answer.text[:80]!r}")  # type: ignore[attr-defined]
        tick()  # type: ignore[operator]
    for user, question in unanswerable:
        answer, first, whole = timed(enclave, user, question)
        if not answer.abstained:  # type: ignore[attr-defined]
            invented += 1
            examples.append(f"{question} ({user}) → {answer.text[:80]!r}")  # type: ignore[attr-defined]
        tick()  # type: ignore[operator]
    return {
        "right": right,
        "wrong": wrong,
        "abstained": abstained,
        "invented": invented,
        "ttft": statistics.median(ttft),
        "total": statistics.median(total),
        "examples": examples,
    }


def report(results: dict[str, dict]) -> str:
    n, m = len(ANSWERABLE), len(UNANSWERABLE)
    lines = [
        "# Employee questions on the demo corpus",
        "",
        "Written by `benchmarks/employee_questions.py` (whole pipeline, k=5, llama.cpp on 2",
        f"CPU threads). {n} answerable questions (alice: engineering and staff, bob: HR and",
        f"staff; German and English), {m} that must be abstentions (a document the asker may",
        "not read, or a fact in no document). Times are p50 per question, retrieval included.",
        f"Measured {date.today().isoformat()}.",
        "",
        *table(results, n, m),
    ]
    return "\n".join(lines) + "\n"


def table(results: dict[str, dict], n: int, m: int) -> list[str]:
    """The lines of a results table per model (n answerable questions, m that must be
    abstentions), then each model's wrong or invented answers."""
    lines = [
        "| model | right | wrong | abstained | abstentions where it must | TTFT p50 s |"
        " answer p50 s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['right']}/{n} | {r['wrong']} | {r['abstained']} | "
            f"{m - r['invented']}/{m} | {r['ttft']:.2f} | {r['total']:.2f} |"
        )
    lines += ["", "Wrong or invented answers:", ""]
    for name, r in results.items():
        lines += [f"- {name}: " + ("; ".join(r["examples"]) or "none")]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(OFFLINE))
    parser.add_argument("--out", type=Path, default=HERE / "employee_questions.md")
    args = parser.parse_args()
    results = on_the_demo(args.models, len(ANSWERABLE) + len(UNANSWERABLE), measure)
    text = report(results)
    args.out.write_text(text, encoding="utf-8")
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
