"""The stable JSON forms of hits, documents and answers (CLI --json and the HTTP API)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from enclave.pipeline.entities import Answer, Hit
from enclave.pipeline.store import StoredDocument


def hit_json(hit: Hit, rank: int) -> dict[str, Any]:
    """The stable JSON form of a search hit."""
    return {
        "rank": rank,
        "score": round(hit.score, 6),
        "rerank_score": hit.rerank_score,
        "dense_rank": hit.dense_rank,
        "similarity": None if hit.similarity is None else round(hit.similarity, 6),
        "keyword_rank": hit.keyword_rank,
        "chunk_id": hit.chunk_id,
        "document_id": hit.document_id,
        "title": hit.title,
        "file_name": hit.file_name,
        "source": hit.source,
        "page": hit.page,
        "page_unit": hit.page_unit,
        "heading_path": list(hit.heading_path),
        "ordinal": hit.ordinal,
        "char_start": hit.char_start,
        "char_end": hit.char_end,
        "text": hit.text,
    }


def document_json(doc: StoredDocument) -> dict[str, Any]:
    """The stable JSON form of a listed document."""
    return {
        "document_id": doc.document_id,
        "title": doc.title,
        "file_name": doc.file_name,
        "source": doc.source,
        "mime": doc.mime,
        "classification": doc.classification,
        "chunks": doc.chunks,
        "updated_at": doc.updated_at,
    }


def answer_json(answer: Answer, user: str, k: int) -> dict[str, Any]:
    """The stable JSON form of an answer with its sources and citations."""
    return {
        "question": answer.question,
        "user": user,
        "answer": answer.text,
        "used_search": answer.used_search,
        "abstained": answer.abstained,
        "abstention": answer.abstention,
        "grounded": answer.grounded,
        "search_query": answer.search_query,
        "translated_query": answer.translated_query,
        "k": k,
        "usage": answer.usage.counted(),
        "model": answer.model,
        "sources": [hit_json(h, n) for n, h in enumerate(answer.sources, start=1)],
        "citations": [
            {
                "number": c.number,
                "chunk_id": c.hit.chunk_id,
                "document_id": c.hit.document_id,
                "title": c.hit.title,
                "file_name": c.hit.file_name,
                "page": c.hit.page,
                "page_unit": c.hit.page_unit,
                "heading_path": list(c.hit.heading_path),
                "char_start": c.hit.char_start,
                "char_end": c.hit.char_end,
                "excerpt": c.hit.text,
                "quote": asdict(c.quote) if c.quote else None,
                "inferred": c.inferred,
            }
            for c in answer.citations
        ],
    }
