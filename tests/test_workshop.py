"""The model workshop on tiny data through the real models and store: pairs, bi-encoder and
cross-encoder tuning, re-embedding the index, the text classifier."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from enclave.config import ConfigError
from enclave.demo import setup_demo
from enclave.pipeline.access import Principal
from enclave.pipeline.classification import DataError, TextClassifier
from enclave.pipeline.embedding import Embedder, embedding_text
from enclave.pipeline.entities import Hit
from enclave.pipeline.ingest import reembed
from enclave.pipeline.reranking import Reranker
from enclave.pipeline.wiring import Enclave
from enclave.workshop.classifier import Example, load_examples, train_classifier
from enclave.workshop.reranker import tune_reranker
from enclave.workshop.runs import Run
from enclave.workshop.training_data import (
    PairSet,
    clean_question,
    heading_pairs,
    sentence_pairs,
    split_by_document,
)
from enclave.workshop.tuning import build_pairs, tune_embedder
from tests.conftest import sql, stale_signs


def hit(chunk_id: int, document_id: int, text: str, title: str, *headings: str) -> Hit:
    return Hit(chunk_id, document_id, title, f"/{title}", 0, text, None, headings, 0, len(text))


def test_heading_pairs_only_where_the_path_names_one_chunk() -> None:
    chunks = [
        hit(1, 1, "Alpha text.", "Guide", "Install"),
        hit(2, 1, "Beta text.", "Guide", "Upgrade"),
        hit(3, 1, "Gamma text.", "Guide", "Upgrade"),
    ]
    pairs = heading_pairs(chunks)
    assert [(p.query, p.chunk_id, p.origin) for p in pairs] == [("Guide › Install", 1, "heading")]


def test_sentence_pairs_remove_the_query_sentence_from_the_passage() -> None:
    text = (
        "The first sentence has quite a few words in it. The second sentence also has "
        "enough words to count. The third sentence is here to make three of them."
    )
    (pair,) = sentence_pairs([hit(7, 3, text, "Doc")], random.Random(1))
    assert pair.query in text
    assert pair.query not in pair.positive
    assert pair.origin == "sentence" and pair.chunk_id == 7


def test_clean_question_rejects_non_questions_and_copies() -> None:
    source = "Lumen keeps audit log entries for 400 days."
    assert clean_question(" How long are audit entries kept?", source) == (
        "How long are audit entries kept?"
    )
    assert clean_question("Lumen keeps audit log entries for 400 days", source) is None
    assert clean_question("Why?", source) is None
    assert clean_question("What is the meaning of this passage?", source) is None
    assert clean_question("Lumen keeps audit log entries for 400 days?", source) is None


def test_split_by_document_is_disjoint_and_seeded() -> None:
    pairs = sentence_pairs(
        [
            hit(i, i % 7, "One two three four five six. " * 2 + "Seven eight nine ten eleven.", "T")
            for i in range(40)
        ],
        random.Random(0),
    )
    train, test, test_docs = split_by_document(pairs, 0.3, seed=4)
    assert test and train
    assert {p.document_id for p in test} == test_docs
    assert not test_docs & {p.document_id for p in train}
    assert split_by_document(pairs, 0.3, seed=4)[2] == test_docs


@pytest.fixture
def demo(enclave: Enclave, llm: object) -> Enclave:
    enclave.__dict__["llm"] = llm
    setup_demo(enclave)
    return enclave


def test_pairs_as_a_user_hold_only_what_that_user_may_read(demo: Enclave, tmp_path: Path) -> None:
    """bob (hr, staff) builds pairs: no engineering passage as query, positive or negative."""
    bob = demo.store.viewer("bob")
    readable = {h.chunk_id for h in demo.store.readable_chunks(bob)}
    alice_only = {
        h.chunk_id for h in demo.store.readable_chunks(demo.store.viewer("alice"))
    } - readable
    assert readable and alice_only
    pairs, stats = build_pairs(demo, "bob", tmp_path / "pairs", use_llm=True, max_chunks=4)
    everything = pairs.train + pairs.test
    assert everything and stats["by_origin"]["heading"] + stats["by_origin"]["sentence"] > 0
    for pair in everything:
        assert pair.chunk_id in readable
        assert set(pair.negative_ids) <= readable
    assert set(pairs.corpus) == readable
    secret_texts = [
        demo.store.hits(demo.store.viewer("alice"), [i])[i].text for i in sorted(alice_only)
    ]
    dump = (tmp_path / "pairs" / "train.jsonl").read_text() + (
        tmp_path / "pairs" / "corpus.jsonl"
    ).read_text()
    assert not any(json.dumps(t, ensure_ascii=False)[1:60] in dump for t in secret_texts)
    # What was written reads back the same.
    again = PairSet.load(tmp_path / "pairs")
    assert again.train == pairs.train and again.corpus == pairs.corpus


def test_embedder_tuning_is_measured_saved_and_reproducible(demo: Enclave, tmp_path: Path) -> None:
    pairs, _ = build_pairs(demo, "alice", tmp_path / "pairs", use_llm=False, test_fraction=0.3)
    first = tune_embedder(
        "all-MiniLM-L6-v2", pairs, Run.create(tmp_path, "embedder", {}), batch_size=8, seed=3
    )
    second = tune_embedder(
        "all-MiniLM-L6-v2", pairs, Run.create(tmp_path, "embedder", {}), batch_size=8, seed=3
    )
    assert first["before"]["test_pairs"]["queries"] == len(pairs.test) > 0
    assert 0 <= first["after"]["test_pairs"]["ndcg@10"] <= 1
    assert first["after"] == second["after"] and first["loss"] == second["loss"]
    assert first["loss"], "the loss curve is recorded"
    # The saved model differs from the base and loads as an Embedder.
    tuned = Embedder(first["model"])
    query = "how long are audit log entries kept"
    assert not np.allclose(tuned.embed_query(query), demo.embedder.embed_query(query))


def test_reindex_switches_the_index_to_the_tuned_model(demo: Enclave, tmp_path: Path) -> None:
    pairs, _ = build_pairs(demo, "alice", tmp_path / "pairs", use_llm=False)
    model = tune_embedder(
        "all-MiniLM-L6-v2", pairs, Run.create(tmp_path, "embedder", {}), batch_size=8
    )["model"]
    tuned = Embedder(model)
    store = demo.store
    before = sql(store, "select id, embedding from chunks order by id")
    # A document ingested between staging and the switch stops the switch; a re-run finishes.
    store.chunks_to_reembed(tuned.name)
    rows = store.chunks_to_reembed(tuned.name)
    texts = [embedding_text(r["title"], r["heading_path"], r["text"]) for r in rows]
    store.stage_embeddings(tuned.name, [r["id"] for r in rows], tuned.embed_passages(texts))
    extra = tmp_path / "late.txt"
    extra.write_text("A late memo about parking spaces for visitors at the Hamburg office.")
    demo.ingestor.ingest([extra], [Principal("group", "staff")])
    with pytest.raises(ConfigError, match="no vector"):
        store.switch_embeddings(tuned.name, tuned.dim)
    assert store.indexed_embedding_model() == demo.embedder.name
    assert reembed(store, tuned) == len(before) + 1
    assert store.indexed_embedding_model() == model
    rows = sql(store, "select id, embedding from chunks order by id")
    after = {r["id"]: r["embedding"].to_numpy() for r in rows}
    first = before[0]
    assert not np.allclose(after[first["id"]], first["embedding"].to_numpy())
    # Staged and late vectors alike are the tuned model's (unit length, as it writes them).
    assert all(abs(np.linalg.norm(v) - 1) < 1e-3 for v in after.values())
    assert stale_signs(store) == 0  # the signs follow the switched vectors
    # A new Enclave on this index embeds queries with the tuned model and finds things.
    fresh = Enclave(demo.settings)
    try:
        assert fresh.embedder.name == model
        hits = fresh.retriever.search(fresh.store.viewer("alice"), "audit log retention", 3)
        assert any("400 days" in h.text for h in hits)
    finally:
        fresh.close()


def test_reranker_tuning_reports_before_and_after(demo: Enclave, tmp_path: Path) -> None:
    pairs, _ = build_pairs(demo, "alice", tmp_path / "pairs", use_llm=False, test_fraction=0.3)
    metrics = tune_reranker(
        demo, "alice", "all-MiniLM-L6-v2", pairs, Run.create(tmp_path, "reranker", {}), seed=1
    )
    results = metrics["test_pairs"]
    assert set(results) == {"hybrid", "hybrid+untuned cross-encoder", "hybrid+tuned cross-encoder"}
    assert all(0 <= r["ndcg@10"] <= 1 for r in results.values())
    assert metrics["train_rows"] > len(pairs.train)  # positives plus mined negatives
    scores = Reranker(metrics["model"]).score("audit log retention", ["a", "b"])
    assert len(scores) == 2


def labelled(n: int) -> list[Example]:
    rng = random.Random(0)
    money = ["invoice", "payment", "refund", "budget", "receipt", "tax"]
    leave = ["vacation", "holiday", "sick leave", "parental leave", "day off", "absence"]
    out = []
    for i in range(n):
        words, label = (money, "finance") if i % 2 else (leave, "hr")
        out.append(
            Example(f"Question about the {rng.choice(words)} for {rng.choice(words)}", label)
        )
    return out


def test_classifier_learns_beats_nothing_and_plots(tmp_path: Path) -> None:
    run = Run.create(tmp_path, "classifier", {})
    epochs: list[dict] = []
    metrics = train_classifier(
        labelled(80),
        run,
        epochs=3,
        batch_size=8,
        learning_rate=1e-4,
        seed=0,
        on_epoch=epochs.append,
    )
    assert [e["epoch"] for e in epochs] == [e["epoch"] for e in metrics["epochs"]]
    assert metrics["test"]["accuracy"] >= 0.9  # two clearly separable classes
    assert metrics["baseline_tfidf_svm_test"]["accuracy"] >= 0.9
    assert (run.folder / "confusion.png").stat().st_size > 0
    classifier = TextClassifier(metrics["model"])
    assert [label for label, _ in classifier.predict(["refund of the invoice", "sick leave"])] == [
        "finance",
        "hr",
    ]


def test_classifier_data_errors_are_clear(tmp_path: Path) -> None:
    csv_file = tmp_path / "data.csv"
    csv_file.write_text("body,label\nhello,a\n")
    with pytest.raises(DataError, match="no 'text'"):
        load_examples(csv_file)
    csv_file.write_text("text,label\nhello,a\nworld,a\n")
    with pytest.raises(DataError, match="two different labels"):
        load_examples(csv_file)
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text('{"text": "x", "label": "a"}\nnot json\n')
    with pytest.raises(DataError, match=r"data\.jsonl:2"):
        load_examples(jsonl)
    with pytest.raises(DataError, match="no classifier"):
        TextClassifier(tmp_path)


def test_classifier_same_seed_same_metrics(tmp_path: Path) -> None:
    runs = [
        train_classifier(
            labelled(40), Run.create(tmp_path, "classifier", {}), epochs=1, batch_size=8, seed=5
        )
        for _ in range(2)
    ]
    assert runs[0]["epochs"] == runs[1]["epochs"] and runs[0]["test"] == runs[1]["test"]
