"""The llama.cpp backend: GGUF models run in-process."""

from __future__ import annotations

import ctypes
import functools
import logging
import threading
from collections import deque
from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from enclave.config import ConfigError
from enclave.pipeline.catalogue import ModelError, resolve
from enclave.pipeline.entities import Usage
from enclave.pipeline.llm import InputTooLong, LLMError
from enclave.pipeline.prompting import COMPLETION_STOP, Prompt
from enclave.pipeline.quoting import held_bare_citation, quote_grammar

_llama_log = logging.getLogger("enclave.llama_cpp")


@functools.cache
def _route_llama_logs() -> Any:
    """Send llama.cpp's own log lines to Python logging instead of the terminal.

    llama.cpp prints from C (e.g. "llama_kv_cache_iswa: using full-size SWA cache" on the
    first generation), which would land in the middle of a streamed answer. Its errors stay
    visible as Python log records; warnings are info, the rest debug output (ggml's levels:
    1 debug, 2 info, 3 warn, 4 error, 5 continuation).
    """
    import llama_cpp

    @llama_cpp.llama_log_callback
    def forward(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
        message = text.decode("utf-8", "replace").rstrip()
        if message:
            _llama_log.log({4: logging.ERROR, 3: logging.INFO}.get(level, logging.DEBUG), message)

    llama_cpp.llama_log_set(forward, ctypes.c_void_p(0))
    return forward  # cached: the C library keeps calling it


class LlamaCppLLM:
    """A GGUF model run in-process by llama.cpp.

    Models whose GGUF carries a chat template get chat messages; base models (like Gemma 3
    270M) get the plain completion prompt with stop sequences. With quote on, an
    answer from sources is held by a grammar to quotes of them (quoting.py); with it off, an
    answer that is only a bare "[n]" is asked again, held to a quote of source n. With
    min_first_logprob, an answer from sources whose first token the model gives a lower
    log-probability is not shown (the caller abstains), unless min_next_logprob is given and
    the next tokens reach it on average: such an answer is held back until they are known.
    """

    def __init__(
        self,
        model: str,
        context: int,
        threads: int,
        wait_s: float = 120.0,
        models_dir: Path | None = None,
        queue: int = 16,
        quote: bool = False,
        min_first_logprob: float | None = None,
        min_next_logprob: float | None = None,
        lora: str | None = None,
    ):
        from llama_cpp import Llama

        _route_llama_logs()
        self.name = model
        adapter = Path(lora).expanduser() if lora else None
        if adapter and not adapter.is_file():
            raise ConfigError(f"LoRA adapter {lora!r} (ENCLAVE_LLM_LORA) is not a file")
        options = dict(
            n_ctx=context,
            n_threads=threads,
            verbose=False,
            lora_path=str(adapter) if adapter else None,
        )
        try:
            local = Path(resolve(model, models_dir)).expanduser()
            if local.is_file():
                self.llm = Llama(str(local), **options)
            else:
                # "owner/repo:file-pattern.gguf" on the Hugging Face hub, for those who reach it.
                repo, _, pattern = model.partition(":")
                self.llm = Llama.from_pretrained(repo, pattern or "*Q4_K_M.gguf", **options)
        except ModelError:
            raise
        except Exception as exc:  # llama.cpp and the hub client raise many types
            raise ConfigError(
                f"LLM {model!r} could not be loaded (ENCLAVE_LLM_MODEL / --llm-model): {exc}"
            ) from exc
        self.chat = "tokenizer.chat_template" in self.llm.metadata
        self.context = context
        self.quote = quote
        self.min_first_logprob = min_first_logprob
        self.min_next_logprob = min_next_logprob
        # One llama.cpp context serves one generation at a time. Others wait in arrival order
        # (a plain lock wakes waiters in no particular order) up to wait_s; beyond `queue`
        # waiting requests a new one is refused at once.
        self._turns = threading.Condition()
        self._waiting: deque[object] = deque()
        self._busy = False
        self.wait_s = wait_s
        self.queue = queue

    def stream(
        self, prompt: Prompt, max_tokens: int, usage: Usage | None = None
    ) -> Generator[str, None, bool]:
        """Tokens as they are generated (concurrent callers wait their turn, up to wait_s);
        True if the model was too unsure of its first token to answer."""
        self._take_turn()
        try:
            with self._answers_kept(prompt):
                return (yield from self._generate(prompt, max_tokens, usage or Usage()))
        except ValueError as exc:
            if "context window" not in str(exc):
                raise
            raise InputTooLong(
                f"the input does not fit the model's context of {self.context} tokens "
                f"({exc}); ask a shorter question"
            ) from exc
        finally:
            with self._turns:
                self._busy = False
                self._turns.notify_all()

    @contextmanager
    def _answers_kept(self, prompt: Prompt) -> Iterator[None]:
        """Around a prompt without sources (a follow-up's rewriting, an answer with search off),
        what the context has evaluated is saved before and put back after.

        llama-cpp-python reuses only the longest common prefix with the last prompt, so a
        rewrite between two questions made the second read the worked examples again (7.8
        instead of 3.9 s to the first token of a follow-up in the demo). Saved are sequence
        0's key/value cells (~28 KB per token for Qwen2.5-Coder-1.5B), not the whole state:
        Llama.save_state also copies the logits buffer (~300 MB for a 150k-token vocabulary).
        """
        import llama_cpp

        count = self.llm.n_tokens
        if prompt.shown or count == 0:
            yield
            return
        context = self.llm.ctx
        size = llama_cpp.llama_state_seq_get_size(context, 0)
        cells = (ctypes.c_uint8 * size)()
        saved = llama_cpp.llama_state_seq_get_data(context, cells, size, 0)
        tokens = self.llm.input_ids[:count].copy()
        # Read whole, as in a fresh process: what it shares with the answer before is only the
        # chat template's first tokens, and reading on from them made a translation differ by
        # what was asked before ("Kann ich während der Inventur verlassen?").
        self.llm.reset()
        try:
            yield
        finally:
            if saved and llama_cpp.llama_state_seq_set_data(context, cells, saved, 0):
                self.llm.input_ids[:count] = tokens
                # The last token is read again: the logits must be those of what the context
                # now holds, for a next prompt that repeats the saved one exactly.
                self.llm.n_tokens = count - 1
                self.llm.eval(tokens[-1:].tolist())
            else:
                self.llm.reset()  # nothing is reused; the next prompt is evaluated whole

    def _take_turn(self) -> None:
        """Wait until every earlier caller has had the model, then hold it (LLMError if not)."""
        me = object()
        with self._turns:
            if len(self._waiting) >= self.queue:
                raise LLMError(
                    f"the model has {len(self._waiting)} requests waiting; try again soon"
                )
            self._waiting.append(me)
            if not self._turns.wait_for(
                lambda: not self._busy and self._waiting[0] is me, timeout=self.wait_s
            ):
                self._waiting.remove(me)
                self._turns.notify_all()  # the next in line may be first now
                raise LLMError(
                    f"the model is busy with other requests (waited {self.wait_s:.0f} s); try again"
                )
            self._waiting.popleft()
            self._busy = True

    def _generate(
        self, prompt: Prompt, max_tokens: int, usage: Usage
    ) -> Generator[str, None, bool]:
        from llama_cpp import LogitsProcessorList

        # Only answers from sources abstain; follow-up rewriting and search-off answers don't.
        floor = Floor(self.min_first_logprob, self.min_next_logprob) if prompt.shown else None
        sampled = Sampled(floor)
        options: dict[str, Any] = {
            "max_tokens": max_tokens,
            "stream": True,
            "temperature": 0.0,
            "logits_processor": LogitsProcessorList([sampled]),
        }
        if self.quote and prompt.shown:
            options["grammar"] = _grammar(quote_grammar(prompt.shown))
        again = Sampled()
        try:
            unsure, cited = yield from self._pieces(prompt, options, sampled)
            if cited is not None and 1 <= cited <= len(prompt.shown):
                # A bare "[n]": the model points at the source that holds the answer but
                # writes none of it. Asked again (the prompt is cached), held to quoting it.
                options["grammar"] = _grammar(quote_grammar(prompt.shown, only=cited))
                options["logits_processor"] = LogitsProcessorList([again])
                yield from self._pieces(prompt, options, again)
            return unsure
        finally:
            usage.prompt_tokens += sampled.prompt_tokens + again.prompt_tokens
            usage.completion_tokens += sampled.tokens + again.tokens

    def _pieces(
        self, prompt: Prompt, options: dict[str, Any], sampled: Sampled
    ) -> Generator[str, None, tuple[bool, int | None]]:
        """The answer's pieces; then (unsure, n where the answer was only a bare "[n]")."""
        if self.chat:
            parts = self.llm.create_chat_completion(prompt.messages, **options)
            pieces = (p["choices"][0]["delta"].get("content") or "" for p in parts)  # type: ignore[index]
        else:
            parts = self.llm.create_completion(prompt.completion, stop=COMPLETION_STOP, **options)
            pieces = _first_paragraph(p["choices"][0]["text"] for p in parts)  # type: ignore[index]
        with closing(parts):  # type: ignore[arg-type]
            cited = yield from held_bare_citation(_while_sure(pieces, sampled))
        unsure = sampled.unsure(finished=True)
        return unsure, None if unsure else cited


def _grammar(gbnf: str) -> Any:
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_string(gbnf, verbose=False)


def _while_sure(pieces: Iterator[str], sampled: Sampled) -> Iterator[str]:
    """The non-empty pieces, none if the model is unsure (pieces are held while that is not
    known yet)."""
    held: list[str] = []
    for piece in pieces:
        verdict = sampled.unsure()
        if verdict is None:
            held.append(piece)
            continue
        if verdict:
            return
        yield from filter(None, held)
        held.clear()
        if piece:
            yield piece
    if not sampled.unsure(finished=True):
        yield from filter(None, held)


@dataclass(frozen=True)
class Floor:
    """When an answer counts as unsure: its first token's log-probability is below `first`,
    and, where `next` is given, the mean of the following tokens' (up to Sampled.WINDOW in
    all) is below `next`."""

    first: float | None
    next: float | None = None


class Sampled:
    """A llama.cpp logits processor (it changes nothing) that notes what was sampled: how
    sure the model is of its first tokens, as far as `floor` needs them to judge the answer,
    the prompt's length and the tokens generated.

    Greedy decoding (temperature 0, no grammar) takes the most likely token, so its
    log-probability is the largest of the step's; measured before that token is streamed, so
    an unsure answer is never shown. It is called once per sampled token, with the tokens so
    far (the prompt at the first call).
    """

    WINDOW = 8  # tokens that can decide: the first and the seven after it

    def __init__(self, floor: Floor | None = None) -> None:
        self.floor = floor
        self.steps: list[float] = []
        self.prompt_tokens = 0
        self.tokens = 0

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if not self.tokens:
            self.prompt_tokens = len(input_ids)
        if self._deciding():
            logits = np.asarray(scores, dtype=np.float64)
            top = logits.max()
            self.steps.append(float(-np.log(np.exp(logits - top).sum())))
        self.tokens += 1
        return scores

    def _deciding(self) -> bool:
        """Whether the next token's log-probability can still change the verdict (a softmax
        over the whole vocabulary is taken only then)."""
        if not self.steps:
            return self.floor is not None and self.floor.first is not None
        return self.unsure() is None

    def unsure(self, finished: bool = False) -> bool | None:
        """Whether the answer is unsure by the floor; None while the tokens that decide it are
        still to come (finished: no more will)."""
        floor = self.floor
        if floor is None or floor.first is None or not self.steps or self.steps[0] >= floor.first:
            return False
        if floor.next is None:
            return True
        if len(self.steps) < self.WINDOW and not finished:
            return None
        after = self.steps[1:]
        return not after or sum(after) / len(after) < floor.next


def _first_paragraph(pieces: Iterator[str]) -> Iterator[str]:
    """Pieces up to the first blank line after some text; leading blank lines are skipped.

    A base model answers in one paragraph and then rambles on; a plain "\n\n" stop sequence
    would also end answers that merely start with a blank line, leaving them empty.
    """
    text = ""
    for piece in pieces:
        if not text.strip():
            piece = (text + piece).lstrip()
            text = ""
        end = (text + piece).find("\n\n")
        if end >= 0:
            if end > len(text):
                yield (text + piece)[len(text) : end]
            return
        text += piece
        if piece:
            yield piece
