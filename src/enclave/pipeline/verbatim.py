"""Code an answer quotes (a command, a path, a setting, in backticks) must stand verbatim in
the passages it was shown.

A small model joins the command of one passage to the options of another: asked how to
restore a backup, Qwen2.5-Coder-1.5B answers "`lumenctl restore --target /srv/backup`" where
the handbook says "Restoring is done with `lumenctl restore`" and, for backups, "Run
`lumenctl backup --target /srv/backup`". Every word of that stands in the passage, so the
word checks (grounding.py) pass it, and copied to a terminal it does the wrong thing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from enclave.pipeline.entities import Hit

_CODE = re.compile(r"`([^`\n]+)`")
# A quoted span that begins with fewer of the answer's words is another command.
_MIN_SHARED_WORDS = 2


def verbatim(answer: str, sources: Sequence[Hit]) -> str | None:
    """The answer, each code span of it that stands in no passage replaced by the passages'
    quoted span that begins with most of its words (at least the command and what it does);
    None where a span has no such one. An answer without code comes back as it is."""
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
