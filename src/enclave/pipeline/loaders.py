"""Turn files into Documents: one loader per format, each keeping the structure it can see."""

from __future__ import annotations

import hashlib
import io
import itertools
import logging
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import charset_normalizer
import docx
from docutils import nodes
from docutils.core import publish_doctree
from docx.document import Document as DocxDocument
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table
from markdown_it import MarkdownIt
from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError, PdfReadError

from enclave.pipeline.entities import Document, LoadError, Section
from enclave.pipeline.html_text import HEADINGS, page_blocks
from enclave.pipeline.office import check_archive, load_pptx, load_xlsx, refused
from enclave.pipeline.titles import metadata_title, pdf_text_and_title, text_title

# pypdf logs what it repairs or gives up on ("invalid pdf header", "EOF marker not found") as
# warnings, which reach the terminal unformatted; a file it cannot read becomes a LoadError
# with the reason, so its notes would only repeat that.
logging.getLogger("pypdf").setLevel(logging.ERROR)


class Loader(Protocol):
    """Reads a file's bytes into a title and its sections."""

    def __call__(self, data: bytes, path: Path) -> tuple[str, list[Section]]: ...


MIME_TYPES = {
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".html": "text/html",
    ".htm": "text/html",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".txt": "text/plain",
    ".text": "text/plain",
    ".rst": "text/x-rst",
    ".eml": "message/rfc822",
}

_BLANK_RUNS = re.compile(r"[ \t]+\n")


def load(path: Path, max_bytes: int) -> Document:
    """Load one file, or raise LoadError saying why it cannot be ingested."""
    suffix = path.suffix.lower()
    loader = LOADERS.get(suffix)
    if loader is None:
        raise LoadError("unsupported", f"unsupported file type {suffix or '(none)'!r}")
    size = path.stat().st_size
    if size > max_bytes:
        raise LoadError(
            "too_large",
            f"file is {size / 2**20:.1f} MiB, over the {max_bytes / 2**20:.0f} MiB limit "
            "(ENCLAVE_MAX_FILE_MB)",
        )
    data = path.read_bytes()
    if not data.strip():
        raise LoadError("empty", "file is empty")
    title, sections = loader(data, path)
    sections = [s for s in (_tidy(s) for s in sections) if s.text]
    if not sections:
        raise LoadError("empty", "no text could be extracted")
    text, starts = _join(sections)
    return Document(
        source=str(path.resolve()),
        title=title.strip() or path.stem,
        mime=MIME_TYPES[suffix],
        text=text,
        sections=tuple(sections),
        section_starts=tuple(starts),
        content_hash=hashlib.sha256(data).hexdigest(),
    )


def _tidy(section: Section) -> Section:
    text = _BLANK_RUNS.sub("\n", section.text.replace("\r\n", "\n").replace("\x00", ""))
    return Section(re.sub(r"\n{3,}", "\n\n", text).strip(), section.heading_path, section.page)


def _join(sections: list[Section]) -> tuple[str, list[int]]:
    """The document text is its sections separated by blank lines; offsets point into it."""
    starts, parts, pos = [], [], 0
    for section in sections:
        starts.append(pos)
        parts.append(section.text)
        pos += len(section.text) + 2
    return "\n\n".join(parts), starts


