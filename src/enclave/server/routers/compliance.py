"""Admin routes for accountability: the audit trail, access review, data-subject requests,
sign-in unlock and retention."""

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException

from enclave.pipeline.audit import Event, parse_since
from enclave.pipeline.retention import purge
from enclave.pipeline.serialize import document_json
from enclave.server.dependencies import Admin, Svc

router = APIRouter(prefix="/api/admin")


def since_param(since: str | None) -> datetime | None:
    try:
        return parse_since(since)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc


@router.get("/audit")
def audit_list(
    _: Admin,
    svc: Svc,
    user: str | None = None,
    document: int | None = None,
    since: str | None = None,
    action: str | None = None,
    limit: int = 200,
) -> dict[str, Any]:
    entries = svc.enclave.store.audit_entries(
        user, document, since_param(since), action, max(1, min(limit, 10000))
    )
    return {"entries": entries}


@router.get("/audit/verify")
def audit_verify(_: Admin, svc: Svc) -> dict[str, Any]:
    return svc.enclave.store.verify_audit().__dict__


@router.get("/audit/who-saw/{document_id}")
def who_saw(document_id: int, _: Admin, svc: Svc, since: str | None = None) -> dict[str, Any]:
    users = svc.enclave.store.who_saw(document_id, since_param(since))
    return {"document_id": document_id, "since": since, "users": users}


@router.get("/audit/seen-by/{name}")
def seen_by(name: str, _: Admin, svc: Svc, since: str | None = None) -> dict[str, Any]:
    documents = svc.enclave.store.seen_by(name, since_param(since))
    return {"user": name, "since": since, "documents": documents}


@router.get("/documents/{document_id}/readers")
def who_can_read(document_id: int, _: Admin, svc: Svc) -> dict[str, Any]:
    store = svc.enclave.store
    if store.document_title(document_id) is None:
        raise HTTPException(404, "no such document")
    return {"document_id": document_id, "readers": store.readers(document_id)}


@router.get("/users/{name}/documents")
def readable_by(name: str, _: Admin, svc: Svc) -> dict[str, Any]:
    store = svc.enclave.store
    if not store.user_exists(name):
        raise HTTPException(404, "no such user")
    documents = store.visible_documents(store.viewer(name))
    return {"user": name, "documents": [document_json(d) for d in documents]}


@router.get("/users/{name}/export")
def export_user(name: str, who: Admin, svc: Svc) -> dict[str, Any]:
    record = svc.enclave.store.person_record(name)
    if record is None:
        raise HTTPException(404, "no such user")
    svc.record(Event(who.user, who.interface, "user_export", subject=name))
    return record


@router.delete("/users/{name}")
def erase_user(name: str, who: Admin, svc: Svc) -> dict[str, Any]:
    if name == who.user:
        raise HTTPException(409, "an admin cannot erase their own account")
    if not svc.enclave.store.user_exists(name):
        raise HTTPException(404, "no such user")
    # Recorded first: the erasure then removes the name from this entry too.
    svc.record(Event(who.user, who.interface, "user_erase", subject=name))
    svc.enclave.store.erase_person(name)
    return {"erased": name}


@router.post("/users/{name}/unlock")
def unlock(name: str, who: Admin, svc: Svc) -> dict[str, Any]:
    failures = svc.throttle.unlock(name)
    svc.record(
        Event(who.user, who.interface, "unlock", subject=name, detail={"failures": failures})
    )
    return {"user": name, "failures_cleared": failures}


@router.post("/purge")
def purge_now(who: Admin, svc: Svc) -> dict[str, Any]:
    return purge(svc.enclave.store, svc.enclave.settings, who.user, who.interface).__dict__
