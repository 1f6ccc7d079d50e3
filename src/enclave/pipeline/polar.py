"""Yes-or-no answers: "Yes [1]" to "Can I download the audit log as a CSV file?".

A bare yes or no names none of its passage's words, so grounding's word checks withdrew every
such answer, right or wrong. What a yes asserts is the question as a statement, a no its
denial: that claim is checked against the sources instead. Its words must stand in them (for a
yes, every number it names too: "five days a week" is no yes where the policy says three), and
in the cited sentence that says most of it, which must not deny it (a yes) or must (a no:
"cannot", "nicht", "only"), and that sentence must say more of the question than its subject.
A yes must also be said of what the question asks about (its first word after the verb:
"operators" in "Can operators manage users?"), and a question whether something always holds
is answered no where the passage names an exception ("es sei denn"). A question in another
language than its passage is not judged word by word elsewhere, but a yes or no has nothing
else to stand on: it is withdrawn. A bare yes that the cited sentence denies, in the clause
that names what was asked, is answered with that no instead of nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from enclave.pipeline import grounding
from enclave.pipeline.entities import Citation
from enclave.pipeline.language import language_of

_POLAR = re.compile(r"^\s*(yes|no|ja|nein)\b[\s,.;:!]*", re.IGNORECASE)
_YES = frozenset({"yes", "ja"})
# Words that deny what a sentence says ("Administrators cannot shorten the retention").
_DENIAL = re.compile(
    r"\b(?:not|no|never|cannot|none|nobody|nicht|nie|niemals|kein\w*)\b|n't\b", re.IGNORECASE
)
# Words that restrict it, which answer a question about something beyond them with a no
# ("may only be opened on company devices").
_RESTRICTION = re.compile(
    r"\b(?:only|prohibited|forbidden|nur|verboten|untersagt)\b", re.IGNORECASE
)
# Pronouns that may stand between a yes-or-no question's verb and what it asks about (words
# shorter than three letters and articles are no terms anyway).
_PRONOUNS = frozenset(
    "you she they our his her one ich wir sie man mein meine meinen meinem meiner dein deine "
    "unser unsere ihr ihre".split()
)
_LETTERS = re.compile(r"[^\W\d_]{3,}")
# A question whether something always holds, and a passage naming an exception to it.
_ALWAYS = re.compile(
    r"\b(?:always|in\s+every\s+case|immer|in\s+jedem\s+fall|grundsätzlich)\b", re.I
)
_EXCEPTION = re.compile(
    r"\b(?:unless|except|exception\w*|es\s+sei\s+denn|außer|ausgenommen|ausnahme\w*)\b", re.I
)
# Where a sentence's clauses part: a denial in one says nothing of what another says.
_CLAUSE = re.compile(r"[;,:]|\s(?:but|whereas|while|aber|jedoch|sondern|während)\s", re.IGNORECASE)
# Share of the claim's words (beyond the passage's title) the cited sentence must hold.
MIN_CLAIM_SHARE = 0.5
# A yes and a no in each language an answer is given in.
_SAID = {"en": ("Yes", "No"), "de": ("Ja", "Nein")}


@dataclass(frozen=True)
class Claim:
    """What an answer asserts, as checked against the sources; polarity True for a yes, False
    for a no, None for any other answer (whose text is itself the claim)."""

    text: str
    polarity: bool | None = None


def claim(question: str, answer: str) -> Claim:
    """The claim of an answer: a yes or no (and what follows it, citations included) states
    the question; a no need not find the numbers asked about ("30 days") in its source."""
    match = _POLAR.match(answer)
    if not match:
        return Claim(answer)
    yes = match.group(1).lower() in _YES
    asked = question.strip().rstrip("?")
    if not yes:
        asked = " ".join(word for word in asked.split() if not grounding.numbers(word))
    return Claim(f"{asked} {answer[match.end() :]}".strip(), yes)


def holds(said: Claim, question: str, cited: Sequence[Citation]) -> bool:
    """Whether a cited sentence (its quote) says the yes or no: in the question's language, it
    holds most of the claim's words beyond its passage's title, and denies or restricts them
    for a no, denies nothing for a yes (and holds all of them where it restricts). Any other
    answer holds here."""
    if said.polarity is None:
        return True
    language, subject = language_of(question), _subject(question)
    for citation in cited:
        sentence = citation.quote.text if citation.quote else ""
        if not sentence or grounding.language_of_hit(citation.hit) != language:
            continue
        share, said_there, found = _share(said, sentence, citation)
        # A sentence that holds only the question's subject says nothing of what is asked of
        # it: "Administrators cannot shorten the retention" is no "no" to "Can administrators
        # change that?" or "... extend it?" (half of two words; the default model said "no").
        if share < MIN_CLAIM_SHARE or not said_there - subject:
            continue
        denies, restricts = bool(_DENIAL.search(sentence)), bool(_RESTRICTION.search(sentence))
        # "Always?" is answered no where the passage names an exception ("es sei denn").
        excepted = bool(_ALWAYS.search(question) and _EXCEPTION.search(citation.hit.text))
        # A yes must be said of what the question asks about: "Administrators manage users"
        # holds most of "Can operators manage users?" (the default model said "yes").
        named = subject <= found | grounding.terms(citation.hit.title)
        # A restriction affirms only what it names: "confidential documents may only be
        # opened on company devices" says no yes to opening them "on my own laptop", though
        # it holds most of that question's words (the default model said "yes").
        if said.polarity and named and not (denies or excepted) and (share == 1 or not restricts):
            return True
        if not said.polarity and (denies or restricts or excepted):
            return True
    return False


def _share(said: Claim, sentence: str, citation: Citation) -> tuple[float, set[str], set[str]]:
    """The share of the claim's words (beyond the passage's title) that a sentence holds, those
    words, and all the sentence's terms (the claim's other forms among them)."""
    wanted = grounding.terms(said.text) - grounding.terms(citation.hit.title)
    found = grounding.terms(sentence) | grounding.other_forms(said.text, sentence)
    said_there = wanted & found
    return (len(said_there) / len(wanted) if wanted else 0.0), said_there, found


def denied(question: str, answer: str, cited: Sequence[Citation]) -> str | None:
    """A bare yes that does not hold, as the no a cited sentence says ("Ja [1]" to "Ist
    Kurzarbeit geplant?" beside "Kurzarbeit ist nicht geplant." is "No [1]", said in the
    question's language by in_language), else None. The no must hold as any no does, and its
    denial or restriction stand in a clause that itself holds half of the question's words and
    names what it asks about: "LDAP is not supported" denies nothing of "Does Lumen support
    SSO?" in "Lumen supports SSO via SAML; LDAP is not supported", nor "Urlaub ist nicht
    geplant." of "Ist Kurzarbeit geplant?"."""
    match = _POLAR.match(answer)
    rest = answer[match.end(1) :] if match else ""
    # Only a bare yes turns: "Ja, als CSV [1]" says more than a no could keep.
    if not match or match.group(1).lower() not in _YES or _LETTERS.search(rest):
        return None
    said = claim(question, f"No{rest}")
    if not holds(said, question, cited):
        return None
    subject = _subject(question)
    for citation in cited:
        sentence = citation.quote.text if citation.quote else ""
        for clause in _CLAUSE.split(sentence):
            share, said_there, found = _share(said, clause, citation)
            if (
                share >= MIN_CLAIM_SHARE
                and said_there - subject
                and subject <= found | grounding.terms(citation.hit.title)
                and (_DENIAL.search(clause) or _RESTRICTION.search(clause))
            ):
                return f"No{rest}"
    return None


def _subject(question: str) -> set[str]:
    """What a yes-or-no question asks about, as a term: its first word after the verb that
    opens it, pronouns passed over ("operators" in "Can operators manage users?", "Laptops"
    in "Bekommen die Laptops eine Verschlüsselung?"); none where no such word follows."""
    for word in _LETTERS.findall(question)[1:]:
        if word.lower() not in _PRONOUNS and (key := grounding.terms(word)):
            return key
    return set()


def in_language(question: str, answer: str) -> str:
    """The answer with a leading yes or no in the question's language: the worked examples
    are partly German, and Qwen2.5-Coder-1.5B answers "Can I print personnel files at home?"
    with "nein [1]"."""
    match = _POLAR.match(answer)
    said = _SAID.get(language_of(question))
    if not match or said is None:
        return answer
    word = match.group(1)
    if word.lower() in {w.lower() for w in said}:
        return answer
    meant = said[0] if word.lower() in _YES else said[1]
    return f"{answer[: match.start(1)]}{meant}{answer[match.end(1) :]}"
