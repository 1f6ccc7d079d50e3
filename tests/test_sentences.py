"""Sentences: one cut for what the model is shown (excerpts) and what a citation quotes."""

from __future__ import annotations

import pytest

from enclave.pipeline import grounding
from enclave.pipeline.entities import Hit
from enclave.pipeline.sentences import sentence_spans, sentences


def hit(text: str) -> Hit:
    return Hit(1, 1, "Doc", "/doc.md", 0, text, None, (), 0, len(text))


def test_a_german_ordinal_does_not_end_a_sentence_an_english_number_does() -> None:
    german = "Die Versammlung ist am 12.\nMärz in der 2. Klasse. Danach gibt es Kuchen."
    assert sentences(german, "de") == [
        "Die Versammlung ist am 12. März in der 2. Klasse.",
        "Danach gibt es Kuchen.",
    ]
    english = "He played in a Super Bowl at age 39. The past record was held by John Elway."
    assert sentences(english, "en") == [
        "He played in a Super Bowl at age 39.",
        "The past record was held by John Elway.",
    ]


def test_headings_and_list_items_are_sentences_of_their_own() -> None:
    text = "# Travel\n## Hotels\nUp to 120 euros a night\nare refunded.\n- Trains: second class\n"
    found = sentence_spans(text, "en")
    assert [text[start:end] for start, end in found] == [
        "# Travel",
        "## Hotels",
        "Up to 120 euros a night\nare refunded.",
        "- Trains: second class",
    ]
    assert sentences(text, "en")[2] == "Up to 120 euros a night are refunded."


@pytest.mark.parametrize(
    ("text", "answer", "quoted"),
    [
        (
            "Exports run nightly. Audit log entries are kept for 400 days. Ask an admin.",
            "Entries are kept for 400 days.",
            "Audit log entries are kept for 400 days.",
        ),
        # A German date's day does not end the sentence it stands in.
        (
            "Liebe Kollegen,\n\ndie Versammlung findet am 12. März 2027 um 14 Uhr statt. Bis bald.",
            "12. März 2027",
            "die Versammlung findet am 12. März 2027 um 14 Uhr statt.",
        ),
        # The heading above a sentence is not part of it.
        (
            "## Übernachtung\nHotelkosten werden bis zu 120 Euro pro Nacht erstattet.",
            "120 Euro",
            "Hotelkosten werden bis zu 120 Euro pro Nacht erstattet.",
        ),
    ],
)
def test_a_quote_is_the_supporting_sentence_with_its_offsets(
    text: str, answer: str, quoted: str
) -> None:
    found = grounding.quote(answer, hit(text))
    assert found is not None and found.text == quoted
    assert text[found.start : found.end] == found.text
