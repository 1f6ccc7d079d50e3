"""Whether an answer's cited passages are about the question (citing.off_topic), across
languages through the question's translation."""

from __future__ import annotations

from enclave.pipeline.citing import off_topic
from enclave.pipeline.entities import Citation, Hit

LEAVE = (
    "Urlaub wird im Personalportal beantragt, mindestens zwei Wochen vor Beginn. Die "
    "Führungskraft entscheidet innerhalb von drei Arbeitstagen."
)


def cited(text: str, similarity: float) -> list[Citation]:
    hit = Hit(
        1, 1, "Urlaubsrichtlinie", "/u.md", 0, text, None, (), 0, len(text), 0.0, 1, similarity
    )
    return [Citation(1, hit)]


def test_a_passage_in_another_language_is_judged_by_the_questions_translation() -> None:
    """Asked "How long is the notice period?", which no document says, the default model gave
    the German leave policy's "two weeks [4]": no word check could judge a German passage by
    an English question."""
    asked = ["How long is the notice period?"]
    assert not off_topic("zwei Wochen", cited(LEAVE, 0.81), asked, 0.85)
    translated = ["Wie lang ist die Kündigungsfrist?"]
    assert off_topic("zwei Wochen", cited(LEAVE, 0.81), asked, 0.85, translated)
    # The translation of a question the passage answers keeps the answer.
    asked, translated = (
        ["How early must I apply for leave?"],
        ["Wie früh muss ich Urlaub beantragen?"],
    )
    assert not off_topic("zwei Wochen", cited(LEAVE, 0.81), asked, 0.85, translated)


def test_a_translation_does_not_count_its_words_near_the_answer() -> None:
    """Below the sure similarity, an answer in the question's language must stand among half of
    its words; a translation words the question otherwise than its asker (XQuAD, German
    questions over English paragraphs: two right answers were withdrawn so), so only subject
    and sentence are judged by it."""
    asked = ["Who decides on leave requests, sick notes and business trips?"]
    translation = ["Wer entscheidet über Urlaubsanträge, Krankmeldungen und Dienstreisen?"]
    assert not off_topic("Die Führungskraft", cited(LEAVE, 0.81), asked, 0.85, translation)
    # Asked so in German, the same answer stands among too few of its words.
    assert off_topic("Die Führungskraft", cited(LEAVE, 0.81), translation, 0.85)
