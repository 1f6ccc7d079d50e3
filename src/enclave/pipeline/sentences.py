"""The sentences of a passage, as spans of its text: what an excerpt shows (prompting.py)
and what a quote cites (grounding.py) are cut the same way."""

from __future__ import annotations

import re

# A sentence ends at a blank line; at a line break before a heading, a list item or a
# quotation (hard-wrapped text otherwise runs on across lines; not before "24. ": in
# hard-wrapped German a date's day often begins a line); and after a full stop before a
# capital.
_BOUNDARY = re.compile(r"\n\s*\n|\n(?=\s*(?:#|[-*+>]\s))|(?<=[.!?])\s+(?=[\"'„“(]?[A-ZÄÖÜ])")
# In German a number with a full stop is an ordinal as often as not, and a capital follows it
# ("am 12. März", "ins 19. Jahrhundert", "in der 2. Klasse"): no sentence ends there. In
# English one does ("at age 39. The record").
_ORDINAL = re.compile(r"\b\d{1,2}\.$")


def sentence_spans(text: str, language: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of text, without the space around it, in order. A
    heading line is a sentence of its own."""
    spans, start = [], 0
    for boundary in [*_BOUNDARY.finditer(text), None]:
        if boundary and language == "de" and _after_ordinal(text, boundary.start()):
            continue
        end = boundary.start() if boundary else len(text)
        spans += _trimmed(text, start, end)
        if boundary:
            start = boundary.end()
    return spans


def _after_ordinal(text: str, end: int) -> bool:
    # Only the last three characters can hold "12."; \b still sees the one before them.
    return bool(_ORDINAL.search(text, max(0, end - 3), end))


def _trimmed(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The span without surrounding space; a heading's line apart from what follows it."""
    piece = text[start:end]
    if not piece.strip():
        return []
    start += len(piece) - len(piece.lstrip())
    end = start + len(piece.strip())
    if text.startswith("#", start) and "\n" in text[start:end]:
        line_end = text.index("\n", start)
        return _trimmed(text, start, line_end) + _trimmed(text, line_end, end)
    return [(start, end)]


def sentences(text: str, language: str) -> list[str]:
    """The sentences of text, each on one line (the line breaks of hard-wrapped text become
    spaces)."""
    return [" ".join(text[start:end].split()) for start, end in sentence_spans(text, language)]
