"""Questions employees of a second, unseen firm ask of its documents: a held-out check of
the answer checks.

The demo corpus (employee_questions.py) is what most of the answer checks were written
against. This corpus, a precision-engineering firm's travel policy (Word), machine operating
instructions (PDF), IT policy (Markdown), intranet page (HTML), quality manual (text), working
time agreement and a board meeting's minutes (e-mail), and its questions were written on
2026-12-03 before any answer to them was seen, and are kept apart: a check is not designed
against them, only measured on them. Four users with different access: mara (production),
tom (HR), lena (management), quinn (quality); all of them staff. Questions about a document
the asker may not read, or about a fact in no document, must be abstentions.

    python benchmarks/firm_questions.py [--models a,b]  -> benchmarks/firm_questions.md
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from datetime import date
from pathlib import Path

from docx import Document
from employee_questions import measure, table, use_model
from fpdf import FPDF
from rich.console import Console
from rich.progress import Progress

from enclave.config import Settings
from enclave.pipeline.access import Principal
from enclave.pipeline.wiring import Enclave

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "firm"
# user -> groups
USERS = {
    "mara": ["staff", "production"],
    "tom": ["staff", "hr"],
    "lena": ["staff", "management"],
    "quinn": ["staff", "quality"],
}
# file as ingested -> who may read it
ACCESS = {
    "Reisekostenrichtlinie.docx": ["group:staff"],
    "it-security.md": ["group:staff"],
    "kantine.html": ["group:staff"],
    "Betriebsanweisung-DMU50.pdf": ["group:production"],
    "quality.txt": ["group:production", "group:quality"],
    "urlaub.md": ["group:hr"],
    "protokoll.eml": ["group:management"],
}
# (user, question, pattern of the right answer)
ANSWERABLE = [
    ("mara", "Wie viel darf ein Hotelzimmer in München pro Nacht kosten?", r"150"),
    ("mara", "How many characters must a password have?", r"12|twelve"),
    (
        "mara",
        "Wie oft muss der Kühlschmierstoff gewechselt werden?",
        r"sechs wochen|6 wochen|six weeks|6 weeks",
    ),
    ("mara", "Who do I report phishing e-mails to?", r"security@brandt-fm\.example"),
    ("mara", "Was ist die maximale Drehzahl der DMU 50?", r"18[.,]?000"),
    ("mara", "Darf man an der Fräsmaschine Handschuhe tragen?", r"nein|nicht|kein|no\b"),
    ("mara", "When is the annual TÜV audit?", r"march|märz"),
    ("mara", "Wie hoch ist die Kilometerpauschale?", r"0[,.]30"),
    ("mara", "What temperature must the measuring room have?", r"20"),
    ("mara", "Wann ist der Betriebsarzt im Haus?", r"dienstag|tuesday"),
    (
        "mara",
        "How long do we have to send the complete 8D report for a customer complaint?",
        r"10|ten",
    ),
    ("mara", "Wer ist der Ansprechpartner für die CNC-Fräsmaschine?", r"hallbauer"),
    ("mara", "Wie viel kostet ein Essen in der Kantine?", r"4[,.]20"),
    ("mara", "Ab welcher Fahrtdauer darf ich 1. Klasse fahren?", r"vier|4"),
    ("mara", "What tolerance do our parts have?", r"0[.,]005"),
    ("mara", "Wie lange dauert es, bis der Laptop sich sperrt?", r"5 minut|fünf minut|five minut"),
    ("mara", "Which VPN software do we use?", r"wireguard"),
    ("mara", "Bis wann muss ich meine Reisekosten abrechnen?", r"drei monat|3 monat|three month"),
    ("tom", "Wie viele Urlaubstage haben Vollzeitbeschäftigte?", r"30"),
    ("tom", "Bis wann muss Resturlaub genommen werden?", r"31\.? (märz|march)"),
    ("tom", "How many hours is the weekly working time?", r"37[,.]5"),
    ("tom", "Wie viele Tage Sonderurlaub gibt es bei der eigenen Hochzeit?", r"zwei|2|two"),
    ("tom", "Wie viele Überstunden dürfen ins nächste Jahr übertragen werden?", r"20"),
    ("tom", "Wann ist die Kernzeit?", r"9|14"),
    ("tom", "Wie hoch ist die Verpflegungspauschale für einen ganzen Tag?", r"28"),
    ("tom", "What is the extension of the IT helpdesk?", r"4711"),
    ("lena", "How much is the investment in the new laser system?", r"480"),
    ("lena", "Wie hoch fällt das Weihnachtsgeld 2026 aus?", r"80"),
    ("lena", "Wann soll das Werk in Brno eröffnen?", r"2027|dritt|third"),
    ("lena", "What is the sales target for 2027?", r"62"),
    ("lena", "Ist Kurzarbeit geplant?", r"nein|nicht|no\b"),
    ("lena", "Wie viel kostet ein Mittagessen in der Kantine?", r"4[,.]20"),
    ("quinn", "Since when are we certified to ISO 9001?", r"2011"),
    (
        "quinn",
        "Wie lange müssen Teile vor dem Messen akklimatisieren?",
        r"zwei stunden|2 stunden|two hours|2 hours",
    ),
]
# Each must be an abstention.
UNANSWERABLE = [
    # A document the asker may not read.
    ("mara", "Wie viele Urlaubstage habe ich?"),
    ("mara", "How much Christmas bonus will we get in 2026?"),
    ("mara", "Wann eröffnet das Werk in Brno?"),
    ("mara", "Wann ist die Kernzeit?"),
    ("tom", "Wie hoch ist die maximale Drehzahl der DMU 50?"),
    ("tom", "How much will the new laser system cost?"),
    ("tom", "When is the TÜV audit?"),
    ("lena", "Wie oft muss der Kühlschmierstoff gewechselt werden?"),
    ("lena", "How many vacation days do employees get?"),
    ("quinn", "Wie hoch ist die Kilometerpauschale für Motorräder?"),
    # A fact in no document.
    ("mara", "Wer ist der Geschäftsführer von Brandt Feinmechanik?"),
    ("mara", "Wie viele Mitarbeiter hat die Firma?"),
    ("mara", "What is the WLAN password for guests?"),
    ("mara", "Wie oft muss die Spindel der DMU 50 getauscht werden?"),
    ("mara", "How much does the DMU 50 cost?"),
    ("mara", "Wie viel Verpflegungspauschale gibt es für Auslandsreisen?"),
    ("tom", "Wie viele Tage Elternzeit gibt es?"),
    ("tom", "How many sick days are allowed without a doctor's note?"),
    ("tom", "Gibt es Sonderurlaub bei einem Umzug?"),
    ("lena", "Wie hoch war der Umsatz 2025?"),
    ("lena", "Who will manage the Brno plant?"),
    ("lena", "What was decided about the company car policy?"),
    ("quinn", "Who calibrates the coordinate measuring machine?"),
    ("quinn", "How much does a complaint cost us on average?"),
]


def write_corpus(folder: Path) -> None:
    """The firm's files in folder: the travel policy as Word, the operating instructions as a
    PDF (one line of text per line, as a layout program writes them), the rest as they are."""
    lines = (SOURCES / "reisekosten.txt").read_text(encoding="utf-8").splitlines()
    document = Document()
    document.add_heading(lines[0], 0)
    for line in filter(str.strip, lines[1:]):
        if line[0].isdigit() and len(line) < 40:
            document.add_heading(line, 1)
        else:
            document.add_paragraph(line)
    document.save(folder / "Reisekostenrichtlinie.docx")
    pdf = FPDF()
    pdf.add_page()
    for line in (SOURCES / "betriebsanweisung.txt").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            pdf.ln(4)
            continue
        heading = len(line) < 45
        pdf.set_font("Helvetica", "B" if heading else "", 13 if heading else 11)
        pdf.multi_cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(folder / "Betriebsanweisung-DMU50.pdf"))
    for name in ("it-security.md", "kantine.html", "quality.txt", "urlaub.md", "protokoll.eml"):
        shutil.copy(SOURCES / name, folder / name)


def set_up(enclave: Enclave, folder: Path) -> None:
    """The firm's users, and its files ingested with their access lists."""
    for user, groups in USERS.items():
        enclave.store.add_user(user, groups)
    write_corpus(folder)
    for name, allow in ACCESS.items():
        enclave.ingestor.ingest([folder / name], [Principal.parse(p) for p in allow])


