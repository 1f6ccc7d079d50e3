"""Loaders on real files of every supported format, and on broken ones."""

from __future__ import annotations

import email.message
import logging
import tempfile
import warnings
from email import policy
from pathlib import Path
from typing import Any

import docx
import pytest
from fpdf import FPDF
from pypdf import PageObject, PdfReader, PdfWriter
from rich.progress import Progress, TaskID

from enclave.pipeline.access import Principal
from enclave.pipeline.loaders import LoadError, discover, load
from enclave.pipeline.wiring import Enclave

MB = 2**20


def make_pdf(path: Path, pages: list[str], password: str | None = None) -> Path:
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    if password:
        writer = PdfWriter(clone_from=PdfReader(path))
        writer.encrypt(password)
        writer.write(path)
    return path


def test_markdown_sections_follow_headings(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text("# Guide\n\nIntro text.\n\n## Install\n\nRun it.\n\n### Linux\n\napt.\n")
    doc = load(path, MB)
    assert doc.title == "Guide"
    assert [s.heading_path for s in doc.sections] == [
        ("Guide",),
        ("Guide", "Install"),
        ("Guide", "Install", "Linux"),
    ]
    for section, start in zip(doc.sections, doc.section_starts, strict=True):
        assert doc.text[start : start + len(section.text)] == section.text


def test_rst_sections_follow_headings_and_include_nothing_from_the_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root-password-hunter2")
    path = tmp_path / "guide.rst"
    path.write_text(
        "=====\nGuide\n=====\n\nIntro with :c:func:`kmalloc`.\n\n"
        f".. include:: {secret}\n\n.. raw:: html\n\n   <script>x()</script>\n\n"
        ".. toctree::\n\n   other\n\nInstall\n=======\n\nRun ``make``.\n\n"
        ".. code-block:: sh\n\n   make install\n\nLinux\n-----\n\napt.\n\n"
        "Broken *markup and `unclosed\n"
    )
    doc = load(path, MB)
    assert doc.title == "Guide" and doc.mime == "text/x-rst"
    assert [s.heading_path for s in doc.sections] == [
        ("Guide",),
        ("Guide", "Install"),
        ("Guide", "Install", "Linux"),
    ]
    assert "make install" in doc.sections[1].text and "apt." in doc.sections[2].text
    assert "hunter2" not in doc.text and "script" not in doc.text and "toctree" not in doc.text
    assert capsys.readouterr().err == ""  # docutils' reports do not reach the terminal


def test_html_headings_and_blocks(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Page</title><script>var x=1;</script></head><body>"
        "<h1>Top</h1><p>First <b>bold</b> para.</p><h2>Sub</h2><ul><li><p>Item one</p></li></ul>"
        "</body></html>"
    )
    doc = load(path, MB)
    assert doc.title == "Page"
    assert "var x" not in doc.text
    assert doc.sections[0].heading_path == ("Top",)
    assert "First bold para." in doc.sections[0].text
    assert doc.sections[1].heading_path == ("Top", "Sub")
    assert doc.sections[1].text.count("Item one") == 1


def test_html_text_outside_paragraphs_is_read(tmp_path: Path) -> None:
    """A wiki export writes text straight into <div>s, with <br> for lines: nothing of it may
    be lost because the page also has a <p>."""
    path = tmp_path / "kantine.html"
    path.write_text(
        "<html><body><h1>Kantine</h1><p>Allgemeines.</p>"
        "<div>Die Kantine öffnet um 11 Uhr.<br>Bitte die Mitarbeiter<b>karte</b> mitbringen."
        "<div><span>Parken im Hof.</span></div></div>"
        "<pre>Mo  11-14\nDi  11-14</pre><!-- intern: alte Zeiten 10-13 --></body></html>",
        encoding="utf-8",
    )
    text = load(path, MB).text
    assert "Die Kantine öffnet um 11 Uhr. Bitte die Mitarbeiterkarte mitbringen." in text
    assert "Parken im Hof." in text and "Allgemeines." in text
    assert "Mo  11-14\nDi  11-14" in text  # preformatted text keeps its lines
    assert "intern" not in text


def test_xhtml_is_read_without_a_warning(tmp_path: Path) -> None:
    """Generated documentation is often XHTML with an XML declaration: its text is read, and
    nothing is printed into the ingest's progress bar (Beautiful Soup warns about such a page
    when its first 500 characters do not close the <html>, as in any real page)."""
    path = tmp_path / "handbuch.html"
    steps = "".join(f"<li>Schritt {n}: das Band {n} einlegen und prüfen.</li>" for n in range(12))
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN"\n'
        '    "http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd">\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="de">'
        "<head><title>Handbuch</title></head><body><h1>Sicherung</h1>"
        f"<p>Die Sicherung läuft jede Nacht um 2 Uhr.</p><ol>{steps}</ol></body></html>",
        encoding="utf-8",
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        doc = load(path, MB)
    assert "Die Sicherung läuft jede Nacht um 2 Uhr." in doc.text
    assert "Schritt 11: das Band 11 einlegen und prüfen." in doc.text
    assert doc.sections[0].heading_path == ("Sicherung",)
    assert [str(w.message) for w in caught] == []


def test_html_page_chrome_is_not_indexed(tmp_path: Path) -> None:
    """A page saved from an intranet: site banner, menus, search box and page footer go; the
    article, with its own footer, stays."""
    path = tmp_path / "reisekosten.html"
    path.write_text(
        "<html><body>"
        '<div role="banner">Nordlicht Intranet</div>'
        '<div role="navigation"><ul><li>Start</li><li>Personal</li></ul></div>'
        '<form role="search"><p>Suche im Intranet</p></form>'
        "<main><article><h1>Reisekosten</h1><p>Belege bis zum 10. des Folgemonats.</p>"
        "<footer>Zuletzt geändert am 3. März 2026</footer></article></main>"
        "<footer>© 2026 Nordlicht Systems · Impressum · Datenschutz</footer>"
        '<div role="contentinfo">Kontakt: intranet@nordlicht.example</div>'
        "</body></html>",
        encoding="utf-8",
    )
    doc = load(path, MB)
    assert "Belege bis zum 10. des Folgemonats." in doc.text
    assert "Zuletzt geändert am 3. März 2026" in doc.text
    for chrome in ("Nordlicht Intranet", "Personal", "Suche", "Impressum", "Kontakt"):
        assert chrome not in doc.text
    assert doc.title == "Reisekosten"


def test_docx_headings_and_tables(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_heading("Handbook", level=1)
    document.add_paragraph("Welcome text.")
    document.add_heading("Prices", level=2)
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "Basic"
    table.rows[0].cells[1].text = "10 EUR"
    path = tmp_path / "handbook.docx"
    document.save(str(path))
    doc = load(path, MB)
    assert doc.title == "Handbook"
    assert doc.sections[-1].heading_path == ("Handbook", "Prices")
    assert "Basic | 10 EUR" in doc.sections[-1].text


def make_pptx(path: Path) -> Path:
    """Two slides: a title slide, and one with bullets, a table, a group and speaker notes."""
    import pptx
    from pptx.util import Inches

    deck = pptx.Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[0])
    first.shapes.title.text = "Vertriebsplanung 2027"
    first.placeholders[1].text = "Nordlicht Systems GmbH"
    second = deck.slides.add_slide(deck.slide_layouts[1])
    second.shapes.title.text = "Ziele"
    second.placeholders[1].text = "Umsatz Region Süd: plus 12 Prozent"
    table = second.shapes.add_table(2, 2, Inches(1), Inches(4), Inches(4), Inches(1)).table
    for (r, c), text in {
        (0, 0): "Region",
        (0, 1): "Leitung",
        (1, 0): "Süd",
        (1, 1): "Jana Weber",
    }.items():
        table.cell(r, c).text = text
    group = second.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(5), Inches(1), Inches(2), Inches(1)).text_frame.text = "Entwurf"
    second.notes_slide.notes_text_frame.text = "Zahlen vom 3. November"
    deck.save(str(path))
    return path


