"""The small records that flow through the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Literal


class LoadError(Exception):
    """A file that cannot be ingested, with a short machine-readable reason."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Section:
    """A structural unit of a document: the text under one heading, or one PDF page."""

    text: str
    heading_path: tuple[str, ...] = ()
    page: int | None = None


@dataclass(frozen=True)
class Document:
    """A loaded file: its full text and where each section starts in that text."""

    source: str
    title: str
    mime: str
    text: str
    sections: tuple[Section, ...]
    section_starts: tuple[int, ...]
    content_hash: str

    @property
    def file_name(self) -> str:
        return PurePath(self.source).name


@dataclass(frozen=True)
class Chunk:
    """A citable passage: document.text[char_start:char_end] == text."""

    ordinal: int
    text: str
    char_start: int
    char_end: int
    page: int | None
    heading_path: tuple[str, ...]
    token_count: int


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk, with where it came from and how it ranked."""

    chunk_id: int
    document_id: int
    title: str
    source: str
    ordinal: int
    text: str
    page: int | None
    heading_path: tuple[str, ...]
    char_start: int
    char_end: int
    score: float = 0.0
    dense_rank: int | None = None
    # Cosine similarity of the query and this chunk (None: found by keywords alone).
    similarity: float | None = None
    keyword_rank: int | None = None
    rerank_score: float | None = None
    # The chunk's language as detected at ingest ("de" or "en"; "" where not known).
    language: str = ""

    @property
    def file_name(self) -> str:
        return PurePath(self.source).name

    @property
    def page_unit(self) -> str:
        """What this chunk's page is: "slide" in a presentation (also one attached to an
        e-mail, whose file name heads its sections), otherwise "page"."""
        files = (self.source, *self.heading_path)
        return "slide" if any(f.lower().endswith(".pptx") for f in files) else "page"

    @property
    def page_label(self) -> str:
        """ ", p. 3" or ", slide 3" after a title or file name; "" without a page."""
        return "" if self.page is None else f", {page_mark(self.page, self.page_unit)}"


def page_mark(page: int, unit: str) -> str:
    """ "p. 3", or "slide 3" where unit is "slide" (Hit.page_unit)."""
    return f"{'slide' if unit == 'slide' else 'p.'} {page}"


@dataclass(frozen=True)
class Quote:
    """The sentence of a passage that supports an answer: hit.text[start:end] == text."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Citation:
    """A source the answer cites, by its number in the prompt.

    inferred: the model cited nothing and the source was matched to the answer's wording.
    quote: the sentence of the source that supports the answer, where one shares its words.
    """

    number: int
    hit: Hit
    inferred: bool = False
    quote: Quote | None = None


@dataclass
class Usage:
    """Tokens the model read and wrote for one answer, its follow-up rewriting included.

    unknown: a backend that could not count took part (an OpenAI-compatible server that sends
    no usage); the counts are then incomplete and are not shown.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    unknown: bool = False

    def counted(self) -> dict[str, int] | None:
        """The OpenAI `usage` object, or None where the counts are incomplete."""
        if self.unknown:
            return None
        total = self.prompt_tokens + self.completion_tokens
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": total,
        }


# Why an answer abstained, by the check that decided it (answering.py), in the order they run:
# no passage the user may read was found; none was near enough the question (its similarity);
# the model's first token was unsure; it looped before saying anything; it said the sources do
# not answer; it restated the question or gave no answer of the asked kind (no time for a
# "when"); a command it gave stands in no passage; its facts stand in no passage; the passages it
# cites are about something else; its yes or no is not what they say.
Abstention = Literal[
    "nothing_readable",
    "not_about_it",
    "unsure",
    "repetition",
    "model_unknown",
    "no_answer",
    "command_not_in_sources",
    "not_in_sources",
    "off_topic",
    "yes_no_not_in_sources",
]


@dataclass
class Answer:
    """What `ask` returns: the generated text and the sources behind it."""

    question: str
    text: str
    used_search: bool
    search_query: str | None
    model: str
    sources: list[Hit] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    # The documents did not support an answer: text says so, nothing is cited.
    abstained: bool = False
    # Which check abstained (None where the answer stands).
    abstention: Abstention | None = None
    # Every fact of the answer stands in the passages it cites (False: flagged to the reader).
    grounded: bool = True
    usage: Usage = field(default_factory=Usage)
    # The search query in the documents' other language, where its passages were answered
    # from (translation.py).
    translated_query: str | None = None
