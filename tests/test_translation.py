"""A question searched for again in the documents' other language (pipeline/translation.py)."""

from __future__ import annotations

from dataclasses import replace

from enclave.demo import setup_demo
from enclave.pipeline.answering import Assistant
from enclave.pipeline.entities import Usage
from enclave.pipeline.llamacpp import LlamaCppLLM
from enclave.pipeline.prompting import Prompt
from enclave.pipeline.serialize import answer_json
from enclave.pipeline.translation import translated
from enclave.pipeline.wiring import Enclave
from tests.test_answers import ABSTAIN_EN, ScriptedLLM, counted_demo, default_llm  # noqa: F401

ENGLISH = "How long is the web console unavailable during maintenance?"
GERMAN = "Wie lange ist die Weboberfläche während der Wartung nicht erreichbar?"


class TranslatingLLM:
    """Plumbing fake: translates (a prompt without sources) and answers (one with them)."""

    name = "translating"

    def __init__(self, translation: str, answer: str) -> None:
        self.translation, self.answer = translation, answer
        self.translations = 0

    def stream(self, prompt: Prompt, max_tokens: int, usage: Usage | None = None):
        if prompt.source_count:
            yield self.answer
        else:
            self.translations += 1
            yield self.translation


def test_a_translation_must_be_one_in_the_other_language() -> None:
    assert translated(ENGLISH, ScriptedLLM(GERMAN)) == GERMAN
    assert translated(GERMAN, ScriptedLLM(ENGLISH)) == ENGLISH
    # Only its first line; an answer in the question's language, the question itself, a
    # worked example echoed or a loop is none.
    assert translated(ENGLISH, ScriptedLLM(f"{GERMAN}\nNote: translated")) == GERMAN
    for reply in (
        ENGLISH,
        "It is unavailable for up to 30 minutes.",
        "Wer bucht Hotelzimmer für Dienstreisen?",
        "Wartung Wartung Wartung Wartung Wartung Wartung Wartung Wartung",
        "",
    ):
        assert translated(ENGLISH, ScriptedLLM(reply)) is None, reply


def test_a_question_no_passage_is_surely_about_is_searched_in_the_other_language(
    enclave: Enclave,
) -> None:
    setup_demo(enclave)
    alice = enclave.store.viewer("alice")
    found = enclave.retriever.search(alice, ENGLISH, 5)
    # The German passage is not among the five found in English; in German it comes first.
    assert "produkthandbuch-wartung.md" not in {h.file_name for h in found}
    assert max(h.similarity or 0 for h in found) < enclave.sure_similarity
    llm = TranslatingLLM(GERMAN, "30 minutes [1]")
    args = (enclave.retriever, llm, 4096, 64, enclave.min_similarity, None)
    more = (enclave.source_margin, enclave.sure_similarity)
    answer = Assistant(*args, *more, translate=True).ask(alice, ENGLISH)
    assert llm.translations == 1 and answer.translated_query == GERMAN
    assert not answer.abstained and answer.text == "30 minutes [1]"
    assert answer.citations[0].hit.file_name == "produkthandbuch-wartung.md"
    assert "30 Minuten" in answer.citations[0].quote.text  # type: ignore[union-attr]
    assert answer_json(answer, "alice", 5)["translated_query"] == GERMAN
    # Without translating, the same answer stands in none of the passages found.
    alone = Assistant(*args, *more).ask(alice, ENGLISH)
    assert llm.translations == 1 and alone.translated_query is None
    assert alone.abstained and alone.text == ABSTAIN_EN
    # A passage surely about the question: no translation is asked for.
    sure = Assistant(*args, *more, translate=True)
    sure.ask(alice, "How long does the audit log keep entries?")
    assert llm.translations == 1
    # A translation whose passages are no surer is not used: she may not read the policy,
    # and in German the canteen's "jeden Tag" comes first.
    weak = TranslatingLLM("Wie viele Tage pro Woche kann ich von zu Hause arbeiten?", "jeden Tag")
    home = Assistant(enclave.retriever, weak, 4096, 64, enclave.min_similarity, None, *more)
    home.translate = True
    answer = home.ask(alice, "How many days a week can I work from home?")
    assert weak.translations == 1 and answer.translated_query is None and answer.abstained
    # Nothing readable at all: the model is not asked, not even to translate.
    nobody = Assistant(*args, *more, translate=True).ask(enclave.store.viewer("mallory"), ENGLISH)
    assert nobody.abstained and llm.translations == 1
    # Off unless ENCLAVE_TRANSLATE_QUERIES=on (benchmarks: docs/answers.md, "Questions in the other
    # language").
    assert not enclave.assistant.translate
    enclave.settings = replace(enclave.settings, translate_queries="on")
    del enclave.__dict__["assistant"]
    assert enclave.assistant.translate


def test_the_default_model_answers_from_a_passage_in_the_other_language(
    enclave: Enclave,
    default_llm: LlamaCppLLM,  # noqa: F811
) -> None:
    enclave.settings = replace(enclave.settings, translate_queries="on")
    enclave, _ = counted_demo(enclave, default_llm)
    ask = enclave.assistant.ask
    console = ask(enclave.store.viewer("alice"), ENGLISH)
    assert console.translated_query and not console.abstained, console.text
    assert "30" in console.text and console.citations[0].hit.file_name == (
        "produkthandbuch-wartung.md"
    )
    inventory = ask(enclave.store.viewer("bob"), "Can I take vacation during the inventory?")
    assert inventory.text.lower().startswith("no [1]"), inventory.text
    assert "Inventur" in inventory.citations[0].quote.text  # type: ignore[union-attr]
