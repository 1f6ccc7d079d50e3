"""/api/tokens: the caller's personal API tokens (the secret is returned once)."""

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from enclave.pipeline.audit import Event
from enclave.server.dependencies import Svc, User
from enclave.server.validation import Text

router = APIRouter(prefix="/api/tokens")


class TokenRequest(BaseModel):
    name: Text = Field(default="token", max_length=100)


@router.get("")
def list_tokens(who: User, svc: Svc) -> dict[str, Any]:
    return {"tokens": [t.__dict__ for t in svc.accounts.tokens(who.user)]}


@router.post("", status_code=201)
def new_token(body: TokenRequest, who: User, svc: Svc) -> dict[str, Any]:
    token_id, secret = svc.accounts.create_token(who.user, body.name)
    svc.record(Event(who.user, who.interface, "token_create", detail={"token_id": token_id}))
    return {"id": token_id, "name": body.name, "token": secret, "note": "shown once: store it now"}


@router.delete("/{token_id}")
def revoke(token_id: int, who: User, svc: Svc) -> dict[str, Any]:
    if not svc.accounts.revoke_token(who.user, token_id):
        raise HTTPException(404, "no such live token")
    svc.record(Event(who.user, who.interface, "token_revoke", detail={"token_id": token_id}))
    return {"revoked": token_id}