def report(results: dict[str, dict]) -> str:
    n, m = len(ANSWERABLE), len(UNANSWERABLE)
    lines = [
        "# Held-out questions on a second firm's documents",
        "",
        "Written by `benchmarks/firm_questions.py` (whole pipeline, k=5, llama.cpp on 2 CPU",
        f"threads). {n} answerable questions of four users, {m} that must be abstentions (10",
        "about a document the asker may not read, 14 about a fact in no document), German and",
        "English; corpus and questions written before any answer was seen (the script's",
        f"docstring). Times are p50 per question, retrieval included. Measured {date.today()}.",
        "",
        *table(results, n, m),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="qwen2.5-coder-1.5b-instruct")
    parser.add_argument("--out", type=Path, default=HERE / "firm_questions.md")
    args = parser.parse_args()
    results: dict[str, dict] = {}
    steps = len(ANSWERABLE) + len(UNANSWERABLE)
    with (
        tempfile.TemporaryDirectory(prefix="enclave-firm-") as scratch,
        Enclave(Settings.load(data_dir=Path(scratch) / "data", llm_threads=2)) as enclave,
        Progress(console=Console(stderr=True), transient=True) as progress,
    ):
        files = Path(scratch) / "files"
        files.mkdir()
        set_up(enclave, files)
        for name in args.models.split(","):
            use_model(enclave, name)
            task = progress.add_task(name, total=steps)
            results[name] = measure(
                enclave,
                lambda: progress.advance(task),  # noqa: B023
                ANSWERABLE,
                UNANSWERABLE,
            )
    text = report(results)
    args.out.write_text(text, encoding="utf-8")
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
