"""Follow-up questions made standalone before retrieval.

"And how can I download it?" finds nothing useful on its own: "it" is the audit log of the
previous turn. A follow-up (it refers back: "it", "that", "then", "dafür", opens with "and",
"und", "what about", or is too short to ask anything alone: "Where?", "Wie lange?") is
rewritten by the model into a standalone question, with the conversation as context. A
rewrite that is unusable (empty, a loop, longer than a question, sharing no word with the
conversation or none with the follow-up) falls back to the follow-up plus the previous
question, which carries the topic for both keyword and dense search.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from enclave.pipeline import grounding
from enclave.pipeline.entities import Usage
from enclave.pipeline.llm import LLM, first_line
from enclave.pipeline.prompting import Prompt

# (user question, assistant answer), oldest first.
Turn = tuple[str, str]

_REFERS_BACK = re.compile(
    r"^\s*(and|but|also|what about|how about|und|aber|auch|was ist mit|wie ist es mit)\b"
    r"|\b(it|its|they|them|their|this|that|these|those|there|then|he|she|him|her|es|ihn|ihm|"
    r"dies|diese|dieser|dieses|diesen|dort|dorthin|dahin|dann|dafür|davon|damit|darauf|dazu|"
    r"daran|darin|darüber|danach|dabei|deren|dessen)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+")
# A question of this many words or fewer leaves out what it asks about: "Where?", "How long?".
_ELLIPTICAL = 2
_INSTRUCTION = (
    "Rewrite the follow-up question so that it can be understood without the conversation. "
    "Keep its language. Reply with the rewritten question only."
)
_EXAMPLE = (
    "Conversation:\nUser: Which port does the export service use?\nAssistant: Port 8443.\n"
    "Follow-up: Can I change it?\nStandalone question: Can I change the port of the export "
    "service?\n\n"
)
_MAX_CHARS = 300


def is_follow_up(question: str) -> bool:
    """Whether the question refers back to the conversation: by a word such as "it" or
    "then", or by being too short to ask anything alone ("Where?", "Wie lange?")."""
    return bool(_REFERS_BACK.search(question)) or len(_WORD.findall(question)) <= _ELLIPTICAL


def standalone_query(
    question: str, history: Sequence[Turn], llm: LLM | None, usage: Usage | None = None
) -> str:
    """The search query for question: itself, or a standalone rewrite of a follow-up (the
    model's tokens added to usage)."""
    if not history or not is_follow_up(question):
        return question
    if llm is not None:
        rewritten = _rewrite(llm, question, history, usage)
        if _usable(rewritten, question, history):
            return rewritten
    return f"{question} {history[-1][0]}"


def asked_as(question: str, query: str) -> str:
    """The question as the model answering it is asked it (it sees no conversation): for a
    question too short to ask anything alone, its standalone rewrite ("Where?" after "When is
    the company party?" got "Augsburg [3]", from the all-hands notes that also say where the
    party is); else the question itself, which is what the model answers best: asked the
    rewrites, it answered "Und bei Teilzeit?" with the full-time "30 [1]" and "What is it
    for?" (the allowance; rewritten "What is the home office allowance?") with its amount."""
    short = len(_WORD.findall(question)) <= _ELLIPTICAL
    rewritten = query != question and not query.startswith(f"{question} ")
    return query if short and rewritten else question


def _rewrite(llm: LLM, question: str, history: Sequence[Turn], usage: Usage | None) -> str:
    lines = []
    for asked, answered in history[-3:]:
        lines += [f"User: {asked.strip()[:500]}", f"Assistant: {answered.strip()[:300]}"]
    conversation = "Conversation:\n" + "\n".join(lines)
    task = f"{conversation}\nFollow-up: {question.strip()}\nStandalone question:"
    prompt = Prompt(
        messages=[
            {"role": "system", "content": _INSTRUCTION},
            {"role": "user", "content": _EXAMPLE + task},
        ],
        completion=f"{_INSTRUCTION}\n\n{_EXAMPLE}{task}",
    )
    return first_line(llm, prompt, 48, usage, label="Standalone question:")


def _usable(rewritten: str, question: str, history: Sequence[Turn]) -> bool:
    if not rewritten or len(rewritten) > _MAX_CHARS or rewritten == question:
        return False
    context = grounding.terms(" ".join(q for q, _ in history))
    kept, asked = grounding.terms(rewritten), grounding.terms(question)
    # Gemma 3 270M rewrote "Und um wie viel Uhr?" as the previous question itself, dropping
    # what the follow-up asks for: a rewrite must keep a word of it.
    return bool(kept & context) and (not asked or bool(kept & asked))
