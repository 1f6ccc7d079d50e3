"""benchmarks/recording.py: a model's streams replayed give the checks the same input."""

from __future__ import annotations

import importlib.util
from collections.abc import Generator
from pathlib import Path

from enclave.pipeline.llm import Usage
from enclave.pipeline.prompting import Prompt

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
spec = importlib.util.spec_from_file_location("recording", BENCHMARKS / "recording.py")
recording = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
spec.loader.exec_module(recording)  # type: ignore[union-attr]


class Scripted:
    """An LLM that streams a fixed answer per question and counts its calls."""

    name = "scripted"

    def __init__(self) -> None:
        self.calls = 0

    def stream(
        self, prompt: Prompt, max_tokens: int, usage: Usage | None = None
    ) -> Generator[str, None, bool]:
        self.calls += 1
        if "unsure" in prompt.completion:
            return True
        yield from ["400", " days", " [1]"]
        return False


def prompt(text: str) -> Prompt:
    return Prompt([{"role": "user", "content": text}], text)


def drain(stream: Generator[str, None, bool], take: int | None = None) -> tuple[list[str], bool]:
    pieces: list[str] = []
    try:
        while take is None or len(pieces) < take:
            pieces.append(next(stream))
    except StopIteration as end:
        return pieces, bool(end.value)
    stream.close()
    return pieces, False


def test_a_replay_gives_what_was_recorded_and_asks_the_model_only_for_new_prompts(
    tmp_path: Path,
) -> None:
    model = Scripted()
    recorder = recording.RecordedLLM(model)
    assert drain(recorder.stream(prompt("how long?"), 8)) == (["400", " days", " [1]"], False)
    assert drain(recorder.stream(prompt("unsure"), 8)) == ([], True)
    # A caller that stops reading early (a loop was detected) gets the same pieces on replay.
    assert drain(recorder.stream(prompt("stopped"), 8), take=1) == (["400"], False)
    recording.save(tmp_path / "r.json.gz", recorder.streams)

    model.calls = 0
    replayer = recording.RecordedLLM(model, recording.load(tmp_path / "r.json.gz"))
    assert drain(replayer.stream(prompt("how long?"), 8)) == (["400", " days", " [1]"], False)
    assert drain(replayer.stream(prompt("unsure"), 8)) == ([], True)
    assert drain(replayer.stream(prompt("stopped"), 8)) == (["400"], False)
    assert model.calls == 0 and replayer.unrecorded == 0
    # Another budget is another prompt: the model answers it.
    assert drain(replayer.stream(prompt("how long?"), 16))[0] == ["400", " days", " [1]"]
    assert model.calls == 1 and replayer.unrecorded == 1