def test_pptx_slides_are_pages_with_their_titles(tmp_path: Path) -> None:
    doc = load(make_pptx(tmp_path / "planung.pptx"), MB)
    assert doc.title == "Vertriebsplanung 2027" and doc.mime.endswith("presentation")
    assert [(s.heading_path, s.page) for s in doc.sections] == [
        (("Vertriebsplanung 2027",), 1),
        (("Ziele",), 2),
    ]
    second = doc.sections[1].text
    for text in ("plus 12 Prozent", "Süd | Jana Weber", "Entwurf", "Zahlen vom 3. November"):
        assert text in second


def test_xlsx_sheets_are_sections_of_rows(tmp_path: Path) -> None:
    import datetime

    import openpyxl

    book = openpyxl.Workbook()
    costs = book.active
    costs.title = "Reisekosten"
    costs.append(["Position", "Betrag", "Gültig ab"])
    costs.append(["Tagespauschale Inland", 28.0, datetime.datetime(2026, 1, 1)])
    costs.append(["Kilometerpauschale", 0.30, None])
    costs.append(["Summe", "=B2+B3", None])
    book.create_sheet("Leer")
    book.create_sheet("Kontakte").append(["Buchhaltung", "Jana Weber"])
    book.save(tmp_path / "pauschalen.xlsx")
    doc = load(tmp_path / "pauschalen.xlsx", MB)
    assert [s.heading_path for s in doc.sections] == [("Reisekosten",), ("Kontakte",)]
    lines = doc.sections[0].text.splitlines()
    assert lines[1] == "Tagespauschale Inland | 28 | 2026-01-01"
    assert lines[2] == "Kilometerpauschale | 0.3"
    assert "Buchhaltung | Jana Weber" in doc.sections[1].text


