"""The grounding check's reading of numbers: what counts as the same fact."""

from __future__ import annotations

from dataclasses import replace

import pytest

from enclave.pipeline import grounding
from enclave.pipeline.entities import Hit

PASSAGE = "Die Kantine öffnet um 11 Uhr. Der Helpdesk ist ab 8:00 Uhr erreichbar."


def hit(text: str) -> Hit:
    return Hit(1, 1, "Doc", "/doc.md", 0, text, None, (), 0, len(text))


@pytest.mark.parametrize(
    ("answer", "grounded"),
    [
        ("11 Uhr", True),
        ("11:00 Uhr", True),  # a time on the hour is its hour
        ("Ab 8 Uhr.", True),
        ("ab 8:00", True),
        ("12:00 Uhr", False),
        ("11:30 Uhr", False),  # minutes the passage does not state
        ("9 Uhr", False),
    ],
)
def test_times_on_the_hour_are_their_hour(answer: str, grounded: bool) -> None:
    assert grounding.support(answer, [hit(PASSAGE)]).grounded is grounded


def test_an_answer_that_only_restates_the_question_is_none() -> None:
    question = "What is the name of the CEO's dog?"
    assert grounding.restates(question, "The dog is the CEO's dog.")
    assert grounding.restates("Was ist der einzige Teiler neben 1?", "1")
    assert not grounding.restates(question, "Bello [2]")
    assert not grounding.restates("How long are entries kept?", "400 days.")
    assert not grounding.restates("Is the audit log kept?", "Yes.")
    # Qwen2.5-Coder-1.5B, rightly: a choice is answered in the question's words.
    choice = "Is the focus on spiritual mentorship in Hinduism high or low?"
    assert not grounding.restates(choice, "High [1]")
    conflict = "Welches Recht hat Vorrang im Konflikt zwischen EU-Recht und nationalem Recht?"
    assert not grounding.restates(conflict, "EU-Recht [1]")
    # Words count whole, up to an ending: a compound is news, a plural is not.
    pharmacy = "Welchen Auflagen unterliegt die Apotheke in den meisten Ländern?"
    assert not grounding.restates(pharmacy, "die Apothekengesetzgebung [1]")
    assert grounding.restates(pharmacy, "den Apotheken [1]")
    assert grounding.restates("Was bedeutet „Plastid“?", "Plastid [1]")


ENGLISH = "The audit log keeps entries for 400 days. The next export runs on Monday, 1 December."


@pytest.mark.parametrize(
    ("answer", "grounded"),
    [
        ("400 Tage.", True),  # a German answer over an English document
        ("Die Einträge bleiben 400 Tage.", True),
        ("Am Montag, 1. Dezember.", True),
        ("30 Tage.", False),  # the number must still stand there
        ("400 Wochen.", False),  # and count what the passage counts
        ("Am Dienstag.", False),
        ("400 day", True),  # singular and plural are one word
    ],
)
def test_units_months_and_weekdays_match_across_german_and_english(
    answer: str, grounded: bool
) -> None:
    assert grounding.support(answer, [hit(ENGLISH)]).grounded is grounded


def test_the_answers_sentence_must_be_about_the_question() -> None:
    """Both sentences stand in one passage; only one is about the certificate."""
    passage = Hit(
        1,
        1,
        "Lumen Produkthandbuch: Wartung",
        "/wartung.md",
        0,
        "Updates werden am ersten Dienstag zwischen 18:00 und 20:00 Uhr eingespielt. "
        "Lumen warnt 30 Tage vor dem Ablauf des Zertifikats per E-Mail.",
        None,
        ("Wartungsfenster",),  # the chunk starts in the maintenance window's section
        0,
        120,
    )
    asked = ["Wann warnt Lumen vor dem Ablauf des Zertifikats?"]
    assert not grounding.quote_about(asked, passage, "18:00 Uhr")
    assert grounding.quote_about(asked, passage, "30 Tage")
    # "Lumen" names the passage (its title): sharing it says nothing.
    assert not grounding.quote_about(["Wann ist Lumen erreichbar?"], passage, "18:00 Uhr")
    # An English question is not judged by a German sentence's words.
    assert grounding.quote_about(["When does Lumen warn?"], passage, "18:00 Uhr")


def test_an_emails_from_line_says_who_wrote_and_sent_it() -> None:
    header = (
        "From: Katrin Vogel <katrin.vogel@nordlicht.example>\nTo: all-staff@nordlicht.example\n"
        "Subject: Notes from the October all-hands meeting"
    )
    mail = Hit(
        3, 3, "Notes from the October all-hands meeting", "/a.eml", 0, header, None, (), 0, 99
    )
    for asked in (
        "Who wrote the notes from the all-hands meeting?",
        "Who sent the notes from the all-hands meeting?",
        "Wer hat die Notizen zum All-Hands-Meeting geschrieben?",
    ):
        assert grounding.quote_about([asked], mail, "Katrin Vogel")
        assert grounding.question_share([asked], mail, "Katrin Vogel") == 1.0
    # Only a From: line says so.
    forwarded = replace(mail, text=header.replace("From:", "Cc:"))
    assert not grounding.quote_about(["Who wrote the notes?"], forwarded, "Katrin Vogel")
    # The domain of her address says nothing of what she is: asked who the CEO of Nordlicht
    # is (no document says), the default model answered "Katrin Vogel [4]".
    assert not grounding.quote_about(["Who is the CEO of Nordlicht?"], mail, "Katrin Vogel")
    assert grounding.quote_about(
        ["What is Katrin's e-mail address?"], mail, "katrin.vogel@nordlicht.example"
    )


