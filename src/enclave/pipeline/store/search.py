"""The search queries: dense (pgvector) and keyword (BM25 over postings) under the access filter.

The store is handed vectors, never text to embed: the retriever owns the models.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from threading import Lock
from typing import Any

import numpy as np
from cachetools import TTLCache
from psycopg import Cursor

from enclave.pipeline.entities import Hit
from enclave.pipeline.keywords import umlaut_spellings
from enclave.pipeline.language import LANGUAGE_OF_CONFIG
from enclave.pipeline.store.database import ACL_FILTER, ACL_FILTER_INDEXED, Viewer
from enclave.pipeline.store.embeddings import EmbeddingIndex

BM25_K1 = 1.2
BM25_B = 0.75
# HNSW candidate list per requested result (pgvector ef_search = EF_FACTOR * k, at least 40).
# 8: ef_search 400 for the 50 candidates retrieval asks; on 112k real chunks that found 0.973
# (15 % readable) and 0.981 (all readable) of the exact top 10, at about 10 ms (RESULTS.md).
EF_FACTOR = 8
# Candidates by the vectors' signs per requested result, re-scored by the full vectors: 400
# for retrieval's 50 found 0.991 / 0.993 / 0.984 of the exact top 10 on 101k real chunks (5 /
# 15 / 30 % readable); 100 found 0.93 at 15 %.
SIGNS_FACTOR = 8
# How long a count of a user's permitted chunks is reused. It only picks the method of dense
# search (never what may be read: all run under the access filter), so an old count costs at
# most a slower method until it expires; counting took ~2 ms of a 22 ms search at 112k chunks.
PERMITTED_COUNT_SECONDS = 60


class SearchQueries(EmbeddingIndex):
    """Ranked chunk ids for a viewer, and the permitted chunks' text for a list of ids."""

    def dense_search(self, viewer: Viewer, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(chunk id, cosine similarity) of the k nearest permitted chunks, best first.

        How depends on how many chunks the viewer may read: an exact scan of few, the vectors'
        signs re-scored for a few thousand to the signs limit, HNSW beyond (RESULTS.md).
        """
        dim = self.embedding_dim
        if not viewer.principals or not dim:
            return []
        params = {"principals": viewer.principals, "q": query, "k": k, "n": SIGNS_FACTOR * k}
        acl = ACL_FILTER.format(column="c.document_id")
        distance = f"(c.embedding::vector({dim})) <=> %(q)s::vector({dim})"
        with self.reading_as(viewer) as cur:
            permitted = self._permitted_chunks(cur, viewer)
            if permitted <= self.settings.exact_search_limit:
                # Exact: scan the permitted chunks; materialising keeps the planner off HNSW.
                sql = (
                    f"with permitted as materialized (select c.id, {distance} as d from chunks c "
                    f"where {acl}) "
                    "select id, 1 - d as score from permitted order by d, id limit %(k)s"
                )
            elif permitted <= self.settings.signs_search_limit:
                # The nearest by Hamming distance of the signs, then by their full vectors.
                signs_acl = ACL_FILTER_INDEXED.format(column="s.document_id")
                sql = (
                    "with near as materialized (select s.chunk_id as id from chunk_signs s "
                    f"where {signs_acl} "
                    f"order by s.signs <~> binary_quantize(%(q)s::vector({dim})) limit %(n)s), "
                    f"scored as (select c.id, {distance} as d from chunks c join near using (id)) "
                    "select id, 1 - d as score from scored order by d, id limit %(k)s"
                )
            else:
                # Approximate: HNSW, scanning on until k permitted rows are found. In relaxed
                # order they may come slightly out of order, so they are sorted again; on 112k
                # real chunks, 15 % readable, that found more of the exact top 50 than strict
                # order (0.954 vs 0.938; top 10: 0.973 vs 0.970) in the same time.
                cur.execute(
                    "select set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                    "set_config('hnsw.ef_search', %s, true)",
                    [str(max(40, EF_FACTOR * k))],
                )
                sql = (
                    f"with found as materialized (select c.id, {distance} as d from chunks c "
                    f"where {acl} order by {distance} limit %(k)s) "
                    "select id, 1 - d as score from found order by d, id"
                )
            cur.execute(sql, params)
            return [(int(r["id"]), float(r["score"])) for r in cur.fetchall()]

    @cached_property
    def _permitted_counts(self) -> tuple[TTLCache[tuple[int, ...], int], Lock]:
        return TTLCache(maxsize=4096, ttl=PERMITTED_COUNT_SECONDS), Lock()

    def _permitted_chunks(self, cur: Cursor[dict[str, Any]], viewer: Viewer) -> int:
        """How many chunks viewer's principals may read, counted at most a minute ago."""
        counts, lock = self._permitted_counts
        key = tuple(viewer.principals)
        with lock:
            n = counts.get(key)
        if n is None:
            # The per-document chunk counts answer this without scanning the chunks.
            permitted = cur.execute(
                "select coalesce(sum(d.chunk_count), 0) as n from documents d "
                f"where {ACL_FILTER_INDEXED.format(column='d.id')}",
                {"principals": viewer.principals},
            )
            n = int(permitted.fetchone()["n"])  # type: ignore[index]
            with lock:
                counts[key] = n
        return n

    def keyword_search(self, viewer: Viewer, query: str, k: int) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) of the k best permitted keyword matches, best first.

        Query terms are stemmed as English and as German, then folded like the index
        (keywords.py); BM25's corpus statistics (N, average
        length, document frequencies) are computed over the chunks this user may read only.
        """
        if not viewer.principals:
            return []
        with self.reading_as(viewer) as cur:
            cur.execute(
                "select coalesce(array_agg(distinct enclave_fold(lexeme)), '{}') as lexemes from "
                "unnest(to_tsvector('english', %(q)s) || to_tsvector('german', %(q)s))",
                {"q": umlaut_spellings(query)},
            )
            lexemes = cur.fetchone()["lexemes"]  # type: ignore[index]
            if not lexemes:
                return []
            cur.execute(
                f"""
                with matches as materialized (
                    select p.chunk_id as id, p.lexeme, p.tf, p.term_count
                    from postings p
                    where p.lexeme = any(%(lex)s::text[])
                      and {ACL_FILTER.format(column="p.document_id")}
                ),
                df as (select lexeme, count(*) as df from matches group by lexeme),
                stats as materialized (  -- once, not once per match
                    select greatest(sum(chunk_count), 1)::float8 as n,
                           greatest(sum(term_total)::float8 / greatest(sum(chunk_count), 1), 1)
                               as avgdl
                    from documents d where {ACL_FILTER_INDEXED.format(column="d.id")}
                )
                select m.id, sum(
                    ln(1 + (s.n - d.df + 0.5) / (d.df + 0.5))
                    * m.tf * ({BM25_K1} + 1)
                    / (m.tf + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * m.term_count / s.avgdl))
                ) as score
                from matches m join df d using (lexeme) cross join stats s
                group by m.id order by score desc, m.id limit %(k)s
                """,
                {"lex": lexemes, "principals": viewer.principals, "k": k},
            )
            return [(int(r["id"]), float(r["score"])) for r in cur.fetchall()]

    def readable_chunks(self, viewer: Viewer) -> list[Hit]:
        """Every chunk this user may read, in document order (training data, evaluation)."""
        if not viewer.principals:
            return []
        with self.reading_as(viewer) as cur:
            cur.execute(
                f"select c.id from chunks c where {ACL_FILTER.format(column='c.document_id')}",
                {"principals": viewer.principals},
            )
            ids = [int(r["id"]) for r in cur.fetchall()]
        found = self.hits(viewer, ids)
        return sorted(found.values(), key=lambda h: (h.document_id, h.ordinal))

    def hits(self, viewer: Viewer, chunk_ids: Sequence[int]) -> dict[int, Hit]:
        """The permitted chunks among chunk_ids, with their documents' titles and sources."""
        if not chunk_ids or not viewer.principals:
            return {}
        with self.reading_as(viewer) as cur:
            cur.execute(
                "select c.id, c.document_id, d.title, d.source, c.ordinal, c.text, c.page, "
                "c.heading_path, c.char_start, c.char_end, c.lang::text as lang from chunks c "
                "join documents d on d.id = c.document_id "
                f"where c.id = any(%(ids)s) and {ACL_FILTER.format(column='c.document_id')}",
                {"ids": list(chunk_ids), "principals": viewer.principals},
            )
            return {
                int(r["id"]): Hit(
                    chunk_id=int(r["id"]),
                    document_id=int(r["document_id"]),
                    title=r["title"],
                    source=r["source"],
                    ordinal=int(r["ordinal"]),
                    text=r["text"],
                    page=r["page"],
                    heading_path=tuple(r["heading_path"]),
                    char_start=int(r["char_start"]),
                    char_end=int(r["char_end"]),
                    language=LANGUAGE_OF_CONFIG.get(r["lang"], ""),
                )
                for r in cur.fetchall()
            }
