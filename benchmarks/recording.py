"""A model's streams recorded once and replayed, so that a change to the checks after
generation (grounding, abstention, citations) is measured in a minute instead of an hour.

A recording maps each prompt (and token budget) to the pieces the model streamed and whether
it stopped unsure. Replaying answers a prompt from the recording; a prompt that is not in it
(the change altered what the model is shown) goes to the real model, and is counted.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Generator
from pathlib import Path

from enclave.pipeline.llm import LLM, Usage
from enclave.pipeline.prompting import Prompt


def key(prompt: Prompt, max_tokens: int) -> str:
    return json.dumps([prompt.messages, prompt.completion, max_tokens], ensure_ascii=False)


class RecordedLLM:
    """An LLM that records what the wrapped one streams, or replays an earlier recording."""

    def __init__(self, llm: LLM, streams: dict[str, dict] | None = None) -> None:
        self.llm = llm
        self.name = llm.name
        self.replaying = streams is not None
        self.streams: dict[str, dict] = streams or {}
        self.unrecorded = 0

    def stream(
        self, prompt: Prompt, max_tokens: int, usage: Usage | None = None
    ) -> Generator[str, None, bool]:
        """The recorded pieces where replaying a known prompt; else the model's, noted."""
        asked = key(prompt, max_tokens)
        recorded = self.streams.get(asked) if self.replaying else None
        if recorded is not None:
            yield from recorded["pieces"]
            return bool(recorded["unsure"])
        self.unrecorded += self.replaying
        pieces: list[str] = []
        # What the caller read before closing the stream is what a replay can give it.
        entry = {"pieces": pieces, "unsure": False}
        self.streams[asked] = entry
        generated = self.llm.stream(prompt, max_tokens, usage)
        try:
            while True:
                piece = next(generated)
                pieces.append(piece)
                yield piece
        except StopIteration as stop:
            entry["unsure"] = bool(stop.value)
            return bool(stop.value)
        finally:
            generated.close()


def load(path: Path) -> dict[str, dict]:
    """The streams of a recording file (one model, one language, one sample)."""
    with gzip.open(path, "rt", encoding="utf-8") as source:
        return json.load(source)


def save(path: Path, streams: dict[str, dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as sink:
        json.dump(streams, sink, ensure_ascii=False)
