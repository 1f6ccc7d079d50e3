"""Question -> access-filtered retrieval -> prompt -> streamed generation -> citations."""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import TypedDict, Unpack

from enclave.pipeline.entities import Answer, Citation, Hit
from enclave.pipeline.llm import LLM
from enclave.pipeline.prompting import build_prompt, build_prompt_without_sources
from enclave.pipeline.retrieval import Retriever
from enclave.pipeline.store import Viewer

_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
# Characters per token is about 4 in English text; keep a margin for German compounds.
_CHARS_PER_TOKEN = 3


def citations(text: str, sources: Sequence[Hit]) -> list[Citation]:
    """The sources an answer cites as [n] or [n, m], in order of first citation.

    Small models often answer correctly but cite nothing. Then the answer is attributed to the
    source sharing most of its words and numbers (at least two), marked as inferred.
    """
    seen: dict[int, Citation] = {}
    for match in _CITATION.finditer(text):
        for number in (int(n) for n in match.group(1).split(",")):
            if 1 <= number <= len(sources) and number not in seen:
                seen[number] = Citation(number, sources[number - 1])
    if seen or not sources:
        return list(seen.values())
    answer_terms = _terms(text)
    overlaps = [len(answer_terms & _terms(hit.text)) for hit in sources]
    best = max(range(len(sources)), key=lambda i: (overlaps[i], -i))
    if overlaps[best] < 2:
        return []
    return [Citation(best + 1, sources[best], inferred=True)]


_TERM = re.compile(r"\w{3,}|\d+")
_STOPWORDS = frozenset(
    (
        "the and for are was were that this with from not you your have has can will "
        "der die das und ist sind mit von für den dem des ein eine einer nicht auch werden wird"
    ).split()
)


def _terms(text: str) -> set[str]:
    return {t for t in _TERM.findall(text.lower()) if t not in _STOPWORDS}


class AskOptions(TypedDict, total=False):
    """How to answer: search string (default: the question), number of sources, search on."""

    search: str | None
    k: int
    use_search: bool


class Assistant:
    """Answers questions for a user from the documents that user may read."""

    def __init__(self, retriever: Retriever, llm: LLM, context_tokens: int, max_answer_tokens: int):
        self.retriever = retriever
        self.llm = llm
        self.max_answer_tokens = max_answer_tokens
        # What is left of the context window for sources after instruction, question, answer.
        self.max_source_chars = max(
            1000, (context_tokens - max_answer_tokens - 300) * _CHARS_PER_TOKEN
        )

    def ask(
        self,
        viewer: Viewer,
        question: str,
        *,
        on_token: Callable[[str], None] | None = None,
        **options: Unpack[AskOptions],
    ) -> Answer:
        """Answer question; search (default: the question) selects the sources to show."""
        stream = self.stream(viewer, question, **options)
        for piece in stream:
            if on_token:
                on_token(piece)
        assert stream.answer is not None
        return stream.answer

    def stream(
        self,
        viewer: Viewer,
        question: str,
        *,
        search: str | None = None,
        k: int = 5,
        use_search: bool = True,
    ) -> AnswerStream:
        """The answer's tokens as generated; the whole Answer is on .answer after the last."""
        return AnswerStream(self._generate(viewer, question, search, k, use_search))

    def _generate(
        self, viewer: Viewer, question: str, search: str | None, k: int, use_search: bool
    ) -> Generator[str, None, Answer]:
        sources: list[Hit] = []
        query = None
        if use_search:
            query = search or question
            sources = self.retriever.search(viewer, query, k)
            prompt = build_prompt(question, sources, self.max_source_chars)
            sources = sources[: prompt.source_count]
        else:
            prompt = build_prompt_without_sources(question)
        pieces = []
        for piece in self.llm.stream(prompt, self.max_answer_tokens):
            pieces.append(piece)
            yield piece
        text = "".join(pieces).strip()
        return Answer(
            question=question,
            text=text,
            used_search=use_search,
            search_query=query,
            model=self.llm.name,
            sources=sources,
            citations=citations(text, sources),
        )


class AnswerStream:
    """Iterate for the answer's tokens; afterwards .answer holds the whole Answer.

    One object for every caller (CLI, native API, OpenAI API), so none of them has to
    unpack a generator's return value itself.
    """

    def __init__(self, tokens: Generator[str, None, Answer]):
        self._tokens = tokens
        self.answer: Answer | None = None

    def __iter__(self) -> Iterator[str]:
        self.answer = yield from self._tokens

    def close(self) -> None:
        """Stop generating (the model is released at once)."""
        self._tokens.close()