@pytest.mark.parametrize("name", ["deck.pptx", "book.xlsx"])
def test_broken_or_legacy_office_files_get_a_reason(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(LoadError) as info:
        load(tmp_path / name, MB)
    assert info.value.reason == "corrupt"
    (tmp_path / name).write_bytes(b"\xd0\xcf\x11\xe0" + b"\0" * 512)
    with pytest.raises(LoadError) as info:
        load(tmp_path / name, MB)
    assert info.value.reason == "encrypted" and "legacy" in str(info.value)


def test_pdf_keeps_page_numbers(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "report.pdf", ["Alpha page text.", "Beta page text."])
    doc = load(path, MB)
    assert [s.page for s in doc.sections] == [1, 2]
    assert "Beta page text." in doc.sections[1].text


def _titled_pdf(path: Path, lines: list[tuple[int, str]], metadata: str | None = None) -> Path:
    """A one-page PDF of (font size, line) lines, as a word processor exports one."""
    pdf = FPDF()
    pdf.add_page()
    if metadata is not None:
        pdf.set_title(metadata)
    for size, line in lines:
        pdf.set_font("helvetica", "B" if size > 12 else "", size)
        pdf.multi_cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


@pytest.mark.parametrize(
    ("lines", "metadata", "title"),
    [
        # No title in the metadata, or a placeholder: the first line set larger than the body.
        (
            [(10, "Werk 2"), (20, "Betriebsanweisung DMU 50"), (11, "Die Spindel dreht schnell.")],
            None,
            "Betriebsanweisung DMU 50",
        ),
        (
            [(24, "Reisekosten"), (11, "Bahn zweite Klasse.")],
            "Microsoft Word - Dok1.docx",
            "Reisekosten",
        ),
        ([(24, "Reisekosten"), (11, "Bahn zweite Klasse.")], "Untitled", "Reisekosten"),
        # A real metadata title wins; one size throughout, or a large sentence, names nothing.
        ([(24, "Reisekosten"), (11, "Bahn zweite Klasse.")], "Travel policy", "Travel policy"),
        ([(11, "Reisekosten"), (11, "Bahn zweite Klasse.")], None, "policy"),
        ([(24, "Bahn fahren wir in der zweiten Klasse."), (11, "Sonst nichts.")], None, "policy"),
    ],
)
def test_a_pdf_without_a_title_is_titled_by_its_largest_first_line(
    tmp_path: Path, lines: list[tuple[int, str]], metadata: str | None, title: str
) -> None:
    doc = load(_titled_pdf(tmp_path / "policy.pdf", lines, metadata), MB)
    assert doc.title == title


def test_a_pdf_page_is_read_once_while_its_title_is_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_pdf(tmp_path / "report.pdf", ["Alpha page text.", "Beta page text."])
    read = PageObject.extract_text
    calls: list[int] = []

    def counted(page: PageObject, *args: Any, **kwargs: Any) -> str:
        calls.append(1)
        return read(page, *args, **kwargs)

    monkeypatch.setattr(PageObject, "extract_text", counted)
    doc = load(path, MB)
    assert "Alpha page text." in doc.text and "Beta page text." in doc.text
    assert len(calls) == 2


def test_a_placeholder_title_in_office_metadata_gives_way_to_the_first_heading(
    tmp_path: Path,
) -> None:
    document = docx.Document()
    document.core_properties.title = "Dokument1"
    document.add_heading("Reisekostenrichtlinie", 0)
    document.add_paragraph("Bahn zweite Klasse.")
    document.save(tmp_path / "richtlinie.docx")
    assert load(tmp_path / "richtlinie.docx", MB).title == "Reisekostenrichtlinie"


def test_email_headers_and_body(tmp_path: Path) -> None:
    message = email.message.EmailMessage()
    message["From"] = "a@example.com"
    message["To"] = "b@example.com"
    message["Subject"] = "Quarterly numbers"
    message.set_content("Revenue grew by 12 percent.")
    path = tmp_path / "mail.eml"
    path.write_bytes(bytes(message))
    doc = load(path, MB)
    assert doc.title == "Quarterly numbers"
    assert "From: a@example.com" in doc.text
    assert "Revenue grew by 12 percent." in doc.text


def mail_with_attachments(tmp_path: Path) -> bytes:
    """An invitation whose agenda is in an attached PDF, with an encrypted PDF and a picture."""
    message = email.message.EmailMessage()
    message["From"] = "office@example.com"
    message["Subject"] = "Einladung Betriebsversammlung"
    message.set_content("Hallo zusammen, anbei die Tagesordnung.")
    agenda = make_pdf(tmp_path / "agenda.pdf", ["Punkt 1: Kantine.", "Punkt 2: Parkhaus Nord."])
    secret = make_pdf(tmp_path / "gehalt.pdf", ["Geheim."], password="s3cret")
    for path in (agenda, secret):
        message.add_attachment(
            path.read_bytes(), maintype="application", subtype="pdf", filename=path.name
        )
    message.add_attachment(b"\x89PNG", maintype="image", subtype="png", filename="logo.png")
    return bytes(message)


def test_email_attachments_are_read_under_their_names(tmp_path: Path) -> None:
    path = tmp_path / "einladung.eml"
    path.write_bytes(mail_with_attachments(tmp_path))
    doc = load(path, MB)
    assert "Attachments: agenda.pdf, gehalt.pdf, logo.png" in doc.text
    assert "anbei die Tagesordnung" in doc.text
    pages = [s for s in doc.sections if "agenda.pdf" in s.heading_path]
    assert [(s.heading_path, s.page) for s in pages] == [
        (("Einladung Betriebsversammlung", "agenda.pdf"), 1),
        (("Einladung Betriebsversammlung", "agenda.pdf"), 2),
    ]
    assert "Parkhaus Nord" in pages[1].text
    # The encrypted one and the picture are named, not read; the message is still whole.
    assert "Geheim" not in doc.text


def forward(inner: email.message.EmailMessage, subject: str) -> email.message.EmailMessage:
    message = email.message.EmailMessage()
    message["From"] = "chef@example.com"
    message["Subject"] = subject
    message.set_content("Zur Info, siehe unten.")
    message.add_attachment(inner)  # message/rfc822, as "forward as attachment" sends it
    return message


def test_forwarded_messages_are_read_with_their_attachments(tmp_path: Path) -> None:
    original = email.message_from_bytes(mail_with_attachments(tmp_path), policy=policy.default)
    assert isinstance(original, email.message.EmailMessage)
    path = tmp_path / "fwd.eml"
    path.write_bytes(bytes(forward(original, "WG: Einladung Betriebsversammlung")))
    doc = load(path, MB)
    assert "Attachments: Einladung Betriebsversammlung.eml" in doc.text
    assert "anbei die Tagesordnung" in doc.text
    agenda = [s for s in doc.sections if "agenda.pdf" in s.heading_path]
    assert agenda[1].heading_path == (
        "WG: Einladung Betriebsversammlung",
        "Einladung Betriebsversammlung.eml",
        "Einladung Betriebsversammlung",
        "agenda.pdf",
    )
    assert "Parkhaus Nord" in agenda[1].text and agenda[1].page == 2
    # Attached as an .eml file instead (octet-stream), under its file name.
    message = email.message.EmailMessage()
    message["Subject"] = "Protokoll weitergeleitet"
    message.set_content("Siehe Anhang.")
    message.add_attachment(
        bytes(original), maintype="application", subtype="octet-stream", filename="orig.eml"
    )
    path.write_bytes(bytes(message))
    doc = load(path, MB)
    assert "Attachments: orig.eml" in doc.text and "Parkhaus Nord" in doc.text


def test_forwards_are_read_three_levels_deep(tmp_path: Path) -> None:
    message = email.message.EmailMessage()
    message["Subject"] = "Level 0"
    message.set_content("Innerste Nachricht: Codewort Apfelbaum.")
    for level in range(1, 6):
        message = forward(message, f"Level {level}")
    path = tmp_path / "deep.eml"
    path.write_bytes(bytes(message))
    doc = load(path, MB)
    read = {heading for s in doc.sections for heading in s.heading_path}
    assert {"Level 5", "Level 4", "Level 3", "Level 2"} <= read
    assert "Level 1" not in read and "Apfelbaum" not in doc.text
    assert "Attachments: Level 1.eml" in doc.text  # named, not read


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Die Größe der Übergänge ist für Änderungen maßgeblich.", "cp1252"),
        # Short Western texts that charset detection alone read as Mac Icelandic / Windows-1250.
        ("Grüße aus München, die Kantine öffnet um 11 Uhr.", "latin-1"),
        ("Bonjour à tous, voilà très bien.", "latin-1"),
        # Other code pages keep theirs.
        ("Cześć, jak się masz? Zażółć gęślą jaźń.", "cp1250"),
        ("Příliš žluťoučký kůň úpěl ďábelské ódy.", "cp1250"),
        ("Привет, как дела? Это тест.", "cp1251"),
        ("Ελληνικά κείμενα εδώ, καλημέρα.", "cp1253"),
    ],
)
def test_text_in_legacy_encoding(tmp_path: Path, text: str, encoding: str) -> None:
    path = tmp_path / "alt.txt"
    path.write_bytes(text.encode(encoding))
    assert load(path, MB).text.strip() == text