def decode_text(data: bytes, declared: str | None = None) -> str:
    """Decode bytes of unknown encoding; refuse binary data rather than ingest garbage.

    UTF-8 first, then the encoding the file declares (an HTML meta tag), then detection.
    Where Windows-1252 reads the bytes as cleanly as the detected code page, it wins: it is
    the usual legacy encoding of German, French and English text, and on short texts several
    single-byte code pages decode without error. charset_normalizer alone read a Latin-1
    "Grüße aus München" as Mac Icelandic ("Gr¸þe aus M¸nchen") and "voilà" as Windows-1250
    ("voilŕ"); Polish, Czech, Cyrillic or Greek text in its own code page reads as too
    chaotic in Windows-1252 and keeps the detected one.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    if declared:
        try:
            return data.decode(declared)
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong or unknown label: detect instead
    best = charset_normalizer.from_bytes(data).best()
    if best is None or (b"\x00" in data[:4096] and best.encoding not in ("utf_16", "utf_32")):
        raise LoadError("encoding", "not text in any encoding that could be recognised")
    if best.encoding != "cp1252":
        western = charset_normalizer.from_bytes(data, cp_isolation=["cp1252"]).best()
        if western is not None and western.percent_chaos <= best.percent_chaos:
            return str(western)
    return str(best)


def _sections_by_heading(lines: list[str], headings: dict[int, tuple[int, str]]) -> list[Section]:
    """Split lines into sections at heading lines (line index -> (level, title)).

    Each section starts with its heading line; a heading with no text under it is no passage
    (its title lives on in the heading paths of the sections below it).
    """
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    start = 0
    for end in [*sorted(headings), len(lines)]:
        body = lines[start + 1 : end] if start in headings else lines[start:end]
        if any(line.strip() for line in body):
            sections.append(Section("\n".join(lines[start:end]), tuple(t for _, t in path)))
        if end in headings:
            level, title = headings[end]
            path[:] = [(lvl, t) for lvl, t in path if lvl < level] + [(level, title)]
        start = end
    return sections


def load_text(data: bytes, path: Path) -> tuple[str, list[Section]]:
    text = decode_text(data)
    return text_title(text) or path.stem, [Section(text)]


_markdown = MarkdownIt("commonmark")


def load_markdown(data: bytes, path: Path) -> tuple[str, list[Section]]:
    text = decode_text(data)
    lines = text.splitlines()
    tokens = _markdown.parse(text)
    headings: dict[int, tuple[int, str]] = {}
    for token, inline in itertools.pairwise(tokens):
        if token.type == "heading_open" and token.map:
            headings[token.map[0]] = (int(token.tag[1]), inline.content.strip())
    title = next((t for lvl, t in headings.values() if lvl == 1), path.stem)
    return title, _sections_by_heading(lines, headings)


# Parse reStructuredText as data: no file inclusion (".. include:: /etc/passwd" would put a
# server file into the index), no raw HTML, and no error reports on stderr. Sphinx's own
# directives and roles are unknown to docutils; they are dropped or kept as their source text.
_RST_SETTINGS = {
    "file_insertion_enabled": False,
    "raw_enabled": False,
    "report_level": 5,
    "halt_level": 5,
    "warning_stream": io.StringIO(),
    "doctitle_xform": False,
    "input_encoding": "unicode",
}
_RST_SKIPPED = (nodes.title, nodes.system_message, nodes.comment, nodes.target)


def load_rst(data: bytes, path: Path) -> tuple[str, list[Section]]:
    """reStructuredText (Sphinx documentation): sections by its headings, text by block."""
    tree = publish_doctree(decode_text(data), settings_overrides=_RST_SETTINGS)
    lines: list[str] = []
    headings: dict[int, tuple[int, str]] = {}

    def walk(node: nodes.Element, level: int) -> None:
        for child in node.children:
            if isinstance(child, nodes.section):
                title = child.next_node(nodes.title)
                if title is not None:
                    heading = title.astext().strip()
                    headings[len(lines)] = (level + 1, heading)
                    lines.extend([heading, ""])
                walk(child, level + 1)
            elif isinstance(child, nodes.Element) and not isinstance(child, _RST_SKIPPED):
                text = child.astext().strip()
                if text:
                    lines.extend([text, ""])

    walk(tree, 0)
    title = next((t for level, t in headings.values() if level == 1), path.stem)
    return title, _sections_by_heading(lines, headings)


def html_sections(markup: str) -> tuple[str, list[Section]]:
    """Headings and block text of an HTML page, in document order."""
    title, blocks = page_blocks(markup)
    lines: list[str] = []
    headings: dict[int, tuple[int, str]] = {}
    for element, text in blocks:
        if element in HEADINGS:
            headings[len(lines)] = (int(element[1]), text)
            title = title or text
        # A blank line after each block keeps paragraph boundaries for the chunker.
        lines.extend([text, ""])
    return title, _sections_by_heading(lines, headings)


# <meta charset="..."> or <meta http-equiv="Content-Type" content="text/html; charset=...">
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.IGNORECASE)


def load_html(data: bytes, path: Path) -> tuple[str, list[Section]]:
    declared = _META_CHARSET.search(data[:4096])
    charset = declared.group(1).decode("ascii") if declared else None
    title, sections = html_sections(decode_text(data, charset))
    return title or path.stem, sections


def load_docx(data: bytes, path: Path) -> tuple[str, list[Section]]:
    check_archive(data)
    try:
        document: DocxDocument = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise refused(data, "(.doc) Word", "DOCX", exc) from exc
    lines: list[str] = []
    headings: dict[int, tuple[int, str]] = {}
    title = metadata_title(document.core_properties.title)
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                cells = [cell.text.strip() for cell in row.cells]
                lines.append(" | ".join(dict.fromkeys(c for c in cells if c)))
            lines.append("")
            continue
        text = block.text.strip()
        style = (block.style.name if block.style is not None else "") or ""
        level = _docx_heading_level(style)
        if level and text:
            headings[len(lines)] = (level, text)
            title = title or text
        lines.extend([text, ""])
    return title or path.stem, _sections_by_heading(lines, headings)


def _docx_heading_level(style: str) -> int:
    if style == "Title":
        return 1
    match = re.fullmatch(r"Heading (\d)", style)
    return int(match.group(1)) if match else 0


def load_pdf(data: bytes, path: Path) -> tuple[str, list[Section]]:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError("encrypted", "PDF is password-protected")
        # The first page is read once, for its text and its largest line as a title.
        read = [
            pdf_text_and_title(page) if number == 0 else (page.extract_text() or "", "")
            for number, page in enumerate(reader.pages)
        ]
        pages = [text for text, _ in read]
        title = metadata_title(reader.metadata.title if reader.metadata else None)
        title = title or (read[0][1] if read else "")
    except FileNotDecryptedError as exc:
        raise LoadError("encrypted", "PDF is password-protected") from exc
    except (PdfReadError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        raise LoadError("corrupt", f"not a readable PDF ({exc})") from exc
    scanned = [number for number, text in enumerate(pages) if not text.strip()]
    if scanned:
        from enclave.pipeline import ocr  # only for scans: it loads PDFium and Tesseract

        for number, text in ocr.read_pages(data, scanned).items():
            pages[number] = text
        if not any(p.strip() for p in pages):
            how = "" if ocr.installed_languages() else f"; {ocr.HOW_TO_INSTALL}"
            raise LoadError("empty", f"PDF has no text, and none was read from its images{how}")
    return title or path.stem, [Section(text, (), number) for number, text in enumerate(pages, 1)]


def load_email(data: bytes, path: Path) -> tuple[str, list[Section]]:
    # mail.py reads attachments with the loaders registered here, so it is imported when used.
    from enclave.pipeline.mail import read_email

    return read_email(data, path)


LOADERS: dict[str, Loader] = {
    ".pdf": load_pdf,
    ".docx": load_docx,
    ".pptx": load_pptx,
    ".xlsx": load_xlsx,
    ".html": load_html,
    ".htm": load_html,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".txt": load_text,
    ".text": load_text,
    ".rst": load_rst,
    ".eml": load_email,
}


def discover(paths: Iterable[Path]) -> Iterable[Path]:
    """Files under the given paths, recursively, skipping hidden files and folders."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                relative = child.relative_to(path).parts
                if child.is_file() and not any(p.startswith(".") for p in relative):
                    yield child
        else:
            yield path
