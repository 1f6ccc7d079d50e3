"""Answers held to quotes of their sources: the grammar, the setting, a real model under it."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from enclave.config import DEFAULT_LLM_MODEL, ConfigError, Settings
from enclave.pipeline import grounding
from enclave.pipeline.entities import Hit, Usage
from enclave.pipeline.llamacpp import LlamaCppLLM
from enclave.pipeline.llm import min_first_logprob, min_next_logprob, quotes
from enclave.pipeline.prompting import build_prompt
from enclave.pipeline.quoting import GAP, UNKNOWN_PHRASES, held_bare_citation, quote_grammar

RULE = re.compile(r'^(\S+) ::= ("(?:[^"\\]|\\.)*")(?: \(" " (\S+)\)\?)?$')


def admitted(grammar: str) -> set[str]:
    """Every answer the grammar admits (it is small enough to enumerate), leading space aside.

    Reads the two rule shapes quote_grammar writes: word rules ("word" (" " next)?) and, per
    source, a choice of start rules followed by the citation.
    """
    lines = grammar.splitlines()
    words: dict[str, tuple[str, str | None]] = {}
    for line in lines[1:]:
        if match := RULE.match(line):
            words[match[1]] = (json.loads(match[2]), match[3])

    def runs(rule: str) -> set[str]:
        word, after = words[rule]
        return {word} | ({f"{word} {rest}" for rest in runs(after)} if after else set())

    answers = {json.loads(literal) for literal in re.findall(r'\| ("[^"]+")', lines[0])}
    for line in lines[1:]:
        if match := re.match(r'^source(\d+) ::= \((.+)\) " \[\d+\]"$', line):
            for start in match[2].split(" | "):
                answers |= {f"{run} [{match[1]}]" for run in runs(start)}
    return answers


def word_runs(text: str, longest: int) -> set[str]:
    words = text.split()
    return {
        " ".join(words[i:j])
        for i in range(len(words))
        for j in range(i + 1, min(len(words), i + longest) + 1)
    }


def test_the_grammar_admits_exactly_short_word_runs_of_one_excerpt_and_its_number() -> None:
    shown = (f"Entries are kept for 400 days.{GAP}Exports are CSV.", 'He said "yes" \\ no.')
    expected = set(UNKNOWN_PHRASES)
    expected |= {f"{run} [1]" for run in word_runs("Entries are kept for 400 days.", 3)}
    expected |= {f"{run} [1]" for run in word_runs("Exports are CSV.", 3)}
    expected |= {f"{run} [2]" for run in word_runs('He said "yes" \\ no.', 3)}
    found = admitted(quote_grammar(shown, max_words=3))
    assert found == expected
    # A quote never runs across the gap of an excerpt, nor past its length limit.
    assert "days. Exports [1]" not in found and "are kept for 400 [1]" not in found


def test_each_phrase_the_grammar_offers_for_unknown_is_an_abstention() -> None:
    assert all(grounding.says_unknown(phrase) for phrase in UNKNOWN_PHRASES)


def test_the_quote_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ENCLAVE_LLM_QUOTE"):
        Settings.load(data_dir=tmp_path, llm_quote="sometimes")

    def setting(model: str, quote: str = "auto") -> bool:
        return quotes(Settings.load(data_dir=tmp_path, llm_model=model, llm_quote=quote))

    # auto: as catalogued (measured per model in benchmarks/answers.md); never for a file.
    assert setting("qwen2.5-coder-0.5b-instruct") and not setting("gemma-3-270m")
    assert not setting(str(tmp_path / "own.gguf"))
    assert setting("gemma-3-270m", "on") and not setting("qwen2.5-coder-0.5b-instruct", "off")


def test_the_confidence_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ENCLAVE_LLM_CONFIDENCE"):
        Settings.load(data_dir=tmp_path, llm_confidence="high")

    def floor(model: str, confidence: str = "auto") -> float | None:
        return min_first_logprob(
            Settings.load(data_dir=tmp_path, llm_model=model, llm_confidence=confidence)
        )

    # auto: as catalogued (measured per model); none for a file or an uncatalogued model.
    assert floor("qwen2.5-coder-1.5b-instruct") == -2.0
    assert floor("gemma-3-270m") is None and floor(str(tmp_path / "own.gguf")) is None
    assert floor("qwen2.5-coder-1.5b-instruct", "off") is None
    assert floor("gemma-3-270m", "-2.5") == -2.5

    def then(model: str, confidence: str = "auto") -> float | None:
        return min_next_logprob(
            Settings.load(data_dir=tmp_path, llm_model=model, llm_confidence=confidence)
        )

    # The second chance of an unsure first word comes with the catalogued floor only.
    assert then("qwen2.5-coder-1.5b-instruct") == -0.1 and then("gemma-3-270m") is None
    assert then("qwen2.5-coder-1.5b-instruct", "-2.5") is None
    assert then("qwen2.5-coder-1.5b-instruct", "off") is None


@pytest.mark.slow
def test_a_real_model_held_to_quotes_answers_with_a_quote_and_its_number() -> None:
    # The default model: Gemma 3 270M (quoting off in the catalogue) quotes a single word
    # ("The [1]") since the prompt shows worked examples.
    llm = LlamaCppLLM(DEFAULT_LLM_MODEL, context=2048, threads=2, quote=True)
    sources = [
        Hit(
            1,
            1,
            "Canteen",
            "/d/canteen.md",
            0,
            "The canteen serves soup on Mondays.",
            None,
            (),
            0,
            0,
        ),
        Hit(
            2,
            2,
            "Audit log",
            "/d/audit.md",
            0,
            "Audit entries are kept for 400 days.",
            None,
            (),
            0,
            0,
        ),
    ]
    for question, number in (("How long are audit entries kept?", 2), ("What is served?", 1)):
        prompt = build_prompt(question, sources, 4000)
        text = "".join(llm.stream(prompt, 40)).strip()
        assert text in admitted(quote_grammar(prompt.shown)), text
        assert text.endswith(f"[{number}]"), text


@pytest.mark.parametrize(
    ("pieces", "shown", "cited"),
    [
        (["[", "2", "]"], "", 2),
        ([" [1]", "."], "", 1),
        (["[12]\n"], "", 12),
        (["[", "1", "] is", " the answer"], "[1] is the answer", None),
        (["Kenya", " [2]"], "Kenya [2]", None),
        (["[1][2]"], "[1][2]", None),
        (["["], "[", None),
        ([], "", None),
    ],
)
def test_a_bare_citation_is_held_back_and_its_number_returned(
    pieces: list[str], shown: str, cited: int | None
) -> None:
    stream = held_bare_citation(pieces)
    out = []
    with pytest.raises(StopIteration) as end:
        while True:
            out.append(next(stream))
    assert "".join(out) == shown and end.value.value == cited


def test_a_grammar_for_one_source_admits_only_its_quotes() -> None:
    grammar = quote_grammar(["soup on Mondays", "kept 400 days"], max_words=3, only=2)
    quoted = admitted(grammar) - set(UNKNOWN_PHRASES)
    assert "kept 400 days [2]" in quoted and "400 [2]" in quoted
    assert all(q.endswith("[2]") for q in quoted)
    assert not any("soup" in q for q in quoted)


@pytest.mark.slow
def test_a_bare_citation_is_asked_again_held_to_quoting_that_source() -> None:
    """Qwen2.5-Coder-1.5B answered 14 of 60 German XQuAD questions with a bare "[n]". Here
    Gemma is taught to by its prompt; the answer becomes a quote of the source it named."""
    from enclave.pipeline.prompting import COMPLETION_STOP

    llm = LlamaCppLLM("gemma-3-270m", context=2048, threads=2)
    texts = [
        ("Canteen", "The canteen serves soup on Mondays."),
        ("Parking", "Parking spaces are assigned by Jana Weber."),
        ("Audit log", "Audit entries are kept for 400 days."),
    ]
    sources = [
        Hit(n, n, title, f"/d/{n}.md", 0, text, None, (), 0, 0)
        for n, (title, text) in enumerate(texts, start=1)
    ]
    prompt = build_prompt("How long are audit entries kept?", sources, 4000)
    shots = (
        "Question: What does the canteen serve?\nAnswer: [1]\n\n"
        "Question: Who assigns parking spaces?\nAnswer: [2]\n\n"
    )
    taught = replace(
        prompt, completion=prompt.completion.replace("Question: How", shots + "Question: How")
    )
    free = llm.llm.create_completion(
        taught.completion, stop=COMPLETION_STOP, max_tokens=8, temperature=0.0
    )
    assert free["choices"][0]["text"].strip() == "[3]"  # the model's own answer: bare
    usage = Usage()
    text = "".join(llm.stream(taught, 40, usage)).strip()
    assert text in admitted(quote_grammar(taught.shown, only=3)), text
    assert text.endswith("[3]") and "400" in text
    assert usage.prompt_tokens == 2 * free["usage"]["prompt_tokens"]  # asked twice