@pytest.mark.parametrize(
    ("content", "title"),
    [
        ("Remote Work Policy (HR)\n\nEmployees may work from home.\n", "Remote Work Policy (HR)"),
        ("\r\n  Reisekosten 2027  \r\n\r\nBahn zweite Klasse.\r\n", "Reisekosten 2027"),
        # Not a title: a sentence, a list item, a line without a blank one after it, no letters.
        ("Employees may work from home.\n\nMore.\n", "notes"),
        ("- first item\n\n- second item\n", "notes"),
        ("1. Schritt\n\nAnmelden.\n", "notes"),
        ("A heading-like line\nbut the text goes on.\n", "notes"),
        ("2026-12-03\n\nProtokoll.\n", "notes"),
        ("Only one line, no text\n", "notes"),
    ],
)
def test_a_text_file_is_titled_by_its_first_line_where_it_reads_as_one(
    tmp_path: Path, content: str, title: str
) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(content.encode())
    doc = load(path, MB)
    assert doc.title == title
    assert content.split()[0] in doc.text.split()[0]  # the title line stays in the text


def test_html_declares_its_encoding(tmp_path: Path) -> None:
    path = tmp_path / "seite.html"
    body = "<p>Привет мир, это тест.</p>"
    head = '<head><meta charset="koi8-r"><title>Тест</title></head>'
    html = f"<html>{head}<body>{body}</body></html>"
    path.write_bytes(html.encode("koi8-r"))
    doc = load(path, MB)
    assert doc.title == "Тест" and "Привет мир, это тест." in doc.text


