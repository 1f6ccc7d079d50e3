"""Prompts for the LLM: numbered sources the answer cites as [1], [2], ..."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from enclave.pipeline.entities import Hit

INSTRUCTION = (
    "Answer the question using only the numbered sources. After each statement, cite the "
    "source it comes from by its number in square brackets, like [1]. If the sources do not "
    "contain the answer, say that you do not know."
)
NO_SOURCES_INSTRUCTION = "Answer the question briefly and accurately."
# A base model (completion prompt) has no end-of-turn: stop where it starts a new block or
# a second answer ("Peyton Manning\nAnswer: 1999\nAnswer: 1999 ..." on XQuAD). (It also ends
# at the first blank line after some text: see LlamaCppLLM.) Chat models end their turn
# themselves and get no stop sequences.
COMPLETION_STOP = ["\nQuestion:", "\nSources:", "\nAnswer:"]


@dataclass(frozen=True)
class Prompt:
    """The same request as chat messages (chat-template models) and as plain text (base models)."""

    messages: list[dict[str, str]]
    completion: str
    # How many of the offered sources fit into the prompt (the first ones, in order).
    source_count: int = 0


def source_label(number: int, hit: Hit) -> str:
    """`[n] Title, p. 3 — Heading › Subheading`: what the model and the reader see."""
    label = f"[{number}] {hit.title}"
    if hit.page is not None:
        label += f", p. {hit.page}"
    headings = [h for h in hit.heading_path if h != hit.title]
    if headings:
        label += " — " + " › ".join(headings)
    return label


def build_prompt(question: str, sources: Sequence[Hit], max_source_chars: int) -> Prompt:
    """A prompt that shows the sources (within a character budget) and asks for citations."""
    blocks, used = [], 0
    for number, hit in enumerate(sources, start=1):
        block = f"{source_label(number, hit)}\n{hit.text.strip()}"
        if used + len(block) > max_source_chars and blocks:
            break
        blocks.append(block)
        used += len(block)
    context = "\n\n".join(blocks)
    user = f"Sources:\n\n{context}\n\nQuestion: {question.strip()}"
    return Prompt(
        messages=[{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": user}],
        completion=f"{INSTRUCTION}\n\n{user}\nAnswer:",
        source_count=len(blocks),
    )


def build_prompt_without_sources(question: str) -> Prompt:
    """A prompt for answering from the model's own knowledge (search switched off)."""
    return Prompt(
        messages=[
            {"role": "system", "content": NO_SOURCES_INSTRUCTION},
            {"role": "user", "content": question.strip()},
        ],
        completion=f"{NO_SOURCES_INSTRUCTION}\n\nQuestion: {question.strip()}\nAnswer:",
    )
