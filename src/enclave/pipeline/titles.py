"""What a document is called where its format has no title field, or a useless one.

Titles are shown with every source, embedded with every chunk, and a question's words in a
title tie a passage to it (grounding.py): "remote-work-policy" or "Microsoft Word -
Dokument1.docx" costs more than it seems. A title should read as the document calls itself;
the file name stays the fallback.
"""

from __future__ import annotations

import re
from collections import Counter

from pypdf import PageObject

# A line that reads as a title: short, with letters, not a sentence, a list item or a label.
_MAX_WORDS, _MAX_CHARS = 15, 120
_NOT_A_TITLE_END = (".", "!", "?", ",", ";", ":")
_LIST_ITEM = re.compile(r"[-*•]|\d+[.)] ")
# A plain-text file's first line, set apart from the rest by a blank line (its length is
# judged by reads_as_title).
_FIRST_LINE = re.compile(r"\s*(?P<line>[^\n]+?)[ \t]*\r?\n[ \t]*\r?\n")
# Metadata titles that name the file or the program, not the document.
_PLACEHOLDER = re.compile(
    r"(microsoft (word|powerpoint|excel) - .*|untitled.*|(dokument|document)\s*\d*"
    r"|.*\.(docx?|pptx?|xlsx?|odt|rtf|pdf|txt))",
    re.IGNORECASE,
)
# A title's letters stand at least this much larger than the page's body text.
_LARGER = 1.15


def reads_as_title(line: str) -> bool:
    """Whether a line could be a document's title."""
    line = line.strip()
    return (
        0 < len(line) <= _MAX_CHARS
        and len(line.split()) <= _MAX_WORDS
        and any(c.isalpha() for c in line)
        and not line.endswith(_NOT_A_TITLE_END)
        and not _LIST_ITEM.match(line)
    )


def text_title(text: str) -> str:
    """The first line of a plain-text document where it reads as a title, else ""."""
    match = _FIRST_LINE.match(text)
    line = match.group("line").strip() if match else ""
    return line if reads_as_title(line) else ""


def metadata_title(title: str | None) -> str:
    """A title from a file's metadata, or "" where it is a placeholder or a file name."""
    title = (title or "").strip()
    return "" if _PLACEHOLDER.fullmatch(title) else title


def pdf_text_and_title(page: PageObject) -> tuple[str, str]:
    """A PDF page's text, and the first line set larger than its body text where that reads as
    a title, else "" (one reading of the page gives both: reading is most of a PDF's load)."""
    runs: list[tuple[float, str]] = []

    def visit(text: str, cm: list[float], tm: list[float], font: object, size: float) -> None:
        scale = abs(tm[3] * cm[3]) or 1.0
        if text.strip():
            runs.append((round(size * scale, 1), text))

    text = page.extract_text(visitor_text=visit) or ""
    return text, _title(runs)


def _title(runs: list[tuple[float, str]]) -> str:
    """The first run of the largest letters, where they stand larger than the body's and
    read as a title."""
    if not runs:
        return ""
    letters: Counter[float] = Counter()
    for size, text in runs:
        letters[size] += len(text)
    body = letters.most_common(1)[0][0]
    largest = max(size for size, _ in runs)
    if largest < body * _LARGER:
        return ""
    first = next(i for i, (size, _) in enumerate(runs) if size == largest)
    parts = []
    for size, text in runs[first:]:
        if size != largest:
            break
        parts.append(text)
    line = " ".join(" ".join(parts).split())
    return line if reads_as_title(line) else ""