def test_the_answers_own_words_do_not_tie_its_sentence_to_the_question() -> None:
    """Asked "Who is the CEO of Nordlicht?", which no document says, the default model gave the
    handbook's "Nordlicht Systems GmbH [1]": the sentence shares "Nordlicht" with the question
    only through the answer itself."""
    handbook = Hit(
        1,
        1,
        "Lumen Administrator Handbook",
        "/handbook.md",
        0,
        "Lumen is the data platform of Nordlicht Systems GmbH. Administrators manage users, "
        "data sources, retention and the audit log.",
        None,
        (),
        0,
        120,
    )
    assert not grounding.quote_about(
        ["Who is the CEO of Nordlicht?"], handbook, "Nordlicht Systems GmbH"
    )
    assert grounding.quote_about(["Who manages data sources?"], handbook, "Administrators")
    # A word of the question in the answer is fine where another one ties the sentence.
    assert grounding.quote_about(
        ["Which company runs the Lumen data platform?"], handbook, "Nordlicht Systems GmbH"
    )


def test_a_sections_heading_speaks_for_its_sentences() -> None:
    notes = Hit(
        2,
        2,
        "Lumen 4.2 Release Notes",
        "/notes.md",
        0,
        "- Anomaly detection: Lumen learns the normal range of each sensor.",
        None,
        ("New features",),
        0,
        66,
    )
    assert grounding.quote_about(["What is new in Lumen 4.2?"], notes, "Anomaly detection.")
    assert not grounding.quote_about(["What was fixed in Lumen 4.2?"], notes, "Anomaly detection.")


def test_a_follow_up_whose_words_the_title_holds_is_about_the_passage() -> None:
    """ "When was it released?", after a question about what is new in Lumen 4.2, is searched
    with that question too; the release notes' title holds all its words, so the search
    string's "new" need not stand by the date (the default model's right answer was withdrawn)."""
    notes = Hit(
        2,
        2,
        "Lumen 4.2 Release Notes",
        "/notes.md",
        0,
        "Released on 2 October 2026.",
        None,
        ("Lumen 4.2 Release Notes",),
        0,
        27,
    )
    asked = ["When was it released?", "When was it released? What is new in Lumen 4.2?"]
    assert grounding.quote_about(asked, notes, "2 October 2026")
    assert grounding.question_share(asked, notes, "2 October 2026") == 1.0
    # The search string alone is judged as before: "new" stands nowhere near the date.
    assert not grounding.quote_about(asked[1:], notes, "2 October 2026")
    # A question with no words at all ("Where?") leaves the judging to its search string.
    assert not grounding.quote_about(["Where?", asked[1]], notes, "2 October 2026")


def test_the_question_share_around_the_answers_sentence() -> None:
    """The sentence that says the answer and those either side of it: how much of the question
    they hold (XQuAD: a question about a withheld paragraph answered from its neighbour)."""
    passage = Hit(
        1,
        1,
        "Firmengeschichte",
        "/firma.md",
        0,
        "Der erste Standort der Firma entstand 1994 in Bremen. Die Belegschaft wuchs bis 2005 "
        "auf 300 Menschen. Heute fertigt das Werk Pumpen für Kläranlagen.",
        None,
        (),
        0,
        150,
    )
    elsewhere = ["In welchem Jahr wurde der Standort in Hamburg eröffnet?"]
    assert grounding.question_share(elsewhere, passage, "1994") == 0.25  # standort of 4 words
    assert grounding.question_share(["Wann entstand der erste Standort?"], passage, "1994") == 1
    # The next sentence counts ("Die Belegschaft wuchs ..."); two sentences on does not.
    assert grounding.question_share(["Wann wuchs die Belegschaft?"], passage, "1994") == 1
    assert grounding.question_share(["Was fertigt das Werk heute?"], passage, "1994") == 0
    assert grounding.question_share(["Was fertigt das Werk heute?"], passage, "Pumpen") == 1
    # Not judged: another language, or only the title's words.
    assert grounding.question_share(["When did the firm start?"], passage, "1994") == 1.0
    assert grounding.question_share(["Firmengeschichte?"], passage, "1994") == 1.0
    # The best of the questions (the question as asked, its search string) counts.
    assert grounding.question_share([*elsewhere, "Standort Bremen"], passage, "1994") == 1.0


def test_the_quote_is_the_sentence_saying_the_answer_of_what_was_asked() -> None:
    roles = hit(
        "Lumen knows three roles: viewer, operator and administrator. Viewers can read "
        "dashboards. Administrators manage users, data sources, retention and the audit log."
    )
    asked = ["Who manages data sources in Lumen?"]
    quoted = grounding.quote("administrators [1]", roles, asked)
    assert quoted is not None and quoted.text.startswith("Administrators manage")
    assert roles.text[quoted.start : quoted.end] == quoted.text
    # Without the question, the first sentence naming them; none where no sentence says it.
    assert grounding.quote("administrators [1]", roles).text.startswith("Lumen knows")  # type: ignore[union-attr]
    assert grounding.quote("operators on call", hit("Viewers read."), asked) is None
