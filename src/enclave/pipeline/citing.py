"""Which passages an answer cites, and whether they are about what was asked.

A small model cites nothing, or a neighbour of the passage that holds its answer: citations()
finds the passage that does. A grounded answer can still come from a passage, or a sentence,
about something else than the question: off_topic(), number_elsewhere(), another_year() and
count_beside() say so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from enclave.pipeline import grounding
from enclave.pipeline.entities import Citation, Hit
from enclave.pipeline.sentences import sentences

_MARK_AFTER_SPACE = re.compile(rf"\s*{grounding.CITATION_MARK.pattern}")
# A year: four digits from 1000 to 2099 standing alone ("2025", "1980ern"; not "18.000").
_YEAR = re.compile(r"(?<![\d.,])(1\d{3}|20\d{2})(?!\d|[.,]\d)")


def citations(text: str, sources: Sequence[Hit], asked: Sequence[str] = ()) -> list[Citation]:
    """The sources an answer cites as [n] or [n, m], in order of first citation.

    Small models often answer correctly but cite nothing, or cite a neighbour of the source
    that holds the answer. Then the answer is attributed to the source that alone holds its
    facts and is about one of the questions asked (the question, its search string), or else
    to the source sharing most of its words and numbers (at least two); such a citation is
    marked as inferred. Each citation carries the sentence of its source that shares most
    with the answer.
    """
    cited: dict[int, Hit] = {}
    for match in grounding.CITATION_MARK.finditer(text):
        for number in (int(n) for n in match.group(1).split(",")):
            if 1 <= number <= len(sources):
                cited.setdefault(number, sources[number - 1])
    explicit = [
        Citation(n, hit, quote=grounding.quote(text, hit, asked)) for n, hit in cited.items()
    ]
    if explicit and _holds(text, list(cited.values()), asked):
        return explicit
    answer_terms = grounding.terms(text)
    overlaps = [len(answer_terms & grounding.terms(hit.text)) for hit in sources]
    # Most shared words first, the better ranked source among equals.
    ranked = sorted(range(len(sources)), key=lambda i: (-overlaps[i], i))
    holder = next((i for i in ranked if _holds(text, [sources[i]], asked)), None)
    if holder is None and explicit:
        # Nothing holds the answer better than what the model cited: the caller judges it.
        return explicit
    if holder is None and (not ranked or overlaps[ranked[0]] < 2):
        return []
    best = ranked[0] if holder is None else holder
    hit = sources[best]
    return [Citation(best + 1, hit, inferred=True, quote=grounding.quote(text, hit, asked))]


def _holds(text: str, hits: Sequence[Hit], asked: Sequence[str]) -> bool:
    """Whether the answer's facts stand in these passages and one of them is about a question."""
    if not grounding.support(text, hits).grounded:
        return False
    return not asked or any(grounding.about(asked, hit) for hit in hits)


def marked(text: str, number: int) -> str:
    """The answer with its citation marks, if any, replaced by one mark of source number."""
    return f"{_MARK_AFTER_SPACE.sub('', text).rstrip()} [{number}]"


def off_topic(
    text: str,
    citations: Sequence[Citation],
    asked: Sequence[str],
    sure_similarity: float,
    translations: Sequence[str] = (),
) -> bool:
    """Whether the answer (text), grounded in its cited passages, comes from something else
    than what was asked: passages about another subject, or in them, sentences about another
    fact; where the retriever matched no cited passage surely, sentences among too few of the
    question's words. A question's translations (into the passages' language) judge subject
    and sentence only: how many of its words stand near the answer was measured on questions
    asked in the passage's language, and a translation words them otherwise."""
    cited = [c.hit for c in citations]
    if not cited:
        return False
    judged = (*asked, *translations)
    if not any(grounding.about(judged, hit) for hit in cited):
        return True
    if not any(grounding.quote_about(judged, hit, text) for hit in cited):
        return True
    return not any(
        hit.similarity is None
        or hit.similarity >= sure_similarity
        or grounding.question_share(asked, hit, text) >= grounding.MIN_SHARE_NEAR_ANSWER
        for hit in cited
    )


def number_elsewhere(question: str, citations: Sequence[Citation], shown: Sequence[Hit]) -> bool:
    """Whether another passage shown says more of the question than the cited ones: a number
    it names ("Lumen 4.2", "in 2001") that none of them holds, and a word of it they lack.
    Asked "What was fixed for backups in Lumen 4.2?", the default model answered with the
    handbook's "Run `lumenctl backup --target /srv/backup` every night [1]", beside the 4.2
    release notes' "Fixed problems: Backups no longer fail when ...". (This lets its "16 GB"
    to "How much memory does Lumen 4.2 need?" pass: no release note says anything of memory.)"""
    named = grounding.numbers(question)
    if not named or not citations:
        return False
    cited = [grounding.as_shown(c.hit) for c in citations]
    missing = named - set().union(*map(grounding.numbers, cited))
    unsaid = grounding.terms(question) - named - set().union(*map(grounding.terms, cited))
    cited_at = {c.number for c in citations}
    return any(
        missing & grounding.numbers(text) and unsaid & grounding.terms(text)
        for text in (grounding.as_shown(hit) for n, hit in enumerate(shown, 1) if n not in cited_at)
    )


def another_year(question: str, citations: Sequence[Citation]) -> bool:
    """Whether the answer's sentence speaks of another year than the one asked about: the
    question names a year that no cited passage states, and a cited sentence (its quote)
    names another. Asked "Wie hoch war der Umsatz 2025?", the default model answered "62
    Millionen Euro [1]" from "Das Umsatzziel für 2027 liegt bei 62 Millionen Euro" (the
    held-out firm corpus, benchmarks/firm_questions.py)."""
    asked = set(_YEAR.findall(question))
    if not asked or not citations:
        return False
    stated = set().union(*(_YEAR.findall(grounding.as_shown(c.hit)) for c in citations))
    return not asked & stated and any(
        c.quote is not None and set(_YEAR.findall(c.quote.text)) - asked for c in citations
    )


def count_beside(question: str, answer: str, citations: Sequence[Citation]) -> bool:
    """Whether another sentence of a cited passage than the answer's own (its quote) holds
    more of the question's words and counts what the answer counts with another number. Asked
    "Wie viel darf ein Hotelzimmer in München pro Nacht kosten?", the default model answered
    "120 Euro [1]" from "Hotelkosten werden bis 120 Euro pro Nacht erstattet.", beside "In
    München, Hamburg und Frankfurt am Main gilt eine Obergrenze von 150 Euro pro Nacht." (the
    held-out firm corpus, benchmarks/firm_questions.py)."""
    counted = grounding.counts(answer)
    if not counted:
        return False
    wanted = grounding.terms(question)
    units = {unit for _, unit in counted}
    for citation in citations:
        if citation.quote is None:
            continue
        own = len(wanted & grounding.terms(citation.quote.text))
        for sentence in sentences(citation.hit.text, grounding.language_of_hit(citation.hit)):
            if len(wanted & grounding.terms(sentence)) > own and any(
                unit in units and (n, unit) not in counted for n, unit in grounding.counts(sentence)
            ):
                return True
    return False
