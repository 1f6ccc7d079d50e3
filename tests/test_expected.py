"""What kind of answer a question asks for (expected.py)."""

from __future__ import annotations

import pytest

from enclave.pipeline import expected


@pytest.mark.parametrize(
    ("question", "asks"),
    [
        ("When are alert e-mails sent?", True),
        ("And when?", True),
        ("Wann findet das Wartungsfenster statt?", True),
        ("Ab wann warnt Lumen?", True),
        ("In welchem Jahr wurde die Kirche gebaut?", True),
        ("Who manages data sources in Lumen?", False),
        ("What happens when a rule fires?", False),
        ("Wie lange dauert die Wartung?", False),
    ],
)
def test_a_when_question_is_recognised(question: str, asks: bool) -> None:
    assert expected.asks_when(question) is asks


@pytest.mark.parametrize(
    "answer",
    [
        "1 December 2026 [1]",
        "am ersten Dienstag des Monats [1]",
        "When a rule fires [1]",
        "nach dem Krieg",
        "bis Jahresende [1]",
        "every night",
        "im Mittelalter",
        "Mitte des achtzehnten Jahrhunderts",
    ],
)
def test_a_time_is_recognised(answer: str) -> None:
    assert expected.says_when(answer)


@pytest.mark.parametrize("answer", ["in UTC [2]", "Nordlicht Systems GmbH [1]", "die Kantine"])
def test_an_answer_without_a_time_does_not_fit_a_when(answer: str) -> None:
    # The citation mark's digit is no time.
    assert not expected.says_when(answer)
    assert not expected.fits("When are alert e-mails sent?", answer)
    assert expected.fits("Where is the company party?", answer)


@pytest.mark.parametrize(
    ("answer", "fits"),
    [
        ("every night [1]", False),
        ("jede Nacht", False),
        ("the web console [1]", False),
        ("400 days [1]", True),
        ("bis zu 30 Minuten [1]", True),
        ("mehrere Jahre", True),
        ("until the second quarter of the 19th century", True),
        ("bis weit ins 19. Jahrhundert hinein", True),
        ("sechs Jahren", True),
        ("six years", True),
    ],
)
def test_a_how_long_question_wants_a_length(answer: str, fits: bool) -> None:
    """Asked "How long does a backup take?" (no document says), the default model answered the
    handbook's "every night [1]"."""
    assert expected.fits("How long does a backup take?", answer) is fits
    assert expected.fits("Wie lange dauert ein Backup?", answer) is fits
    assert expected.fits("And for how long?", answer) is fits
    assert expected.fits("Wie lang ist die Kündigungsfrist?", answer) is fits
    # Other questions are not judged by it.
    assert expected.fits("What happens every night?", answer)
