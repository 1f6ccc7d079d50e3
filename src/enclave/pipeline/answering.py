"""Question -> access-filtered retrieval -> prompt -> streamed generation -> checks -> citations."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import TypedDict, Unpack

from enclave.pipeline import expected, grounding, polar
from enclave.pipeline.citing import (
    another_year,
    citations,
    count_beside,
    marked,
    number_elsewhere,
    off_topic,
)
from enclave.pipeline.embedding import ALL_SOURCES
from enclave.pipeline.entities import Abstention, Answer, Hit, Usage
from enclave.pipeline.followups import Turn, asked_as, standalone_query
from enclave.pipeline.language import language_of
from enclave.pipeline.llm import LLM
from enclave.pipeline.prompting import (
    EXAMPLES_CHARS,
    Prompt,
    build_prompt,
    build_prompt_without_sources,
    from_the_examples,
)
from enclave.pipeline.repetition import RepetitionGuard, before_loop
from enclave.pipeline.retrieval import Retriever
from enclave.pipeline.store import Viewer
from enclave.pipeline.translation import translated
from enclave.pipeline.verbatim import verbatim

# Characters per token is about 4 in English text; keep a margin for German compounds.
_CHARS_PER_TOKEN = 3


def near_the_best(sources: Sequence[Hit], margin: float) -> list[Hit]:
    """The sources whose similarity is at most margin below the best of those in their
    language (a passage in another language scores lower for the same relevance), in order.
    The first stays, which the search ranked best by meaning and keywords together ("Who
    manages data sources in Lumen?": "Administrators manage users, data sources, ...", 0.043
    below the handbook's introduction, whose "Nordlicht Systems GmbH" the model gave alone);
    so does a source found by keywords alone: the embedding model did not rank it; and all
    where a cross-encoder reranked them (its order is the better judge)."""
    if any(hit.rerank_score is not None for hit in sources):
        return list(sources)
    languages = [grounding.language_of_hit(hit) for hit in sources]
    best: dict[str, float] = {}
    for hit, language in zip(sources, languages, strict=True):
        if hit.similarity is not None:
            best[language] = max(best.get(language, hit.similarity), hit.similarity)
    return [
        hit
        for n, (hit, language) in enumerate(zip(sources, languages, strict=True))
        if n == 0 or hit.similarity is None or hit.similarity >= best[language] - margin
    ]


def citable(sources: Sequence[Hit], asked: Sequence[str], threshold: float) -> list[Hit]:
    """The sources an answer may stand on, in order: a passage in another language than the
    question (its search string, its translation) only where it reaches the threshold for such
    passages. No word check judges an answer across languages, and a passage below it is not
    about the question ("When are alert e-mails sent?" got "jedem Team [5]", from "Die IT
    meldet sich bei jedem Team mit einem Termin.", 0.786); shown to the model, it only leads
    it astray ("Wer genehmigt meinen Urlaub?" got the English remote-work policy's "HR")."""
    languages = {language_of(text) for text in asked}
    return [
        hit
        for hit in sources
        if hit.similarity is None
        or hit.similarity >= threshold
        or grounding.language_of_hit(hit) in languages
    ]


@dataclass(frozen=True)
class _Draft:
    """What the model wrote; looped: stopped at a loop; unsure: stopped before its first token
    (LLM.stream); shown: streamed to the caller (not all of it held back)."""

    text: str
    looped: bool = False
    unsure: bool = False
    shown: bool = False


class AskOptions(TypedDict, total=False):
    """How to answer: search string (default: the question, made standalone if it follows up
    on history), number of sources, search on, earlier (question, answer) turns."""

    search: str | None
    k: int
    use_search: bool
    history: Sequence[Turn]


class Assistant:
    """Answers questions for a user from the documents that user may read."""

    def __init__(
        self,
        retriever: Retriever,
        llm: LLM,
        context_tokens: int,
        max_answer_tokens: int,
        min_similarity: float = 0.0,
        min_similarity_across: float | None = None,
        source_margin: float = ALL_SOURCES,
        sure_similarity: float = 0.0,
        hold_chars: int = 0,
        translate: bool = False,
    ):
        self.retriever = retriever
        self.llm = llm
        self.max_answer_tokens = max_answer_tokens
        # The second for passages in another language than the search query (default: the same).
        self.min_similarity = min_similarity
        self.min_similarity_across = (
            min_similarity if min_similarity_across is None else min_similarity_across
        )
        self.source_margin = source_margin
        # Below it a cited passage needs the question's words around the answer's sentence.
        self.sure_similarity = sure_similarity
        # An answer up to this long is shown only once checked (0: streamed as generated).
        self.hold_chars = hold_chars
        # Where no passage is surely about a question, search again with its translation.
        self.translate = translate
        # What is left of the context window for sources after instruction, worked examples,
        # question and answer.
        self.max_source_chars = max(
            1000, (context_tokens - max_answer_tokens - 300) * _CHARS_PER_TOKEN - EXAMPLES_CHARS
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
        history: Sequence[Turn] = (),
    ) -> AnswerStream:
        """The answer's tokens as generated; the whole Answer is on .answer after the last."""
        answer = Answer(question, "", use_search, None, self.llm.name)
        return AnswerStream(self._generate(answer, viewer, search, k, history), answer)

    def _generate(
        self,
        answer: Answer,
        viewer: Viewer,
        search: str | None,
        k: int,
        history: Sequence[Turn],
    ) -> Generator[str, None, Answer]:
        question, use_search = answer.question, answer.used_search
        if not use_search:
            prompt = build_prompt_without_sources(question)
            answer.text = (yield from self._complete(prompt, answer.usage, hold=0)).text
            return answer
        answer.search_query = search or standalone_query(question, history, self.llm, answer.usage)
        sources = self._search(viewer, answer, k)
        if not sources or not self._about_it(
            answer.translated_query or answer.search_query, sources
        ):
            # Nothing the user may read is about the question: the model is not asked to answer
            # (a small model answers anyway, from whatever it is shown).
            reason: Abstention = "not_about_it" if sources else "nothing_readable"
            return (yield from self._abstain(answer, reason, withdrawn=False))
        # Passages found for the question's translation are in the language it was searched in.
        searched = [q for q in (question, answer.search_query, answer.translated_query) if q]
        sources = near_the_best(
            citable(sources, searched, self.min_similarity_across), self.source_margin
        )
        # A caller's own search string is no question to answer; a follow-up's rewrite is.
        asking = question if search else asked_as(question, answer.search_query)
        # A long question leaves less room for sources in the same window.
        prompt = build_prompt(asking, sources, max(1000, self.max_source_chars - len(asking)))
        answer.sources = sources[: prompt.source_count]
        draft = yield from self._complete(prompt, answer.usage, self.hold_chars)
        return (yield from self._settle(answer, draft))

    def _search(self, viewer: Viewer, answer: Answer, k: int) -> list[Hit]:
        """The passages found for the search query; where none is surely about it, those
        found for its translation instead if one of them is (translation.py;
        answer.translated_query says so)."""
        query = answer.search_query or answer.question
        sources = self.retriever.search(viewer, query, k)
        # Nothing readable at all: nothing to search for in another language either.
        if not sources or not self.translate or _best(sources) >= self.sure_similarity:
            return sources
        other = translated(query, self.llm, answer.usage)
        found = self.retriever.search(viewer, other, k) if other else []
        # Only a passage surely about the translation: across languages the word checks do not
        # judge, and a weak match found so answered alice's "How many days a week can I work
        # from home?" (she may not read the policy) with the canteen's "jeden Tag".
        if _best(found) < self.sure_similarity:
            return sources
        answer.translated_query = other
        return found

    def _settle(self, answer: Answer, draft: _Draft) -> Generator[str, None, Answer]:
        """The draft checked against the passages shown: the answer, or an abstention. A draft
        still held back is shown only once it stands; one already shown is withdrawn."""
        question, shown = answer.question, draft.shown
        if draft.unsure:
            # The model's first token was one it gave too little probability: nothing was
            # streamed, and such answers were mostly wrong (benchmarks/answers.md).
            return (yield from self._abstain(answer, "unsure", withdrawn=False))
        answer.text = draft.text
        if draft.looped:
            # Keep what came before the loop if it stands on its own and in the sources.
            answer.text = before_loop(answer.text)
            if not answer.text:
                return (yield from self._abstain(answer, "repetition", withdrawn=shown))
        written, answer.text = answer.text, grounding.without_echoes(answer.text, answer.sources)
        if grounding.says_unknown(answer.text):
            # Withdrawn where something was shown: a loop, or a source's heading echoed.
            withdrawn = shown and (draft.looped or answer.text != written)
            if shown and not withdrawn:
                yield "\n\n"  # the model's own "I do not know." stays, apart from what follows
            return (yield from self._abstain(answer, "model_unknown", withdrawn=withdrawn))
        if grounding.restates(question, answer.text) or not expected.fits(question, answer.text):
            # The question turned into a statement, or no time for a "when", is no answer,
            # grounded or not.
            return (yield from self._abstain(answer, "no_answer", withdrawn=shown))
        mended = verbatim(answer.text, answer.sources, question)
        if mended is None or (shown and mended != answer.text):
            # Its command stands in no passage, or is not the one given for the action asked
            # (a held one gets the passage's own instead).
            return (yield from self._abstain(answer, "command_not_in_sources", withdrawn=shown))
        answer.text = mended
        # A yes or no is checked as the statement it makes of its question (as translated).
        stated = answer.translated_query or question
        said = polar.claim(stated, answer.text)
        support = grounding.support(said.text, answer.sources)
        if not support.grounded or from_the_examples(support.missing):
            # What the model wrote does not stand in any passage it was shown.
            return (yield from self._abstain(answer, "not_in_sources", withdrawn=shown))
        asked = (question, answer.search_query)
        answer.citations = citations(said.text, answer.sources, asked)
        if self._cites_something_else(answer, said, stated):
            return (yield from self._abstain(answer, "off_topic", withdrawn=shown))
        if not polar.holds(said, stated, answer.citations):
            # A yes its cited sentence denies is answered no, while it is still held back.
            denial = None if shown else polar.denied(stated, answer.text, answer.citations)
            if denial is None:
                return (yield from self._abstain(answer, "yes_no_not_in_sources", withdrawn=shown))
            answer.text, said = denial, polar.claim(stated, denial)
        explicit = [c.hit for c in answer.citations if not c.inferred]
        answer.grounded = not explicit or grounding.support(said.text, explicit).grounded
        if not shown:
            answer.text = polar.in_language(question, answer.text)
            if answer.citations and answer.citations[0].inferred:
                # Not shown yet: its mark can name the passage matched to it, not the model's.
                answer.text = marked(answer.text, answer.citations[0].number)
            yield answer.text
        if draft.looped:
            # Said only of an answer that stands: a withdrawn one gets the withdrawal alone.
            yield f"\n\n({grounding.cut_short(question)})"
        return answer

    def _cites_something_else(self, answer: Answer, said: polar.Claim, stated: str) -> bool:
        """Whether the passages the answer cites are about something else than the question
        (citing.py): off its subject; or (not judged for a yes or no: polar.py does) beside a
        passage, or a sentence, that says more of it, or about another year than asked."""
        asked = (answer.question, answer.search_query)
        translations = self._in_their_language(answer)
        return off_topic(
            said.text, answer.citations, asked, self.sure_similarity, translations
        ) or (
            said.polarity is None
            and (
                number_elsewhere(stated, answer.citations, answer.sources)
                or another_year(stated, answer.citations)
                or count_beside(stated, said.text, answer.citations)
            )
        )

    def _in_their_language(self, answer: Answer) -> tuple[str, ...]:
        """The question (as searched: a follow-up made standalone) translated into the language
        of the passages the answer cites, where it cites only passages in another language than
        it was asked and searched in: the word checks judge a passage by the questions in its
        language, and find none otherwise."""
        asked = {language_of(q) for q in (answer.question, answer.search_query) if q}
        cited = {grounding.language_of_hit(c.hit) for c in answer.citations}
        if not cited or cited & asked or answer.translated_query:
            return ()
        other = translated(answer.search_query or answer.question, self.llm, answer.usage)
        return (other,) if other else ()

    def _about_it(self, query: str, sources: Sequence[Hit]) -> bool:
        """Whether a source reaches the embedding model's threshold for a passage in its
        language: in the search query's language, or in another."""
        asked = language_of(query)

        def threshold(hit: Hit) -> float:
            same = grounding.language_of_hit(hit) == asked
            return self.min_similarity if same else self.min_similarity_across

        scored = [hit for hit in sources if hit.similarity is not None]
        return not scored or any(hit.similarity >= threshold(hit) for hit in scored)  # type: ignore[operator]

    def _complete(self, prompt: Prompt, usage: Usage, hold: int) -> Generator[str, None, _Draft]:
        """Stream the model's tokens; stop at the first sign of a loop. Nothing is streamed
        until the text grows past hold characters: a draft that short is shown, if at all, once
        it is checked."""
        guard = RepetitionGuard()
        # Trailing space is held back until text follows it: a model that ends its answer
        # with blank lines would leave them between the answer and what the caller adds.
        held, shown = "", False
        with closing(self.llm.stream(prompt, self.max_answer_tokens, usage)) as tokens:
            while True:
                try:
                    piece = next(tokens)
                except StopIteration as end:
                    return _Draft(guard.text.strip(), unsure=bool(end.value), shown=shown)
                held += piece
                if shown or len(held) > hold:
                    visible = held.rstrip()
                    held = held[len(visible) :]
                    if visible:
                        shown = True
                        yield visible
                if guard.degenerate(piece):
                    return _Draft(guard.text.strip(), looped=True, shown=shown)

    def _abstain(
        self, answer: Answer, reason: Abstention, withdrawn: bool
    ) -> Generator[str, None, Answer]:
        """Say plainly that the documents do not answer this; cite nothing.

        reason: which check decided it (Answer.abstention); withdrawn: the model's text was
        already streamed and is taken back.
        """
        text = grounding.abstention(answer.question)
        yield f"\n\n({grounding.withdrawal(answer.question)}) {text}" if withdrawn else text
        answer.text, answer.abstained, answer.citations = text, True, []
        answer.abstention = reason
        return answer


def _best(hits: Sequence[Hit]) -> float:
    """The highest similarity among hits (0 where none has one)."""
    return max((hit.similarity or 0.0 for hit in hits), default=0.0)


class AnswerStream:
    """Iterate for the answer's tokens; afterwards .answer holds the whole Answer.

    One object for every caller (CLI, native API, OpenAI API), so none of them has to
    unpack a generator's return value itself.
    """

    def __init__(self, tokens: Generator[str, None, Answer], partial: Answer):
        self._tokens = tokens
        self.answer: Answer | None = None
        # Filled in as generation goes: the sources given to the model are known before the
        # first token, so a stream abandoned half-way can still be accounted for.
        self.partial = partial

    def __iter__(self) -> Iterator[str]:
        self.answer = yield from self._tokens

    def close(self) -> None:
        """Stop generating (the model is released at once)."""
        self._tokens.close()
