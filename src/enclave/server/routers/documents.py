"""/api/documents: list, read, upload, delete, re-index, and the access list of a document."""

import re
import secrets
import shutil
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, UploadFile
from pydantic import BaseModel, Field

from enclave.pipeline.access import Principal
from enclave.pipeline.audit import Event
from enclave.pipeline.ingest import file_hash
from enclave.pipeline.loaders import LOADERS
from enclave.pipeline.serialize import document_json
from enclave.server.dependencies import Svc, User, may_manage, readable_or_404, viewer_of
from enclave.server.validation import Name

router = APIRouter(prefix="/api/documents")


class AclRequest(BaseModel):
    allow: list[Name] = Field(max_length=1000)


@router.get("")
def documents(who: User, svc: Svc) -> dict[str, Any]:
    docs = svc.enclave.store.visible_documents(viewer_of(svc, who))
    return {"user": who.user, "documents": [document_json(d) for d in docs]}


@router.get("/{document_id}")
def document(document_id: int, who: User, svc: Svc) -> dict[str, Any]:
    title, body = readable_or_404(svc, who, document_id)
    svc.record(Event(who.user, who.interface, "view", document_ids=(document_id,)))
    return {"document_id": document_id, "title": title, "text": body}


def _receive(file: UploadFile, uploads: Path, limit: int) -> Path:
    """Write the upload to a folder of its own under uploads/, refusing it over the limit."""
    name = Path(file.filename or "").name
    if Path(name).suffix.lower() not in LOADERS:
        raise HTTPException(415, f"unsupported file type; accepted: {', '.join(sorted(LOADERS))}")
    safe = re.sub(r"[^\w.\- ]", "_", name).strip() or "upload"
    folder = uploads / secrets.token_hex(8)
    folder.mkdir(parents=True)
    target = folder / safe
    size = 0
    with target.open("wb") as out:
        while block := file.file.read(2**20):
            size += len(block)
            if size > limit:
                shutil.rmtree(folder)
                raise HTTPException(413, f"file over the {limit // 2**20} MiB limit")
            out.write(block)
    return target


@router.post("", status_code=201)
def upload(
    who: User,
    svc: Svc,
    file: Annotated[UploadFile, File()],
    allow: Annotated[list[Name] | None, Form()] = None,
) -> dict[str, Any]:
    # The uploader can always read what they uploaded.
    acl = sorted({Principal("user", who.user), *(Principal.parse(a) for a in allow or [])})
    svc.enclave.store.require_known(acl)
    target = _receive(file, svc.uploads, svc.upload_limit)
    # The same file again would be a second document with the same passages. Only a copy the
    # uploader may read is named: another one's existence is not theirs to learn.
    copy = svc.enclave.store.readable_copy(viewer_of(svc, who), file_hash(target))
    if copy is not None:
        shutil.rmtree(target.parent, ignore_errors=True)
        raise HTTPException(
            409, f"{target.name}: the same file is already document {copy[0]} ({copy[1]})"
        )
    try:
        (result,) = svc.enclave.ingestor.ingest([target], acl).files
        if result.status == "failed":
            raise HTTPException(422, f"{target.name}: {result.error}")
    except BaseException:
        # Nothing of a refused or failed upload stays under uploads/.
        shutil.rmtree(target.parent, ignore_errors=True)
        raise
    assert result.document_id is not None
    svc.enclave.store.set_owner(result.document_id, who.user)
    svc.record(
        Event(
            who.user,
            who.interface,
            "upload",
            document_ids=(result.document_id,),
            detail={
                "file_name": target.name,
                "chunks": result.chunks,
                "allow": list(map(str, acl)),
            },
        )
    )
    return {
        "document_id": result.document_id,
        "file_name": target.name,
        "chunks": result.chunks,
        "allow": [str(p) for p in acl],
    }


@router.delete("/{document_id}")
def delete(document_id: int, who: User, svc: Svc) -> dict[str, Any]:
    if not who.is_admin:
        readable_or_404(svc, who, document_id)
    may_manage(svc, who, document_id)
    store = svc.enclave.store
    source, title = store.document_source(document_id), store.document_title(document_id)
    store.delete_document(document_id)
    svc.record(
        Event(
            who.user, who.interface, "delete", document_ids=(document_id,), detail={"title": title}
        )
    )
    if source and Path(source).is_relative_to(svc.uploads.resolve()):
        shutil.rmtree(Path(source).parent, ignore_errors=True)
    return {"deleted": document_id}


@router.post("/{document_id}/reindex")
def reindex(document_id: int, who: User, svc: Svc) -> dict[str, Any]:
    may_manage(svc, who, document_id)
    source = svc.enclave.store.document_source(document_id)
    if source is None or not Path(source).exists():
        raise HTTPException(404, "the document's file is gone")
    svc.enclave.store.forget_hash(document_id)
    (result,) = svc.enclave.ingestor.ingest([Path(source)], None).files
    return {"document_id": document_id, "status": result.status, "chunks": result.chunks}


def _acl_json(svc: Svc, document_id: int) -> dict[str, Any]:
    allow = [str(p) for p in svc.enclave.store.acl(document_id)]
    return {"document_id": document_id, "allow": allow}


@router.get("/{document_id}/acl")
def get_acl(document_id: int, who: User, svc: Svc) -> dict[str, Any]:
    may_manage(svc, who, document_id)
    return _acl_json(svc, document_id)


@router.put("/{document_id}/acl")
def put_acl(document_id: int, body: AclRequest, who: User, svc: Svc) -> dict[str, Any]:
    may_manage(svc, who, document_id)
    acl = [Principal.parse(a) for a in body.allow]
    svc.enclave.store.require_known(acl)
    svc.enclave.store.set_acl(document_id, acl)
    svc.record(
        Event(
            who.user,
            who.interface,
            "acl_change",
            document_ids=(document_id,),
            detail={"allow": list(map(str, acl))},
        )
    )
    return _acl_json(svc, document_id)