def test_a_broken_pdf_is_reported_once_not_in_pypdf_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "bad.pdf"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with caplog.at_level(logging.WARNING), pytest.raises(LoadError):
        load(path, MB)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("pypdf")] == []


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "corrupt"),
        ("broken.docx", b"PK\x03\x04 not a zip at all", "corrupt"),
        ("empty.md", b"", "empty"),
        ("blank.txt", b"   \n\n  ", "empty"),
        ("binary.txt", bytes(range(256)) * 20, "encoding"),
        ("picture.png", b"\x89PNG\r\n", "unsupported"),
        ("headers-only.eml", b"no headers here, just text without a colon line\n", "corrupt"),
    ],
)
def test_broken_files_get_a_reason(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LoadError) as info:
        load(path, MB)
    assert info.value.reason == reason
    assert str(info.value)


def test_encrypted_pdf(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "secret.pdf", ["Top secret."], password="s3cret")
    with pytest.raises(LoadError) as info:
        load(path, MB)
    assert info.value.reason == "encrypted"


def make_scan(path: Path, pages: list[str]) -> Path:
    """A PDF of page images without a text layer, as a scanner writes it: pages typeset by
    make_pdf, rendered at 200 dpi, and the pictures put into a new PDF."""
    import pypdfium2

    scan = FPDF()
    with tempfile.TemporaryDirectory() as folder:
        typeset = pypdfium2.PdfDocument(make_pdf(Path(folder) / "typeset.pdf", pages))
        for number in range(len(typeset)):
            image = typeset[number].render(scale=200 / 72).to_pil().convert("L")
            scan.add_page()
            scan.image(image, x=0, y=0, w=scan.epw + 2 * scan.l_margin)
        typeset.close()
    scan.output(str(path))
    return path


