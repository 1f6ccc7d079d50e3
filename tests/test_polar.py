"""Yes-or-no answers are checked as the statement they make of the question."""

from __future__ import annotations

from enclave.pipeline import grounding
from enclave.pipeline.entities import Citation, Hit
from enclave.pipeline.polar import claim, denied, holds, in_language

AUDIT = (
    "Administrators can download the audit log as a CSV file from the settings. "
    "Administrators cannot shorten the retention below 90 days. "
    "Confidential exports may only be opened on company devices."
)
CSV = "Can I download the audit log as a CSV file?"


def cited(text: str, answer: str, title: str = "Audit log", language: str = "en") -> Citation:
    hit = Hit(1, 1, title, "/audit.md", 0, text, None, (), 0, len(text), language=language)
    return Citation(1, hit, quote=grounding.quote(answer, hit))


def test_a_yes_or_no_states_the_question_and_keeps_its_citations() -> None:
    yes = claim(CSV, "Yes [1]")
    assert yes.polarity is True and "download the audit log as a CSV file" in yes.text
    assert grounding.CITATION_MARK.search(yes.text)
    assert claim("Kann ich das Log herunterladen?", "Ja, als CSV [1]").polarity is True
    assert claim(CSV, "nein.").polarity is False
    # A no denies the number asked about: it need not stand in the source.
    no = claim("Can administrators shorten the retention to 30 days?", "No [1]")
    assert no.polarity is False and "30" not in no.text and "shorten" in no.text
    assert "30" in claim("Can administrators shorten the retention to 30 days?", "Yes").text
    # Any other answer is its own claim, also one that merely begins with such letters.
    for answer in ("400 days [1]", "Nobody [2]", "Japan [1]"):
        assert claim(CSV, answer).text == answer and claim(CSV, answer).polarity is None


def test_the_cited_sentence_must_say_the_yes_or_the_no() -> None:
    yes = claim(CSV, "Yes [1]")
    assert holds(yes, CSV, [cited(AUDIT, yes.text)])
    shorten = "Can administrators shorten the retention to 30 days?"
    no = claim(shorten, "No [1]")
    assert holds(no, shorten, [cited(AUDIT, no.text)])
    # The same sentences do not make the opposite answers.
    assert not holds(claim(CSV, "No [1]"), CSV, [cited(AUDIT, claim(CSV, "No [1]").text)])
    wrong = claim(shorten, "Yes [1]")
    assert not holds(wrong, shorten, [cited(AUDIT, wrong.text)])
    # A restriction answers a question beyond it with a no, and never with a yes.
    home = "Can confidential exports be opened on private laptops?"
    assert holds(claim(home, "No [1]"), home, [cited(AUDIT, claim(home, "No [1]").text)])
    own = "Can I open confidential exports on my own laptop?"  # most of its words stand there
    assert not holds(claim(own, "Yes [1]"), own, [cited(AUDIT, claim(own, "Yes [1]").text)])
    # What it names whole, it affirms.
    named = "Can confidential exports be opened on company devices?"
    assert holds(claim(named, "Yes [1]"), named, [cited(AUDIT, claim(named, "Yes [1]").text)])


ROLES = (
    "Viewers can read dashboards. Operators can acknowledge alerts and annotate incidents. "
    "Administrators manage users, data sources, retention and the audit log."
)


def test_a_yes_is_said_of_what_the_question_asks_about() -> None:
    # "Administrators manage users" holds two of the three words of each question.
    for question, right in (
        ("Can operators manage users?", False),
        ("Can administrators manage users?", True),
        ("Können Operatoren Benutzer verwalten?", False),  # another language: not judged
    ):
        said = claim(question, "Yes [1]")
        assert holds(said, question, [cited(ROLES, said.text, "Roles")]) is right, question
    # Pronouns are passed over: "Can I ...?" asks about what follows.
    download = claim(CSV, "Yes [1]")
    assert holds(download, CSV, [cited(AUDIT, download.text)])
    # What the passage's title names counts as said.
    lumen = "Does Lumen keep login entries?"
    kept = claim(lumen, "Yes [1]")
    assert holds(kept, lumen, [cited("Login entries are kept for 400 days.", kept.text, "Lumen")])


