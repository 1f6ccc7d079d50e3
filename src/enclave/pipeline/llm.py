"""LLM backends: what every backend offers, any OpenAI-compatible server, and the choice
between it and llama.cpp in-process (llamacpp.py)."""

from __future__ import annotations

import json
from collections.abc import Generator
from contextlib import closing
from typing import Protocol

from enclave.config import ConfigError, Settings
from enclave.pipeline.catalogue import CATALOGUE
from enclave.pipeline.entities import Usage
from enclave.pipeline.prompting import Prompt
from enclave.pipeline.repetition import RepetitionGuard


class LLMError(RuntimeError):
    """The model backend failed while generating."""


class InputTooLong(LLMError):
    """The prompt does not fit the model's context window (the caller's input is too long)."""


class LLM(Protocol):
    """Generates text for a prompt, streamed piece by piece."""

    name: str

    def stream(
        self, prompt: Prompt, max_tokens: int, usage: Usage | None = None
    ) -> Generator[str, None, bool]:
        """Tokens as generated; closing the generator stops generation at once.

        Returns True where the model stopped before its first token, unsure how to answer
        from the sources it was shown (then nothing was streamed). The tokens read and
        written are added to usage, also when the generator is closed early.
        """
        ...


def first_line(
    llm: LLM, prompt: Prompt, max_tokens: int, usage: Usage | None = None, label: str = ""
) -> str:
    """The model's one-line reply (a rewritten or translated question): its first line, with
    label removed where the model repeats it; empty where the reply is a loop. Generation
    stops at the end of that line: blank lines before it are read past (a small model may
    open its reply with one)."""
    guard, pieces = RepetitionGuard(), []
    # Closed on the way out: stopping early must release the model at once.
    with closing(llm.stream(prompt, max_tokens, usage)) as tokens:
        for piece in tokens:
            pieces.append(piece)
            if "\n" in "".join(pieces).lstrip() or guard.degenerate(piece):
                break
    lines = "".join(pieces).strip().splitlines()
    text = lines[0].strip().removeprefix(label).strip() if lines else ""
    return "" if RepetitionGuard().degenerate(text) else text


class OpenAICompatibleLLM:
    """Any server speaking the OpenAI chat-completions API: vLLM, Ollama, llama-server, TGI."""

    def __init__(self, base_url: str, model: str, api_key: str = "", timeout: float = 300.0):
        if not base_url:
            raise ConfigError("ENCLAVE_LLM_BASE_URL must be set for the 'openai' LLM backend")
        self.name = model
        self.url = base_url.rstrip("/") + "/chat/completions"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # Imported here: only this backend needs an HTTP client (0.1 s of every CLI start).
        import httpx

        self.client = httpx.Client(headers=headers, timeout=timeout)

    def stream(
        self, prompt: Prompt, max_tokens: int, usage: Usage | None = None
    ) -> Generator[str, None, bool]:
        """Tokens from the server's server-sent-event stream (never unsure: no log-probabilities
        are asked for). Usage as the server counts it (its last chunk); unknown where it sends
        none, or where the stream is closed before that chunk."""
        import httpx

        usage = usage or Usage()
        counted = False
        body = {
            "model": self.name,
            "messages": prompt.messages,
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "stream": True,
            # vLLM, llama-server and Ollama send a last chunk with the counts.
            "stream_options": {"include_usage": True},
        }
        try:
            with self.client.stream("POST", self.url, json=body) as response:
                if response.status_code != 200:
                    response.read()
                    raise LLMError(
                        f"LLM server {self.url} answered {response.status_code}: "
                        f"{response.text[:300]}"
                    )
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return False
                    chunk = json.loads(data)
                    if chunk.get("usage"):
                        usage.prompt_tokens += int(chunk["usage"].get("prompt_tokens") or 0)
                        usage.completion_tokens += int(chunk["usage"].get("completion_tokens") or 0)
                        counted = True
                    choices = chunk.get("choices") or [{}]
                    text = (choices[0].get("delta") or {}).get("content")
                    if text:
                        yield text
        except httpx.HTTPError as exc:
            raise LLMError(
                f"cannot reach the LLM server at {self.url} (ENCLAVE_LLM_BASE_URL): {exc}"
            ) from exc
        finally:
            usage.unknown = usage.unknown or not counted
        return False


def load_llm(settings: Settings) -> LLM:
    """The configured backend."""
    if settings.llm_backend == "openai":
        return OpenAICompatibleLLM(settings.llm_base_url, settings.llm_model, settings.llm_api_key)
    from enclave.pipeline.llamacpp import LlamaCppLLM  # it imports this module's errors

    return LlamaCppLLM(
        settings.llm_model,
        settings.llm_context,
        settings.llm_threads,
        settings.llm_wait_seconds,
        settings.models_path,
        settings.llm_queue,
        quote=quotes(settings),
        min_first_logprob=min_first_logprob(settings),
        min_next_logprob=min_next_logprob(settings),
        lora=settings.llm_lora or None,
    )


def quotes(settings: Settings) -> bool:
    """Whether answers are held to quotes: ENCLAVE_LLM_QUOTE on/off, or "auto": where the
    catalogue entry was measured to answer better so (benchmarks/answers.md)."""
    if settings.llm_quote == "auto":
        entry = CATALOGUE.get(settings.llm_model)
        return entry is not None and entry.quote
    return settings.llm_quote == "on"


def min_first_logprob(settings: Settings) -> float | None:
    """The first-token log-probability below which the model abstains: ENCLAVE_LLM_CONFIDENCE
    as a number or off, or "auto": the catalogue entry's (benchmarks/answers.md)."""
    if settings.llm_confidence == "auto":
        entry = CATALOGUE.get(settings.llm_model)
        return entry.min_first_logprob if entry else None
    return None if settings.llm_confidence == "off" else float(settings.llm_confidence)


def min_next_logprob(settings: Settings) -> float | None:
    """The mean log-probability of the next tokens that still lets an answer whose first token
    is below the floor through: the catalogue entry's with ENCLAVE_LLM_CONFIDENCE=auto, none
    where a floor is given as a number (that floor alone decides) or confidence is off."""
    if settings.llm_confidence == "auto":
        entry = CATALOGUE.get(settings.llm_model)
        return entry.min_next_logprob if entry else None
    return None
