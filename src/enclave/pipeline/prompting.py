"""Prompts for the LLM: numbered sources the answer cites as [1], [2], ..."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from enclave.pipeline import grounding
from enclave.pipeline.entities import Hit
from enclave.pipeline.language import language_of
from enclave.pipeline.quoting import GAP
from enclave.pipeline.sentences import sentences

# Short answers: a small model that writes whole sentences drifts from its source into
# invented detail; asked for the phrase that answers, Qwen2.5-Coder-1.5B went from F1 0.15 to
# 0.35 on XQuAD-de (30 questions), with fewer false abstentions (0.37 -> 0.27).
INSTRUCTION = (
    "Answer the question with the shortest phrase from the numbered sources that answers it, "
    "then cite the source by its number in square brackets, like [1]. If the sources do not "
    "contain the answer, say that you do not know."
)
NO_SOURCES_INSTRUCTION = "Answer the question briefly and accurately."
# A base model (completion prompt) has no end-of-turn: stop where it starts a new block or
# a second answer ("Peyton Manning\nAnswer: 1999\nAnswer: 1999 ..." on XQuAD). (It also ends
# at the first blank line after some text: see LlamaCppLLM.) Chat models end their turn
# themselves and get no stop sequences.
COMPLETION_STOP = ["\nQuestion:", "\nSources:", "\nAnswer:"]
# Of each source the model is shown the sentences that share most words with the question.
# Prefill is most of the time to the first token on a CPU, and a small model answers better
# from less text: with Gemma 3 270M on XQuAD (40 answerable / 20 withheld questions) F1 went
# 0.05 -> 0.08 (de) and 0.09 -> 0.16 (en), time to first token 1.15 -> 0.59 s and 0.91 ->
# 0.55 s; the gold answer stays in what is shown for 95 % of questions (98 % in whole passages).
# Three sentences do not help the default model either, though they keep the gold answer of more
# German XQuAD questions (all 1,190 with their gold paragraph: 87 -> 92 %): with Qwen2.5-Coder-1.5B
# (60 answerable / 40 withheld / 10 absent, 2026-12-03) F1 went 0.56 -> 0.50, false abstention
# 0.13 -> 0.20, abstention on withheld paragraphs 0.90 -> 0.88, first token 5.6 -> 7.1 s.
EXCERPT_SENTENCES = 2
# Worked examples (request, answer) shown before every question with sources: a short phrase
# copied in the source's own words and language ("vierzig", not "40"), and "I do not know"
# where the sources do not say. Qwen2.5-Coder-1.5B on XQuAD (60 answerable / 40 withheld
# questions, no floor): German F1 0.36 -> 0.53 (0.525 -> 0.535 on a second sample), English
# 0.62 -> 0.79; it copies "vier" where it wrote "4" and answers German questions in German.
# They come first and never change, so llama.cpp keeps them evaluated between questions (its
# prompt cache holds the longest common prefix); across a prompt of another kind in between
# (a follow-up's rewriting) the llama.cpp backend keeps them too (llamacpp.py).
EXAMPLES: tuple[tuple[str, str], ...] = (
    (
        "Sources:\n\n[1] Betriebsvereinbarung Gleitzeit — Kernzeit\nDie Kernzeit liegt zwischen "
        "10 und 15 Uhr. Ein Gleitzeitguthaben von bis zu vierzig Stunden kann in das Folgejahr "
        "übertragen werden.\n\n[2] Parkplatzordnung\nDie Stellplätze in der Tiefgarage vergibt "
        "der Empfang.\n\nQuestion: Wie viele Gleitzeitstunden dürfen ins nächste Jahr "
        "mitgenommen werden?",
        "bis zu vierzig Stunden [1]",
    ),
    (
        "Sources:\n\n[1] Kantine — Öffnungszeiten\nDie Kantine ist montags bis freitags von "
        "11:30 bis 14 Uhr geöffnet.\n\nQuestion: Was kostet ein Mittagessen in der Kantine?",
        "Ich weiß es nicht.",
    ),
    (
        "Sources:\n\n[1] Travel policy — Rail\nEmployees may book first-class tickets for "
        "journeys longer than four hours.\n\n[2] Travel policy — Hotels\nHotel rooms are "
        "booked through the travel office in Munich, never by the traveller.\n\n"
        "Question: Who books hotel rooms?",
        "the travel office in Munich [2]",
    ),
)
EXAMPLES_CHARS = sum(len(request) + len(answer) for request, answer in EXAMPLES)
# The examples' words as an answer's words are compared (grounding.terms); numbers are checked
# on their own, and words shorter than four letters ("bis", "ich") may join any answer.
_EXAMPLE_TERMS = frozenset(
    term
    for term in grounding.terms(" ".join(" ".join(pair) for pair in EXAMPLES))
    if len(term) >= 4 and not term[0].isdigit()
)
_EXAMPLE_TURNS = tuple(
    {"role": role, "content": text}
    for request, answer in EXAMPLES
    for role, text in (("user", request), ("assistant", answer))
)
_WORKED = "".join(f"{request}\nAnswer: {answer}\n\n" for request, answer in EXAMPLES)


@dataclass(frozen=True)
class Prompt:
    """The same request as chat messages (chat-template models) and as plain text (base models)."""

    messages: list[dict[str, str]]
    completion: str
    # How many of the offered sources fit into the prompt (the first ones, in order).
    source_count: int = 0
    # The text shown of each of those sources, for a backend that holds the answer to quotes
    # of it (quoting.py).
    shown: tuple[str, ...] = ()


def from_the_examples(missing: Iterable[str]) -> bool:
    """Whether words an answer has from none of its sources (grounding.support's missing) come
    from the worked examples: the default model answered "Who is moving to Augsburg?" with
    "the travel office in Augsburg [2]", "travel office" from the third example, which the
    check that most of an answer's words stand in the sources let through."""
    return not _EXAMPLE_TERMS.isdisjoint(missing)


def source_label(number: int, hit: Hit) -> str:
    """`[n] Title, p. 3 — Heading › Subheading`: what the model and the reader see."""
    label = f"[{number}] {hit.title}{hit.page_label}"
    headings = [h for h in hit.heading_path if h != hit.title]
    if headings:
        label += " — " + " › ".join(headings)
    return label


def excerpt(text: str, question: str, keep: int = EXCERPT_SENTENCES) -> str:
    """Up to keep sentences of a passage that share most content words with the question (at
    least half as many as the best one), in the passage's order. The whole passage where it is
    short, where no sentence shares a word, or where it is in another language than the
    question (its words cannot be compared)."""
    language = language_of(text)
    found = sentences(text, language)
    wanted = grounding.terms(question)
    shared = [len(wanted & grounding.terms(s)) for s in found]
    if len(found) <= keep or not any(shared) or language != language_of(question):
        return text.strip()
    best = sorted(range(len(found)), key=lambda i: (-shared[i], i))[:keep]
    # A sentence sharing one word, beside one sharing three, distracts more than it helps.
    top = shared[best[0]]
    return GAP.join(found[i] for i in sorted(best) if shared[i] and 2 * shared[i] >= top)


def build_prompt(question: str, sources: Sequence[Hit], max_source_chars: int) -> Prompt:
    """A prompt that shows excerpts of the sources (within a character budget) and asks for
    citations."""
    blocks, shown, used = [], [], 0
    for number, hit in enumerate(sources, start=1):
        text = excerpt(hit.text, question)
        block = f"{source_label(number, hit)}\n{text}"
        if used + len(block) > max_source_chars and blocks:
            break
        blocks.append(block)
        shown.append(text)
        used += len(block)
    context = "\n\n".join(blocks)
    user = f"Sources:\n\n{context}\n\nQuestion: {question.strip()}"
    return Prompt(
        messages=[
            {"role": "system", "content": INSTRUCTION},
            *(dict(turn) for turn in _EXAMPLE_TURNS),
            {"role": "user", "content": user},
        ],
        completion=completion_text([INSTRUCTION], user, worked=True),
        source_count=len(blocks),
        shown=tuple(shown),
    )


def completion_text(system: Sequence[str], request: str, worked: bool) -> str:
    """A base model's plain-text prompt: the instructions, the worked examples (for a request
    that shows sources), the request, and "Answer:" for the model to go on from."""
    examples = _WORKED if worked else ""
    return "\n\n".join(system) + ("\n\n" if system else "") + f"{examples}{request}\nAnswer:"


def build_prompt_without_sources(question: str) -> Prompt:
    """A prompt for answering from the model's own knowledge (search switched off)."""
    return Prompt(
        messages=[
            {"role": "system", "content": NO_SOURCES_INSTRUCTION},
            {"role": "user", "content": question.strip()},
        ],
        completion=completion_text(
            [NO_SOURCES_INSTRUCTION], f"Question: {question.strip()}", worked=False
        ),
    )