def test_a_sentence_that_holds_only_the_subject_says_no_yes_or_no() -> None:
    # "Administrators cannot shorten the retention": half of "Can administrators change
    # that?", but only its subject; the default model answered it, and "... extend it?", "no".
    for question in ("Can administrators change that?", "Can administrators extend it?"):
        for answer in ("No [1]", "Yes [1]"):
            said = claim(question, answer)
            assert not holds(said, question, [cited(AUDIT, said.text)]), (question, answer)
    # Where it holds more than the subject it still decides.
    shorten = "Can administrators shorten it?"
    assert holds(claim(shorten, "No [1]"), shorten, [cited(AUDIT, claim(shorten, "No").text)])


def test_always_is_answered_no_where_the_passage_names_an_exception() -> None:
    policy = (
        "Resturlaub kann bis zum 31. März des Folgejahres genommen werden. Danach verfällt er, "
        "es sei\ndenn, der Urlaub konnte wegen Krankheit nicht genommen werden."
    )
    always = "Verfällt Resturlaub nach dem 31. März immer?"
    for answer, right in (("Ja [1]", False), ("Nein [1]", True)):
        said = claim(always, answer)
        hit = cited(policy, said.text, "Urlaubsrichtlinie", "de")
        assert holds(said, always, [hit]) is right, answer
    # Without "always" the exception does not decide.
    plain = "Verfällt Resturlaub nach dem 31. März?"
    said = claim(plain, "Ja [1]")
    assert holds(said, plain, [cited(policy, said.text, "Urlaubsrichtlinie", "de")])


def test_a_yes_or_no_without_a_sentence_that_says_it_does_not_hold() -> None:
    pdf = "Can I export the audit log as a PDF?"
    said = claim(pdf, "No [1]")
    # The CSV sentence holds the title's words but not the question's own.
    assert not holds(said, pdf, [cited(AUDIT, said.text)])
    assert not holds(said, pdf, [])
    # Over a passage in another language its words cannot be compared: nothing to stand on.
    german = "Kann ich das Audit-Log als CSV-Datei herunterladen?"
    ja = claim(german, "Ja [1]")
    assert not holds(ja, german, [cited(AUDIT, ja.text)])
    # Any other answer is judged by grounding's checks alone.
    assert holds(claim(CSV, "400 days [1]"), CSV, [])


def test_a_yes_the_cited_sentence_denies_is_the_no_it_says() -> None:
    def turned(question: str, text: str, answer: str, language: str = "en") -> str | None:
        said = claim(question, answer)
        return denied(question, answer, [cited(text, said.text, "Protokoll", language)])

    minutes = "Die Auftragslage ist stabil. Kurzarbeit ist nicht geplant."
    assert turned("Ist Kurzarbeit geplant?", minutes, "Ja [1]", "de") == "No [1]"
    own = "Can I open confidential exports on my own laptop?"
    assert turned(own, AUDIT, "Yes [1]") == "No [1]"
    # The denial is in another clause than what the question asks: no no.
    sso = "Lumen supports single sign-on via SAML; LDAP is not supported."
    assert turned("Does Lumen support single sign-on?", sso, "Yes [1]") is None
    # A yes that holds, a no, a yes that says more, and any other answer do not turn.
    assert turned(CSV, AUDIT, "Yes [1]") is None
    assert turned("Ist Kurzarbeit geplant?", minutes, "Nein [1]", "de") is None
    assert turned("Ist Kurzarbeit geplant?", minutes, "Ja, ab Januar [1]", "de") is None
    assert turned("Ist Kurzarbeit geplant?", minutes, "stabil [1]", "de") is None
    # A sentence about something else denies nothing the question asks about.
    assert turned("Ist Kurzarbeit geplant?", "Urlaub ist nicht geplant.", "Ja [1]", "de") is None


def test_a_yes_or_no_is_said_in_the_questions_language() -> None:
    english, german = "Can I print personnel files at home?", "Darf ich Akten drucken?"
    assert in_language(english, "nein [1]") == "No [1]"
    assert in_language(english, "Ja, an drei Tagen [2]") == "Yes, an drei Tagen [2]"
    assert in_language(german, "No [1]") == "Nein [1]"
    assert in_language(german, "yes [1]") == "Ja [1]"
    for kept in ("no [1]", "Yes [1]", "the team lead [1]", "Nobody [1]"):
        assert in_language(english, kept) == kept
