"""The search queries: dense (pgvector) and keyword (BM25 over postings) under the access filter.

The store is handed vectors, never text to embed: the retriever owns the models.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from threading import Lock
from typing import Any, Literal

import numpy as np
from cachetools import TTLCache
from psycopg import Cursor

from enclave.pipeline.entities import Hit
from enclave.pipeline.keywords import umlaut_spellings
from enclave.pipeline.language import LANGUAGE_OF_CONFIG
from enclave.pipeline.store.database import ACL_FILTER, ACL_FILTER_INDEXED, Viewer, connected
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
# Without a configured signs limit, dense search scans the signs while the permitted chunks are
# at most SIGNS_LIMIT_AT_100K x (all chunks / 100,000) ** SIGNS_LIMIT_GROWTH: where the two
# methods cost the same. The signs' scan costs in proportion to the permitted chunks; HNSW's
# filtered walk to how far it goes to meet k permitted ones (all / permitted), and more per step
# once the graph outgrows PostgreSQL's shared buffers. Measured crossovers (each method meeting
# each query first, 2 cores, p50; RESULTS.md): ~15,700 of 100,932 real chunks (signs 9.8 vs
# HNSW 10.6 ms at 13.8k, 11.4 vs 10.6 at 17.5k) and ~73,000 of 1,070,849 (31.7 vs 50.5 ms at
# 51.6k, 43.3 vs 38.1 at 78.7k); the power through both is 0.65.
SIGNS_LIMIT_AT_100K = 15_500
SIGNS_LIMIT_GROWTH = 0.65
# How long the totals of what a user may read (chunks, words) are reused. They pick the method
# of dense search and are BM25's N and average length: never what may be read (all reads run
# under the access filter) and never shown (BM25 scores only rank), so a total up to a minute old
# costs at most a slower method or a slightly different ranking; a document written since is
# found at once, its words' document frequencies are counted live. Counting them took half of
# BM25's time (28 of 56 ms p50 at 1M chunks for a 15 % reader; 2 ms of 22 at 112k).
TOTALS_SECONDS = 60

# Keyword search finds a reader's postings by document (the permitted documents as an array
# the index is probed with) while they may read at most this share of all chunks, and filters
# the query words' postings by the permitted documents beyond. On 1,070,849 real chunks, BM25
# alone p50: 1 % readable 3.9 vs 12.2 ms, 8 % 15.8 vs 18.2, 15 % 25.9 vs 25.2, 30 % 45.9 vs
# 43.6, all 147.5 vs 133.0 (RESULTS.md).
KEYWORD_BY_DOCUMENT_SHARE = 0.1

# Stored chunks a server's warm-up searches with before its first users (Enclave.warm_up): the
# embedded server starts with empty shared buffers and has no pg_prewarm. At 1,070,849 chunks
# 300 took 7-8 s and brought a 15 % reader's first 100 hybrid queries from 50-84 ms p50 to
# 43-47, as after 300 real queries (RESULTS.md).
WARM_UP_PROBES = 300
# Each probe asks what retrieval asks: 50 candidates, ef_search EF_FACTOR * 50.
WARM_UP_K = 50

DenseMethod = Literal["exact", "signs", "hnsw"]


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
            method = self._dense_method(cur, viewer)
            if method == "exact":
                # Exact: scan the permitted chunks; materialising keeps the planner off HNSW.
                sql = (
                    f"with permitted as materialized (select c.id, {distance} as d from chunks c "
                    f"where {acl}) "
                    "select id, 1 - d as score from permitted order by d, id limit %(k)s"
                )
            elif method == "signs":
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

    def dense_method(self, viewer: Viewer) -> DenseMethod:
        """How dense search finds this viewer's nearest chunks: "exact", "signs" or "hnsw"."""
        with self.reading_as(viewer) as cur:
            return self._dense_method(cur, viewer)

    def signs_limit(self) -> int:
        """The most permitted chunks whose signs dense search scans (see SIGNS_LIMIT_AT_100K)."""
        with self.reading_as(Viewer("", [])) as cur:
            return self._signs_limit(cur)

    def _dense_method(self, cur: Cursor[dict[str, Any]], viewer: Viewer) -> DenseMethod:
        permitted, _ = self._readable_totals(cur, viewer)
        if permitted <= self.settings.exact_search_limit:
            return "exact"
        return "signs" if permitted <= self._signs_limit(cur) else "hnsw"

    @cached_property
    def _totals(self) -> tuple[TTLCache[tuple[int, ...], tuple[int, int]], Lock]:
        return TTLCache(maxsize=4096, ttl=TOTALS_SECONDS), Lock()

    def _readable_totals(self, cur: Cursor[dict[str, Any]], viewer: Viewer) -> tuple[int, int]:
        """(chunks, words) in the documents viewer's principals may read, counted at most a
        minute ago (see TOTALS_SECONDS)."""
        if not viewer.principals:
            return 0, 0
        totals, lock = self._totals
        key = tuple(viewer.principals)
        with lock:
            found = totals.get(key)
        if found is None:
            # The per-document counts answer this without scanning the chunks.
            row = cur.execute(
                "select coalesce(sum(d.chunk_count), 0) as chunks, "
                "coalesce(sum(d.term_total), 0) as terms from documents d "
                f"where {ACL_FILTER_INDEXED.format(column='d.id')}",
                {"principals": viewer.principals},
            ).fetchone()
            found = int(row["chunks"]), int(row["terms"])  # type: ignore[index]
            with lock:
                totals[key] = found
        return found

    def _signs_limit(self, cur: Cursor[dict[str, Any]]) -> int:
        """The most permitted chunks dense search scans the signs of (see SIGNS_LIMIT_AT_100K)."""
        if self.settings.signs_search_limit is not None:
            return self.settings.signs_search_limit
        return int(SIGNS_LIMIT_AT_100K * (self._all_chunks(cur) / 100_000) ** SIGNS_LIMIT_GROWTH)

    def _all_chunks(self, cur: Cursor[dict[str, Any]]) -> int:
        """How many chunks the index holds, whoever may read them (at most a minute old)."""
        counted, lock = self._index_size
        with lock:
            chunks = counted.get("chunks")
        if chunks is None:
            # From the statistics, never scanned for (a count under row-level security would be
            # the reader's own): live rows as they are written, or the last vacuum's count where
            # a crash has reset the statistics.
            row = cur.execute(
                "select greatest(pg_stat_get_live_tuples(oid), reltuples, 0)::bigint as n "
                "from pg_class where oid = 'chunks'::regclass"
            ).fetchone()
            chunks = int(row["n"])  # type: ignore[index]
            with lock:
                counted["chunks"] = chunks
        return chunks

    @cached_property
    def _index_size(self) -> tuple[TTLCache[str, int], Lock]:
        return TTLCache(maxsize=1, ttl=TOTALS_SECONDS), Lock()

    def keyword_search(self, viewer: Viewer, query: str, k: int) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) of the k best permitted keyword matches, best first.

        Query terms are stemmed as English and as German, then folded like the index
        (keywords.py); BM25's corpus statistics (N, average length, document frequencies) are
        counted over the chunks this user may read only (N and the length as TOTALS_SECONDS
        says).
        """
        if not viewer.principals:
            return []
        with self.reading_as(viewer) as cur:
            lexemes = _query_lexemes(cur, query)
            if not lexemes:
                return []
            chunks, terms = self._readable_totals(cur, viewer)
            # A reader of a small share probes the index with their documents (migration 011).
            by_document = chunks <= KEYWORD_BY_DOCUMENT_SHARE * self._all_chunks(cur)
            acl = (ACL_FILTER_INDEXED if by_document else ACL_FILTER).format(column="p.document_id")
            # float8 throughout (numeric arithmetic took 3-9 % of the time at 1M chunks);
            # greatest(): N may have been counted before documents written since. Scores are
            # kept to nine decimals, so equal ones tie and go by id whatever order the plan
            # added in (repeated chunks' sums differed by 1e-15 between the two forms).
            cur.execute(
                f"""
                with matches as materialized (
                    select p.chunk_id as id, p.lexeme, p.tf, p.term_count
                    from postings p
                    where p.lexeme = any(%(lex)s::text[])
                      and {acl}
                ),
                df as (select lexeme, count(*)::float8 as df from matches group by lexeme)
                select m.id, floor(1e9 * sum(
                    ln(1 + (greatest(%(n)s, d.df) - d.df + 0.5) / (d.df + 0.5))
                    * m.tf * (%(k1)s + 1)
                    / (m.tf + %(k1)s * (1 - %(b)s + %(b)s * m.term_count / %(avgdl)s))
                )) / 1e9 as score
                from matches m join df d using (lexeme)
                group by m.id order by score desc, m.id limit %(k)s
                """,
                {
                    "lex": lexemes,
                    "principals": viewer.principals,
                    "k": k,
                    "n": float(max(chunks, 1)),
                    "avgdl": max(terms / max(chunks, 1), 1.0),
                    "k1": BM25_K1,
                    "b": BM25_B,
                },
            )
            return [(int(r["id"]), float(r["score"])) for r in cur.fetchall()]

    @connected
    def warm_up(self, probes: int = WARM_UP_PROBES) -> int:
        """Walk the HNSW graph and read the postings as `probes` searches would, so that the
        first users' searches find the busy pages in PostgreSQL's buffers; the probes made.

        The probes are stored chunks picked at random: each one's vector walks the graph, and
        its section heading (or the start of its text) is looked up in the postings as a
        keyword query is. They run as the store's owner without the access filter: what they
        find is counted, never kept or shown.
        """
        dim = self.embedding_dim
        if not dim or probes < 1:
            return 0
        conn = self.conn
        cur = conn.cursor()
        share = min(100.0, 400.0 * probes / max(self._all_chunks(cur), 1))
        picked = cur.execute(
            f"select embedding::vector({dim}) as v, coalesce(nullif("
            "heading_path[cardinality(heading_path)], ''), left(text, 80)) as words "
            "from chunks tablesample system (%s) limit %s",
            [share, probes],
        ).fetchall()
        for row in picked:
            with conn.transaction():
                # The indexes even where the planner would scan a small table instead.
                cur.execute(
                    "select set_config('hnsw.ef_search', %s, true), "
                    "set_config('enable_seqscan', 'off', true)",
                    [str(EF_FACTOR * WARM_UP_K)],
                )
                cur.execute(
                    "select count(*) from (select id from chunks "
                    f"order by embedding::vector({dim}) <=> %s::vector({dim}) limit %s) found",
                    [row["v"], WARM_UP_K],
                )
                cur.execute(
                    "select count(*) from postings where lexeme = any(%s)",
                    [_query_lexemes(cur, row["words"])],
                )
        return len(picked)

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


def _query_lexemes(cur: Cursor, query: str) -> list[str]:
    """The lexemes a keyword query looks up: its words stemmed as English and as German, then
    folded like the index (keywords.py)."""
    cur.execute(
        "select coalesce(array_agg(distinct enclave_fold(lexeme)), '{}') as lexemes from "
        "unnest(to_tsvector('english', %(q)s) || to_tsvector('german', %(q)s))",
        {"q": umlaut_spellings(query)},
    )
    return cur.fetchone()["lexemes"]  # type: ignore[index]
