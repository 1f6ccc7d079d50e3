"""Constrained decoding: a grammar that lets the model answer only by quoting its sources.

The grammar (llama.cpp's GBNF) admits exactly: a run of up to MAX_QUOTE_WORDS consecutive
words of one source's excerpt, as the model was shown it, followed by that source's number in
brackets; or one of the phrases that say the sources do not hold the answer. A small model
that paraphrases, invents or answers with a bare "[1]" is held to words that stand in what it
cites. Whether that helps is a property of the model, measured per catalogue entry
(benchmarks/answers.md): it lifts Qwen2.5-Coder-0.5B, while a stronger model loses
abstentions, since every quote is grounded by construction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterable, Sequence

# Long enough for XQuAD's answers (99 % have at most 12 words, 95 % at most 8), short enough that a
# model which starts copying a sentence has to stop and cite.
MAX_QUOTE_WORDS = 12
# What the model may say instead of quoting; grounding.says_unknown recognises each.
UNKNOWN_PHRASES = (
    "I do not know.",
    "The sources do not contain the answer.",
    "Ich weiß es nicht.",
    "Die Quellen enthalten die Antwort nicht.",
)
# Where an excerpt leaves out sentences (prompting.excerpt): a quote does not run across it.
GAP = " … "
# An answer that is nothing but a citation ("[2]"), and the beginnings of one.
_BARE_CITATION = re.compile(r"\s*\[(\d+)\]\.?\s*")
_BARE_START = re.compile(r"\s*(\[(\d+(\]\.?)?)?)?\s*")


def quote_grammar(
    excerpts: Sequence[str], max_words: int = MAX_QUOTE_WORDS, only: int | None = None
) -> str:
    """A GBNF grammar: a quote from excerpts[n-1] then " [n]" (n = only, where given), or an
    unknown phrase."""
    rules: list[str] = []
    answers: list[str] = []
    for number, text in enumerate(excerpts, start=1):
        if only is not None and number != only:
            continue
        starts: list[str] = []
        for part, segment in enumerate(text.split(GAP)):
            words = segment.split()
            prefix = f"q{number}-{part}-"
            for i, word in enumerate(words):
                # Rule prefix-i-d: words[i] and up to d - 1 of the words after it.
                rules.append(f"{prefix}{i}-1 ::= {_literal(word)}")
                for depth in range(2, max_words + 1):
                    more = f' (" " {prefix}{i + 1}-{depth - 1})?' if i + 1 < len(words) else ""
                    rules.append(f"{prefix}{i}-{depth} ::= {_literal(word)}{more}")
                starts.append(f"{prefix}{i}-{max_words}")
        if starts:
            rules.append(f'source{number} ::= ({" | ".join(starts)}) " [{number}]"')
            answers.append(f"source{number}")
    answers += [_literal(phrase) for phrase in UNKNOWN_PHRASES]
    return "\n".join([f'root ::= " "? ({" | ".join(answers)})', *rules])


def _literal(text: str) -> str:
    """A GBNF string literal (its escapes are JSON's)."""
    return json.dumps(text, ensure_ascii=False)


def held_bare_citation(pieces: Iterable[str]) -> Generator[str, None, int | None]:
    """The pieces as they come, except an answer that is nothing but a citation ("[2]"): it
    is held back and its number returned (None for every other answer).

    Qwen2.5-Coder-1.5B answered 14 of 60 German XQuAD questions so: it points at the source
    that holds the answer but writes none of it (benchmarks/answers.md).
    """
    held: str | None = ""
    for piece in pieces:
        if held is None:
            yield piece
            continue
        held += piece
        if not _BARE_START.fullmatch(held):
            yield held
            held = None
    if held is None:
        return None
    bare = _BARE_CITATION.fullmatch(held)
    if bare:
        return int(bare.group(1))
    if held:
        yield held
    return None
