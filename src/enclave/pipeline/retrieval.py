"""Hybrid retrieval: dense + BM25 over the permitted chunks, fused with RRF, optionally reranked."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import lru_cache
from typing import TypeVar

import numpy as np

from enclave.pipeline.embedding import TextEmbedder, embedding_text
from enclave.pipeline.entities import Hit
from enclave.pipeline.reranking import Reranker
from enclave.pipeline.store import Store, Viewer

T = TypeVar("T", int, str)

# How many candidates each retriever contributes to fusion, at least.
MIN_CANDIDATES = 50


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[T]], k: int = 60, weights: Sequence[float] | None = None
) -> list[tuple[T, float]]:
    """Fuse ranked lists: score(id) = sum over lists of weight / (k + rank), rank from 1."""
    scores: dict[T, float] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings), strict=True):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))  # type: ignore[operator]


def passage(hit: Hit) -> str:
    """A chunk as both encoders see it: title and headings, then the text."""
    return embedding_text(hit.title, hit.heading_path, hit.text)


class Retriever:
    """Finds the chunks a user may read that best match a query."""

    def __init__(
        self,
        store: Store,
        embedder: TextEmbedder,
        reranker: Reranker | None = None,
        rrf_k: int = 60,
        rerank_candidates: int = 30,
        dense_weight: float = 1.0,
    ):
        self.store = store
        self.embedder = embedder
        self.reranker = reranker
        self.rrf_k = rrf_k
        self.rerank_candidates = rerank_candidates
        self.dense_weight = dense_weight
        # BM25 runs in its own thread (with its own connection) while the query is embedded
        # and the dense search runs: the two take similar time, so the query takes the max.
        self._keyword_threads = ThreadPoolExecutor(8, thread_name_prefix="enclave-bm25")
        # Users repeat queries (retries, follow-ups, the same question from many people).
        self._query_vector = lru_cache(maxsize=1024)(self._embed_query)

    def clear_query_cache(self) -> None:
        """Forget cached query vectors (after switching the embedding model; benchmarks)."""
        self._query_vector.cache_clear()

    def _embed_query(self, query: str) -> np.ndarray:
        vector = self.embedder.embed_query(query)
        vector.setflags(write=False)  # shared by every caller of the cache
        return vector

    def _distinct(
        self, viewer: Viewer, fused: list[tuple[int, float]], keep: int
    ) -> list[tuple[Hit, float]]:
        """The first keep permitted chunks of fused, each text once: copies of one file (a
        policy saved in two folders, a file uploaded twice) would otherwise fill the results,
        and the model's prompt, with one passage. The first (best-ranked) copy stays."""
        distinct: list[tuple[Hit, float]] = []
        seen: set[str] = set()
        start = 0
        while len(distinct) < keep and start < len(fused):
            # As many as are still missing: without copies, one fetch of keep chunks.
            batch = fused[start : start + keep - len(distinct)]
            start += len(batch)
            found = self.store.hits(viewer, [chunk_id for chunk_id, _ in batch])
            for chunk_id, score in batch:
                hit = found.get(chunk_id)
                if hit is not None and hit.text not in seen:
                    seen.add(hit.text)
                    distinct.append((hit, score))
        return distinct

    def search(self, viewer: Viewer, query: str, k: int = 5) -> list[Hit]:
        """The top k permitted chunks for query, best first."""
        if k < 1 or not query.strip():
            return []
        pool = max(MIN_CANDIDATES, 3 * k)
        keyword_search = self._keyword_threads.submit(
            self.store.keyword_search, viewer, query, pool
        )
        try:
            dense = self.store.dense_search(viewer, self._query_vector(query), pool)
        finally:
            keyword = keyword_search.result()
        fused = reciprocal_rank_fusion(
            [[i for i, _ in dense], [i for i, _ in keyword]], self.rrf_k, (self.dense_weight, 1.0)
        )
        keep = max(k, self.rerank_candidates) if self.reranker else k
        dense_rank = {chunk_id: rank for rank, (chunk_id, _) in enumerate(dense, start=1)}
        similarity = dict(dense)
        keyword_rank = {chunk_id: rank for rank, (chunk_id, _) in enumerate(keyword, start=1)}
        hits = [
            replace(
                hit,
                score=score,
                dense_rank=dense_rank.get(hit.chunk_id),
                similarity=similarity.get(hit.chunk_id),
                keyword_rank=keyword_rank.get(hit.chunk_id),
            )
            for hit, score in self._distinct(viewer, fused, keep)
        ]
        if self.reranker and hits:
            # The cross-encoder sees a chunk as it was trained to (`enclave tune reranker`):
            # with its title and headings, which often carry what the question names.
            scores = self.reranker.score(query, [passage(h) for h in hits])
            hits = [
                replace(h, rerank_score=s)
                for h, s in sorted(zip(hits, scores, strict=True), key=lambda p: -p[1])
            ]
        return hits[:k]