def test_scanned_pages_are_read_by_ocr(tmp_path: Path) -> None:
    path = make_scan(
        tmp_path / "mietvertrag.pdf",
        [
            "Mietvertrag Lagerhalle Nord. Die Miete beträgt 4.200 Euro im Monat.",
            "Kündigungsfrist: sechs Monate zum Quartalsende.",
        ],
    )
    assert not any(page.extract_text().strip() for page in PdfReader(path).pages)
    doc = load(path, MB)
    assert [s.page for s in doc.sections] == [1, 2]
    assert "4.200 Euro" in doc.sections[0].text
    assert "Kündigungsfrist" in doc.sections[1].text and "Quartalsende" in doc.sections[1].text


def test_only_pages_with_pictures_are_read_by_ocr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A blank separator page costs no OCR (about 2 s a page): only pictures are read."""
    import pytesseract

    scan = PdfReader(make_scan(tmp_path / "scan.pdf", ["Lieferschein 4711"]))
    blank = PdfReader(make_pdf(tmp_path / "blank.pdf", [""]))
    writer = PdfWriter()
    for page in (*blank.pages, *scan.pages, *blank.pages):
        writer.add_page(page)
    writer.write(tmp_path / "mixed.pdf")
    calls = []
    read = pytesseract.image_to_string
    monkeypatch.setattr(
        pytesseract, "image_to_string", lambda *a, **k: calls.append(1) or read(*a, **k)
    )
    doc = load(tmp_path / "mixed.pdf", MB)
    assert len(calls) == 1 and "4711" in doc.text


def test_a_page_without_text_or_picture_is_empty(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "blank.pdf", [""])
    with pytest.raises(LoadError) as info:
        load(path, MB)
    assert info.value.reason == "empty"


def test_without_tesseract_a_scan_is_refused_saying_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from enclave.pipeline import ocr

    path = make_scan(tmp_path / "scan.pdf", ["Lieferschein 4711"])
    monkeypatch.setattr(ocr.shutil, "which", lambda _: None)
    ocr.installed_languages.cache_clear()
    try:
        with pytest.raises(LoadError) as info:
            load(path, MB)
    finally:
        ocr.installed_languages.cache_clear()
    assert info.value.reason == "empty" and "tesseract-ocr-deu" in str(info.value)


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("word " * 1000)
    with pytest.raises(LoadError) as info:
        load(path, max_bytes=1000)
    assert info.value.reason == "too_large"


def test_discover_recurses_and_skips_hidden(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    for name in ("a/one.md", "a/b/two.txt", ".git/config", "a/.hidden.md"):
        (tmp_path / name).write_text("x")
    found = {p.relative_to(tmp_path).as_posix() for p in discover([tmp_path])}
    assert found == {"a/one.md", "a/b/two.txt"}


def test_ingest_shows_which_scanned_page_ocr_reads(tmp_path: Path, enclave: Enclave) -> None:
    """A long scan takes minutes: the reading bar names the page OCR is on."""
    pages = ["Lieferschein 4711", "Lieferschein 4712", "Lieferschein 4713"]
    (tmp_path / "scans").mkdir()
    make_scan(tmp_path / "scans" / "lieferscheine.pdf", pages)
    shown: list[str] = []

    class Recording(Progress):
        def update(self, task_id: TaskID, **changes: Any) -> None:
            if changes.get("description"):
                shown.append(changes["description"])
            super().update(task_id, **changes)

    with Recording(disable=True) as progress:
        report = enclave.ingestor.ingest(
            [tmp_path / "scans"], [Principal("user", "ann")], progress=progress
        )
    assert [f.status for f in report.files] == ["added"]
    assert shown == [
        "reading lieferscheine.pdf",
        "reading lieferscheine.pdf (OCR: page 1 of 3)",
        "reading lieferscheine.pdf (OCR: page 2 of 3)",
        "reading lieferscheine.pdf (OCR: page 3 of 3)",
        "reading lieferscheine.pdf",
    ]
