"""A word in another form (pipeline/wordforms.py) and how the answer checks use it."""

from __future__ import annotations

import pytest

from enclave.pipeline import grounding, polar
from enclave.pipeline.entities import Citation, Hit, Quote
from enclave.pipeline.wordforms import other_form, up_to_an_ending


@pytest.mark.parametrize(
    ("word", "other", "same"),
    [
        ("team", "teams", True),
        ("fast", "faster", True),
        ("faster", "fast", True),
        ("ship", "shipped", True),  # a doubled last consonant
        ("moving", "move", True),  # a dropped final e
        ("make", "makes", True),
        ("more", "morning", False),  # "rning" is no ending
        ("diese", "dieser", False),  # an e dropped only before "ing", "ed"
        ("tag", "tage", False),  # too short to be a stem here ("car"/"care")
        ("form", "format", False),  # "at" is no ending
        ("sign", "signal", False),
        ("verschlusselung", "festplattenverschlusselung", True),  # a compound's head
        ("festplattenverschlusselung", "verschlusselung", False),  # not the other way round
        ("platten", "festplattenverschlusselung", False),  # a part, not the head
        ("team", "team", False),  # the same form: the key already finds it
        ("warnt", "warnung", True),  # a German verb and its noun in -ung
        ("warnung", "warnt", True),
        ("verschlusseln", "verschlusselung", True),
        ("hunt", "hung", False),  # no stem of four letters left
        ("young", "you", False),
        ("use", "uses", True),  # a three-letter word's plural or third person
        ("uses", "use", True),
        ("car", "cars", True),
        ("car", "cared", False),  # no other ending of a three-letter stem
        ("use", "user", False),
    ],
)
def test_other_forms_of_a_word(word: str, other: str, same: bool) -> None:
    assert other_form(word, other) is same


@pytest.mark.parametrize(
    ("word", "other", "same"),
    [
        ("dog", "dogs", True),  # a short stem counts here, unlike in other_form
        ("dog", "dog", True),
        ("apotheke", "apotheken", True),
        ("apotheke", "apothekengesetzgebung", False),  # a compound is more than its first part
        ("dogs", "cats", False),
    ],
)
def test_a_question_repeated_is_judged_up_to_an_ending(word: str, other: str, same: bool) -> None:
    assert up_to_an_ending(word, other) is same


def test_a_questions_words_are_not_found_as_a_compounds_head() -> None:
    assert other_form("galerie", "nationalgalerie")
    assert not other_form("galerie", "nationalgalerie", heads=False)
    assert other_form("teams", "team", heads=False)


def hit(title: str, text: str, headings: tuple[str, ...] = ()) -> Hit:
    return Hit(1, 1, title, "/doc.md", 0, text, None, headings, 0, len(text), language="en")


def test_an_answer_about_what_got_faster_stands_in_a_sentence_saying_fast() -> None:
    # The default model's right answer was withdrawn: "got faster" was no word of the
    # sentence "Dashboards load about twice as fast ...", which the six-letter key misses.
    notes = hit(
        "Lumen 4.2 Release Notes",
        "- Dashboards load about twice as fast for time ranges longer than a week.",
        ("Improvements",),
    )
    answer, asked = "Dashboards load about twice as fast", ["What got faster in Lumen 4.2?"]
    assert grounding.quote_about(asked, notes, answer)
    assert grounding.question_share(asked, notes, answer) == 0.5  # "faster" of "got faster"
    assert not grounding.quote_about(["What got cheaper in Lumen 4.2?"], notes, answer)


def test_a_yes_stands_in_a_sentence_naming_a_compound_of_the_questions_word() -> None:
    notes = Hit(
        1,
        1,
        "Besprechungsnotizen Geschäftsleitung, November 2026",
        "/notes.md",
        0,
        "Alle Laptops erhalten bis Jahresende eine Festplattenverschlüsselung.",
        None,
        ("IT-Sicherheit",),
        0,
        70,
        language="de",
    )
    question = "Bekommen die Laptops eine Verschlüsselung?"
    said = polar.claim(question, "Ja [1]")
    assert grounding.support(said.text, [notes]).grounded
    cited = [Citation(1, notes, False, Quote(notes.text, 0, len(notes.text)))]
    assert polar.holds(said, question, cited)
    # Still only what the passage says: no other word's head.
    other = polar.claim("Bekommen die Laptops eine Dockingstation?", "Ja [1]")
    assert not grounding.support(other.text, [notes]).grounded
