"""What kind of answer a question asks for, where its first words say so: a "when" a time,
a "how long" a length of time (or of something else).

A small model answers with whatever stands beside the question's words in a passage about it:
asked "When are alert e-mails sent?", the default model gave the release notes' "in UTC [2]"
("Alert e-mails no longer show times in UTC when the server runs in another time zone"),
grounded and about the question, but no time. Of XQuAD's questions that asks_when() takes for
"when" ones, the gold answer names a time for 109 of 112 English ones (not: "coercive",
"solidarity", "Cultural imperialism") and all 105 German ones: a number, a month or weekday,
a unit of time, or a word that places something in time ("nach dem Krieg", "als Deutschland
begann ...", "every night"). The check is lenient on purpose: a word that might say a time
lets the answer pass.

Asked "How long does a backup take?", which no document says, the default model answered the
handbook's "every night [1]". Of XQuAD's 15 "how long" questions (de, en) every gold answer
holds a number, a unit of time or a word that bounds a span ("1870 to 1939", "mehrere Jahre",
"until the second quarter of the 19th century", "bis weit ins 19. Jahrhundert hinein").
"""

from __future__ import annotations

import re
from collections.abc import Callable

from enclave.pipeline.grounding import CITATION_MARK
from enclave.pipeline.wordforms import BILINGUAL, NUMBER_WORDS

_WHEN = re.compile(
    r"^\W*(?:and\s+|und\s+)?(?:when|wann|seit wann|bis wann|ab wann|"
    r"in what year|what year|in which year|in welchem jahr)\b",
    re.IGNORECASE,
)
_UNITS = frozenset(
    "day week month year hour minute second january february march may june july october "
    "december monday tuesday wednesday thursday friday saturday sunday".split()
)
# Whole words that place something in time, in English and German.
_TIME_WORDS = frozenset(
    """
    when whenever wenn als after nach nachdem before vor bevor during während since seit until
    till bis once sobald ab now jetzt today heute yesterday gestern tomorrow morgen early früh
    late spät später later always immer never nie niemals daily täglich weekly wöchentlich
    monthly monatlich yearly annually jährlich nightly nächtlich every jede jeden jedem jeder
    jedes night nacht nachts morning vormittag evening abend abends noon mittag midnight
    mitternacht spring frühling frühjahr summer sommer autumn herbst fall winter season saison
    beginning anfang end ende middle mitte era ära epoch epoche ages zeit time times period
    periode zeitraum weekend holiday feiertag feiertage christmas weihnachten easter ostern
    soon bald recently kürzlich currently derzeit then damals dann next nächste nächsten last
    letzte letzten first erste ersten quarter quartal medieval mittelalter antiquity antike
    renaissance april august september november decade decades century centuries
    """.split()
)
_HOW_LONG = re.compile(r"^\W*(?:and\s+|und\s+)?(?:for\s+)?(?:how long|wie lange?)\b", re.IGNORECASE)
_SPAN_UNITS = frozenset("second minute hour day week month year".split())
# Words that give a length or bound a span, beyond numbers and units of time.
_SPAN_WORDS = frozenset(
    """
    until till bis since seit forever ewig always immer permanently dauerhaft lifetime
    lebenslang briefly kurz short long lange längere longer several mehrere many viele few
    wenige einige some decade decades century centuries jahrzehnt jahrzehnte jahrhundert
    jahrhunderte meter meters metre metres kilometer kilometers kilometre kilometres miles
    meilen
    """.split()
)
# German compounds of a unit of time ("Jahresende", "Folgejahres", "Wochenende", "Dienstag").
_TIME_STEMS = re.compile(r"jahr|monat|woche|tag|stunde|minute|uhr|jahrhundert|jahrzehnt")


def asks_when(question: str) -> bool:
    """Whether the question asks when (English or German)."""
    return bool(_WHEN.search(question))


def says_when(answer: str) -> bool:
    """Whether the answer names a time, or a word that may place something in time (its
    citation marks apart)."""
    return _names(
        answer,
        lambda word: (
            word in _TIME_WORDS or BILINGUAL.get(word) in _UNITS or bool(_TIME_STEMS.search(word))
        ),
    )


def says_how_long(answer: str) -> bool:
    """Whether the answer gives a length: a number, a unit of time, or a word that bounds a
    span (its citation marks apart)."""
    return _names(
        answer,
        lambda word: (
            word in NUMBER_WORDS
            or word in _SPAN_WORDS
            or BILINGUAL.get(word) in _SPAN_UNITS
            or bool(_TIME_STEMS.search(word))
        ),
    )


def _names(answer: str, wanted: Callable[[str], bool]) -> bool:
    """Whether the answer, its citation marks apart, holds a digit or a word (lower case)
    that is wanted."""
    answer = CITATION_MARK.sub(" ", answer)
    return bool(re.search(r"\d", answer)) or any(
        wanted(word) for word in re.findall(r"\w+", answer.lower())
    )


def fits(question: str, answer: str) -> bool:
    """Whether the answer is of the kind the question asks for ("when" and "how long" are
    judged)."""
    if asks_when(question):
        return says_when(answer)
    if _HOW_LONG.search(question):
        return says_how_long(answer)
    return True
