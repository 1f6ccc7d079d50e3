"""OpenAI-compatible endpoints, so existing chat front ends and SDKs plug in.

The bearer token identifies the user; retrieval runs with that user's permissions. The model
id chooses retrieval on (`enclave`) or off (`enclave-no-search`). Sources are appended to the
answer text in a readable form and returned in the extra field `enclave`.
"""

import base64
import json
import time
import uuid
from collections.abc import Generator
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from enclave.config import ConfigError
from enclave.pipeline import audit
from enclave.pipeline.answering import AnswerStream
from enclave.pipeline.entities import Answer
from enclave.pipeline.llm import LLMError
from enclave.pipeline.serialize import answer_json
from enclave.server.dependencies import Services, Svc, TokenUser
from enclave.server.streaming import event_stream
from enclave.server.validation import MAX_QUESTION_CHARS, Text

MODELS = {"enclave": True, "enclave-no-search": False}

router = APIRouter(prefix="/v1")


class ContentPart(BaseModel):
    """A typed part of a message's content; only text parts are read."""

    model_config = ConfigDict(extra="allow")
    type: Text
    text: Text | None = None


class ChatMessage(BaseModel):
    role: Text
    content: Text | list[ContentPart] | None = None


class EnclaveOptions(BaseModel):
    search: Text | None = Field(default=None, max_length=MAX_QUESTION_CHARS)
    k: int = Field(default=5, ge=1, le=50)


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    model: Text
    messages: list[ChatMessage] = Field(min_length=1, max_length=1000)
    stream: bool = False
    stream_options: StreamOptions | None = None
    enclave: EnclaveOptions = EnclaveOptions()


class EmbeddingRequest(BaseModel):
    model: str = "enclave"
    input: Text | list[Text]
    encoding_format: Literal["float", "base64"] = "float"


def message_text(message: ChatMessage) -> str:
    """The text of a message whose content is a string or a list of typed parts."""
    if isinstance(message.content, str):
        return message.content
    return "\n".join(p.text or "" for p in message.content or [] if p.type == "text")


def conversation(messages: list[ChatMessage]) -> tuple[list[tuple[str, str]], str]:
    """(earlier (question, answer) turns, the last user message's text)."""
    last = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    turns, question = [], None
    for message in messages[: max(last, 0)]:
        if message.role == "user":
            question = message_text(message)
        elif message.role == "assistant" and question is not None:
            # Our own answers end with a readable source list: it is not part of the turn.
            turns.append((question, message_text(message).split("\n\nSources:\n")[0]))
            question = None
    return turns, message_text(messages[last]).strip() if last >= 0 else ""


def sources_footer(answer: Answer) -> str:
    """The cited sources (or, if none is cited, those shown) as readable text."""
    if not answer.used_search or not answer.sources or answer.abstained:
        return ""
    lines = []
    cited = {c.number: c.hit for c in answer.citations}
    shown = cited or dict(enumerate(answer.sources, start=1))
    for number, hit in shown.items():
        lines.append(f"[{number}] {hit.title} ({hit.file_name}{hit.page_label})")
    return "\n\nSources:\n" + "\n".join(lines)


class Completion:
    """One chat completion's identity and the shapes of its response and stream chunks."""

    def __init__(self, body: ChatRequest, user: str, svc: Services):
        self.body, self.user, self.svc = body, user, svc
        self.ident = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def extra(self, answer: Answer) -> dict[str, Any]:
        """The `enclave` field: what was searched, shown and cited."""
        full = answer_json(answer, self.user, self.body.enclave.k)
        keys = (
            "used_search",
            "search_query",
            "abstained",
            "abstention",
            "grounded",
            "sources",
            "citations",
        )
        return {k: full[k] for k in keys}

    def response(self, answer: Answer) -> dict[str, Any]:
        message = {"role": "assistant", "content": answer.text + sources_footer(answer)}
        return {
            "id": self.ident,
            "object": "chat.completion",
            "created": self.created,
            "model": self.body.model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            # Null where an LLM server did not count (clients read it as unknown; zeros they
            # would add up).
            "usage": answer.usage.counted(),
            "enclave": self.extra(answer),
        }

    def chunk(self, delta: dict[str, Any] | None, finish: str | None = None, **more: Any) -> str:
        """A stream chunk; delta None: the usage chunk, which has no choices."""
        data = {
            "id": self.ident,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.body.model,
            "choices": []
            if delta is None
            else [{"index": 0, "delta": delta, "finish_reason": finish}],
            **more,
        }
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    def events(self, stream: AnswerStream) -> Generator[str, None, None]:
        yield self.chunk({"role": "assistant", "content": ""})
        try:
            for piece in stream:
                yield self.chunk({"content": piece})
        except (LLMError, ConfigError) as exc:
            error = {"message": str(exc), "type": "server_error"}
            yield f"data: {json.dumps({'error': error}, ensure_ascii=False)}\n\n"
            return
        finally:
            stream.close()
            answer = stream.answer or stream.partial
            self.svc.record(audit.asked(self.user, "openai", answer, stream.answer is not None))
        assert stream.answer is not None
        footer = sources_footer(stream.answer)
        if footer:
            yield self.chunk({"content": footer})
        yield self.chunk({}, "stop", enclave=self.extra(stream.answer))
        if self.body.stream_options and self.body.stream_options.include_usage:
            yield self.chunk(None, usage=stream.answer.usage.counted())
        yield "data: [DONE]\n\n"


@router.get("/models")
def models(_: TokenUser) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "enclave"} for name in MODELS
        ],
    }


@router.post("/chat/completions")
def chat(body: ChatRequest, user: TokenUser, svc: Svc) -> Any:
    if body.model not in MODELS:
        raise HTTPException(404, f"unknown model {body.model!r}; use one of {list(MODELS)}")
    history, question = conversation(body.messages)
    if not question:
        raise HTTPException(422, "no user message with text")
    if len(question) > MAX_QUESTION_CHARS:
        raise HTTPException(
            422, f"the last user message is over the {MAX_QUESTION_CHARS}-character limit"
        )
    viewer = svc.enclave.store.viewer(user)
    options = {
        "search": body.enclave.search,
        "k": body.enclave.k,
        "use_search": MODELS[body.model],
        "history": history,
    }
    completion = Completion(body, user, svc)
    if not body.stream:
        answer = svc.enclave.assistant.ask(viewer, question, **options)
        svc.record(audit.asked(user, "openai", answer))
        return completion.response(answer)
    stream = svc.enclave.assistant.stream(viewer, question, **options)
    return event_stream(completion.events(stream))


@router.post("/embeddings")
def embeddings(body: EmbeddingRequest, _: TokenUser, svc: Svc) -> dict[str, Any]:
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts or len(texts) > 256:
        raise HTTPException(422, "input must hold 1 to 256 texts")
    embedder = svc.enclave.embedder
    vectors = embedder.embed_passages(texts)
    # What the model read of each text: its word pieces, cut at the model's length.
    tokens = sum(min(embedder.count_tokens(text), embedder.max_tokens) for text in texts)

    def encode(vector: Any) -> Any:
        # base64 is little-endian float32, as the official clients expect and decode.
        if body.encoding_format == "base64":
            return base64.b64encode(vector.astype("<f4").tobytes()).decode()
        return vector.tolist()

    return {
        "object": "list",
        "model": embedder.name,
        "data": [
            {"object": "embedding", "index": i, "embedding": encode(v)}
            for i, v in enumerate(vectors)
        ],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
