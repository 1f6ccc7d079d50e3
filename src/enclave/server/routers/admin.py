"""/api/me, and the admin's routes: users and groups, every document, every token."""

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from enclave.pipeline.access import check_name
from enclave.pipeline.audit import Event
from enclave.server.dependencies import Admin, Svc, User
from enclave.server.validation import Name, Text

router = APIRouter(prefix="/api")


class UserRequest(BaseModel):
    name: Name
    groups: list[Name] = Field(default=[], max_length=100)
    password: Text | None = Field(default=None, max_length=1000)
    admin: bool = False


@router.get("/me")
def me(who: User) -> dict[str, Any]:
    return {"user": who.user, "admin": who.is_admin}


@router.get("/users")
def users(_: Admin, svc: Svc) -> dict[str, Any]:
    admins = set(svc.accounts.admins())
    return {
        "users": [
            {"user": u["name"], "groups": u["groups"], "admin": u["name"] in admins}
            for u in svc.enclave.store.users()
        ],
        "groups": svc.enclave.store.groups(),
    }


@router.post("/users", status_code=201)
def add_user(body: UserRequest, who: Admin, svc: Svc) -> dict[str, Any]:
    svc.enclave.store.add_user(check_name(body.name), [check_name(g) for g in body.groups])
    if body.password:
        svc.accounts.set_password(body.name, body.password)
    svc.accounts.set_admin(body.name, body.admin)
    detail = {"groups": body.groups, "admin": body.admin, "password_set": bool(body.password)}
    svc.record(Event(who.user, who.interface, "user_add", subject=body.name, detail=detail))
    return {"user": body.name, "groups": body.groups, "admin": body.admin}


@router.delete("/users/{name}/groups/{group}")
def leave_group(name: str, group: str, who: Admin, svc: Svc) -> dict[str, Any]:
    if not svc.enclave.store.remove_from_group(name, group):
        raise HTTPException(404, f"{name} is not in {group}")
    detail = {"group": group}
    svc.record(Event(who.user, who.interface, "group_leave", subject=name, detail=detail))
    return {"user": name, "removed_from": group}


@router.get("/admin/documents")
def all_documents(_: Admin, svc: Svc) -> dict[str, Any]:
    return {"documents": svc.enclave.store.all_documents()}


@router.get("/admin/tokens")
def all_tokens(_: Admin, svc: Svc) -> dict[str, Any]:
    return {"tokens": [{"user": u, **t.__dict__} for u, t in svc.accounts.all_tokens()]}


@router.delete("/admin/tokens/{token_id}")
def revoke_any(token_id: int, who: Admin, svc: Svc) -> dict[str, Any]:
    if not svc.accounts.revoke_any_token(token_id):
        raise HTTPException(404, "no such live token")
    svc.record(Event(who.user, who.interface, "token_revoke", detail={"token_id": token_id}))
    return {"revoked": token_id}
