"""Code an answer quotes (a command, a path, a setting, in backticks) must stand verbatim in
the passages it was shown.

A small model joins the command of one passage to the options of another: asked how to
restore a backup, Qwen2.5-Coder-1.5B answers "`lumenctl restore --target /srv/backup`" where
the handbook says "Restoring is done with `lumenctl restore`" and, for backups, "Run
`lumenctl backup --target /srv/backup`". Every word of that stands in the passage, so the
word checks (grounding.py) pass it, and copied to a terminal it does the wrong thing.

A command that stands must also be the one for what was asked: asked "How do I restore a
backup of Lumen?", the same model answers with the backup command, and asked how to create
the configuration, with `apt install lumen-server` from "Install the package with `apt install
lumen-server`, then run `lumenctl init` to create the configuration". Where a sentence of the
passages names the action a how-to question asks for, the command it gives for it is the one
standing nearest that word.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from enclave.pipeline import grounding
from enclave.pipeline.entities import Hit
from enclave.pipeline.sentences import sentence_spans

_CODE = re.compile(r"`([^`\n]+)`")
# A quoted span that begins with fewer of the answer's words is another command.
_MIN_SHARED_WORDS = 2
# The verb a how-to question asks for: "How do I restore …", "how to restore …", "Wie kann ich
# … wiederherstellen?" (a separable German verb, "Wie stelle ich … wieder her?", is not read).
_HOW_TO = re.compile(
    r"\bhow\s+(?:do|can|should|could|would|must|may)\s+(?:i|we|you|one)\s+([^\W\d_]+)"
    r"|\bhow\s+to\s+([^\W\d_]+)"
    r"|\bwie\s+(?:kann|können|muss|müssen|soll|sollen|darf|dürfen)\s+(?:ich|man|wir)\b"
    r"[^?]*?([^\W\d_]+)\s*\?",
    re.IGNORECASE,
)
_LETTERS = re.compile(r"[^\W\d_]+")


def verbatim(answer: str, sources: Sequence[Hit], question: str = "") -> str | None:
    """The answer, each code span of it that stands in no passage replaced by the passages'
    quoted span that begins with most of its words (at least the command and what it does);
    None where a span has no such one. An answer without code comes back as it is. Then, for
    a how-to question, its first code span must be what the passages give for the action
    asked (see for_the_action)."""
    mended = _standing(answer, sources)
    return mended if mended is None else for_the_action(mended, sources, question)


def for_the_action(answer: str, sources: Sequence[Hit], question: str) -> str | None:
    """The answer, its first code span replaced by the quoted span standing nearest the
    action a how-to question asks for, in the sentences of the passages that name it; None
    where those sentences give several and the answer's is none of them. Unchanged where the
    question asks for no action, the answer quotes no code or no sentence names the action
    beside code."""
    asked = _HOW_TO.search(question)
    first = _CODE.search(answer)
    verb = next((word for word in asked.groups() if word), "") if asked else ""
    action = grounding.terms(verb)
    if not action or first is None:
        return answer
    given = list(dict.fromkeys(code for hit in sources for code in _for(action, hit)))
    code = _squeezed(first.group(1))
    if not given or code in given:
        return answer
    if len(given) > 1:
        return None
    return f"{answer[: first.start()]}`{given[0]}`{answer[first.end() :]}"


def _for(action: set[str], hit: Hit) -> list[str]:
    """In each sentence of hit naming the action, the quoted span nearest that word."""
    found = []
    for start, end in sentence_spans(hit.text, grounding.language_of_hit(hit)):
        sentence = hit.text[start:end]
        named = [m for m in _LETTERS.finditer(sentence) if grounding.terms(m.group()) == action]
        quoted = list(_CODE.finditer(sentence))
        if named and quoted:
            nearest = min(quoted, key=lambda q: min(_gap(q.span(), word.span()) for word in named))
            found.append(_squeezed(nearest.group(1)))
    return found


def _gap(a: tuple[int, int], b: tuple[int, int]) -> int:
    """Characters between two spans of one text."""
    return max(b[0] - a[1], a[0] - b[1], 0)


def _standing(answer: str, sources: Sequence[Hit]) -> str | None:
    """The answer, each code span standing in no passage replaced (see verbatim)."""
    texts = [_squeezed(hit.text) for hit in sources]
    quoted = list(
        dict.fromkeys(_squeezed(code) for hit in sources for code in _CODE.findall(hit.text))
    )
    mended, end = [], 0
    for match in _CODE.finditer(answer):
        code = _squeezed(match.group(1))
        if not any(code in text for text in texts):
            shared = {q: _shared_words(q, code) for q in quoted}
            best = max(shared, key=shared.__getitem__, default=None)
            if best is None or shared[best] < _MIN_SHARED_WORDS:
                return None
            code = best
        mended += [answer[end : match.start()], f"`{code}`"]
        end = match.end()
    return "".join(mended) + answer[end:]


def _squeezed(text: str) -> str:
    return " ".join(text.split())


def _shared_words(quoted: str, code: str) -> int:
    """How many words the two begin with alike."""
    shared = 0
    for a, b in zip(quoted.split(), code.split(), strict=False):
        if a != b:
            break
        shared += 1
    return shared
