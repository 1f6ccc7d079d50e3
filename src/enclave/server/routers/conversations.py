"""GET /api/conversations: the caller's own chat history."""

from typing import Any

from fastapi import APIRouter, HTTPException

from enclave.server.dependencies import Svc, User

router = APIRouter(prefix="/api/conversations")


@router.get("")
def list_conversations(who: User, svc: Svc) -> dict[str, Any]:
    return {"conversations": svc.conversations.list(who.user)}


@router.get("/{conversation_id}")
def get_conversation(conversation_id: int, who: User, svc: Svc) -> dict[str, Any]:
    messages = svc.conversations.messages(who.user, conversation_id)
    if messages is None:
        raise HTTPException(404, "no such conversation")
    return {"conversation_id": conversation_id, "messages": messages}
