"""POST /api/search: hybrid search over the caller's documents."""

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from enclave.pipeline import audit
from enclave.pipeline.serialize import hit_json
from enclave.server.dependencies import Svc, User, viewer_of
from enclave.server.validation import Question

router = APIRouter(prefix="/api")


class SearchRequest(BaseModel):
    query: Question
    k: int = Field(default=5, ge=1, le=100)


@router.post("/search")
def search(body: SearchRequest, who: User, svc: Svc) -> dict[str, Any]:
    hits = svc.enclave.retriever.search(viewer_of(svc, who), body.query, body.k)
    svc.record(audit.searched(who.user, who.interface, body.query, hits))
    return {
        "query": body.query,
        "user": who.user,
        "k": body.k,
        "hits": [hit_json(h, n) for n, h in enumerate(hits, 1)],
    }
