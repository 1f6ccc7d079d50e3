"""Noticing degenerate generation while it happens, so it can be stopped.

Small models fall into loops: a digit run ("1000000000…"), counting citation marks
("[1] [2] [3] … [20]"), the same phrase over and over, or the same line in a numbered list
("7. I work from home.\n8. I work from home.\n…"), or a list that only counts ("1. 1.\n2. 2.\n…",
"1.\n2.\n…"). Generation stops at the first
sign; what came before the loop is kept if it stands on its own, else the answer is withdrawn
(see answering.py).
"""

from __future__ import annotations

import re

# Twelve digits in a row: no date, amount or phone number in an answer needs more.
_DIGIT_RUN = re.compile(r"\d{12}")
# Four citation marks with nothing but spaces and commas between them.
_MARK_RUN = re.compile(r"(?:\[\d+\][\s,;]*){4}")
# The same phrase of 1 to 12 words three times in a row at the end of the text. Words are
# split at hyphens too: SmolLM2-135M looped "lumen-server-memory-usage-lumen-lumen-lumen-…"
# as one ever longer word.
_MAX_PHRASE_WORDS = 12
_WORD_BREAK = re.compile(r"[\s\-‐–]+")
_REPEATS = 3
# A list item's number, bullet or leading citation mark, which differs between otherwise
# repeated lines.
_ENUMERATOR = re.compile(r"^\s*(?:\d+[.)]|[-*•]|\[\d+\])\s*")
# A line of at least four words seen three times (anywhere in the text) is a loop; so is a
# line that starts with a citation mark, however short: Gemma 3 270M listed
# "[1] Apotheken\n[2] Apotheken\n…" as its answer (XQuAD: twice among 100 German questions).
_MIN_LINE_WORDS = 4
_CITED_LINE = re.compile(r"^\s*\[\d+\]")
# A list item that says nothing but its own number: "3.", "3. 3.", "3) 3". Gemma 3 270M
# counted so to the token limit for "Bis wann muss ich Belege einreichen?".
_EMPTY_ITEM = re.compile(r"\s*(\d+)[.)](?:\s*\1[.)]?)?\s*")


class RepetitionGuard:
    """Feed it the generated pieces; it says when the text has started to loop."""

    def __init__(self) -> None:
        self.text = ""

    def degenerate(self, piece: str) -> bool:
        """Add piece; True once the text shows a loop."""
        self.text += piece
        tail = self.text[-400:]
        return bool(
            _DIGIT_RUN.search(tail)
            or _MARK_RUN.search(tail)
            or _phrase_loop([word for word in _WORD_BREAK.split(tail) if word])
            or _line_loop(self.text)
            or _counting(self.text)
        )


def _line(text: str) -> str:
    """A line as compared: without its list number or bullet, case and surrounding space."""
    return _ENUMERATOR.sub("", text).strip().lower()


def _line_loop(text: str) -> bool:
    counted = []
    for line in text.split("\n")[:-1]:  # the last may be unfinished
        compared = _line(line)
        if len(compared.split()) >= _MIN_LINE_WORDS or (compared and _CITED_LINE.match(line)):
            counted.append(compared)
    return any(counted.count(line) >= _REPEATS for line in set(counted))


def _counting(text: str) -> bool:
    lines = text.split("\n")[:-1]  # the last may be unfinished
    return sum(1 for line in lines if _EMPTY_ITEM.fullmatch(line)) >= _REPEATS


def _phrase_loop(words: list[str]) -> bool:
    for size in range(1, _MAX_PHRASE_WORDS + 1):
        span = size * _REPEATS
        if len(words) < span or (size == 1 and len(words[-1]) < 4):
            continue
        tail = [w.lower().strip(".,;:!?") for w in words[-span:]]
        phrase = tail[:size]
        if all(tail[i * size : (i + 1) * size] == phrase for i in range(1, _REPEATS)):
            return True
    return False


def before_loop(text: str) -> str:
    """The lines of text before its loop: up to the first line that loops in itself or recurs
    later. A base model often answers in one line and then repeats a heading of its sources
    ("Peyton Manning\n# Super_Bowl_50\n# Super_Bowl_50 ..."); where the answer itself is what
    repeats, one copy of it is kept. Short lines under a citation mark ("[2] Temüjin") are
    the items of a made-up source list and are left out."""
    lines = [line.strip() for line in text.splitlines()]
    compared = [_line(line) for line in lines]
    kept: list[str] = []
    for number, line in enumerate(lines):
        if RepetitionGuard().degenerate(line) or _EMPTY_ITEM.fullmatch(line):
            break
        if _CITED_LINE.match(line) and len(compared[number].split()) < _MIN_LINE_WORDS:
            # "[3] Toghrul Khan": an item of a source list the model makes up, no answer.
            continue
        if line and compared[number] in compared[number + 1 :]:
            if not any(kept):
                kept.append(line)
            break
        kept.append(line)
    return "\n".join(kept).strip()
