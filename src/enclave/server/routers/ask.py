"""POST /api/ask: an answer with sources, streamed as server-sent events or as one JSON."""

import json
from collections.abc import Generator
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from enclave.config import ConfigError
from enclave.pipeline import audit
from enclave.pipeline.entities import Answer
from enclave.pipeline.llm import LLMError
from enclave.pipeline.serialize import answer_json
from enclave.server.dependencies import Caller, Services, Svc, User, viewer_of
from enclave.server.streaming import event_stream
from enclave.server.validation import MAX_QUESTION_CHARS, Question, Text

router = APIRouter(prefix="/api")


class AskRequest(BaseModel):
    question: Question
    search: Text | None = Field(default=None, max_length=MAX_QUESTION_CHARS)
    k: int = Field(default=5, ge=1, le=50)
    use_search: bool = True
    stream: bool = True
    conversation_id: int | None = None


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _conversation(body: AskRequest, who: Caller, svc: Services) -> tuple[int | None, list]:
    """The conversation this question belongs to (started if new) and its turns so far.

    The CLI keeps no chat history (as when it answers by itself): None for it.
    """
    conversations = svc.conversations
    conversation_id = body.conversation_id
    if conversation_id is not None and not conversations.owns(who.user, conversation_id):
        raise HTTPException(404, "no such conversation")
    if who.via == "cli":
        return None, []
    history = conversations.turns(who.user, conversation_id) if conversation_id else []
    if conversation_id is None:
        conversation_id = conversations.start(who.user, body.question)
    conversations.add(conversation_id, "user", body.question)
    return conversation_id, history


@router.post("/ask")
def ask(body: AskRequest, who: User, svc: Svc) -> Any:
    conversation_id, history = _conversation(body, who, svc)
    viewer = viewer_of(svc, who)
    options = {
        "search": body.search,
        "k": body.k,
        "use_search": body.use_search,
        "history": history,
    }

    def finish(answer: Answer) -> dict[str, Any]:
        result = answer_json(answer, who.user, body.k) | {"conversation_id": conversation_id}
        if conversation_id is not None:
            svc.conversations.add(conversation_id, "assistant", answer.text, result["citations"])
        return result

    if not body.stream:
        answer = svc.enclave.assistant.ask(viewer, body.question, **options)
        svc.record(audit.asked(who.user, who.interface, answer))
        return finish(answer)
    stream = svc.enclave.assistant.stream(viewer, body.question, **options)

    def events() -> Generator[str, None, None]:
        yield sse("conversation", {"conversation_id": conversation_id})
        try:
            for piece in stream:
                yield sse("token", {"text": piece})
            assert stream.answer is not None
            yield sse("answer", finish(stream.answer))
        except (LLMError, ConfigError) as exc:
            yield sse("error", {"message": str(exc)})
        finally:
            stream.close()
            answer = stream.answer or stream.partial
            svc.record(audit.asked(who.user, who.interface, answer, stream.answer is not None))
        yield sse("done", {})

    return event_stream(events())
