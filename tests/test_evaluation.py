"""Evaluation metrics on hand-made data with known values, and the harness end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from enclave.pipeline.wiring import Enclave
from enclave.workshop.evaluation import (
    Evaluator,
    exact_match,
    load_beir,
    load_squad,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
    token_f1,
)
from tests.test_cli import as_json


def test_ndcg_known_values() -> None:
    relevant = {"a": 1}
    assert ndcg_at_k(["a", "b"], relevant, 10) == 1.0
    assert ndcg_at_k(["b", "a"], relevant, 10) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k(["b", "c"], relevant, 10) == 0.0
    graded = {"a": 2, "b": 1}
    dcg = 1 / math.log2(2) + 2 / math.log2(3)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(["b", "a"], graded, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(["x", "a"], relevant, 1) == 0.0


def test_recall_and_mrr_known_values() -> None:
    relevant = {"a": 1, "b": 1}
    assert recall_at_k(["a", "x", "b"], relevant, 2) == 0.5
    assert recall_at_k(["a", "x", "b"], relevant, 3) == 1.0
    assert mrr_at_k(["x", "y", "b"], relevant, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["x", "y", "b"], relevant, 2) == 0.0


def test_answer_metrics_follow_squad() -> None:
    assert exact_match("The Denver Broncos.", ["Denver Broncos"]) == 1.0
    assert exact_match("Broncos", ["Denver Broncos"]) == 0.0
    assert token_f1("Broncos", ["Denver Broncos"]) == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert token_f1("nothing", ["Denver Broncos"]) == 0.0
    # German quotation marks and all German article forms are no words (as in MLQA's scoring).
    assert exact_match("Wir sind Bettler", ["„Wir sind Bettler”,"]) == 1.0
    assert exact_match("des Montreal-Protokolls", ["Montreal-Protokolls"]) == 1.0
    assert token_f1("Business as usual", ["„Business as usual“- (BAU-)"]) == pytest.approx(
        2 * 1 * 0.75 / 1.75
    )


def tiny_beir(folder: Path) -> Path:
    docs = {
        "d1": "The audit log keeps entries for 400 days.",
        "d2": "Vacation: employees get 30 days of leave per year.",
        "d3": "The canteen serves a vegetarian dish every day.",
    }
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"_id": k, "title": "", "text": v}) for k, v in docs.items())
    )
    queries = {"q1": "how long are audit entries kept", "q2": "how much holiday do staff get"}
    (folder / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": k, "text": v}) for k, v in queries.items())
    )
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n")
    return folder


def test_beir_loader(tmp_path: Path) -> None:
    data = load_beir(tiny_beir(tmp_path / "tiny"))
    assert set(data.corpus) == {"d1", "d2", "d3"}
    assert data.qrels == {"q1": {"d1": 1}, "q2": {"d2": 1}}


def test_eval_retrieval_command_on_tiny_beir(tmp_path: Path) -> None:
    folder = tiny_beir(tmp_path / "tiny")
    report = as_json(
        tmp_path / "unused",
        "eval",
        "retrieval",
        "--dataset",
        str(folder),
        "--out",
        str(tmp_path / "out"),
    )
    assert set(report["results"]) == {"bm25", "dense", "hybrid", "pg ts_rank_cd"}
    assert report["results"]["dense"]["ndcg@10"] == 1.0
    assert report["results"]["hybrid"]["recall@10"] == 1.0
    assert Path(report["chart"]).stat().st_size > 1000
    assert json.loads(Path(report["json"]).read_text())["queries"] == 2


def squad_file(path: Path, question: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "version": "1.1",
                "data": [
                    {
                        "title": "Lumen",
                        "paragraphs": [
                            {
                                "context": "Lumen keeps audit log entries for 400 days.",
                                "qas": [
                                    {
                                        "id": "q1",
                                        "question": question,
                                        "answers": [{"text": "400 days", "answer_start": 34}],
                                    }
                                ],
                            },
                            {
                                "context": "The canteen serves soup on Mondays.",
                                "qas": [
                                    {
                                        "id": "q2",
                                        "question": "What does the canteen serve on Mondays?",
                                        "answers": [{"text": "soup", "answer_start": 23}],
                                    }
                                ],
                            },
                        ],
                    }
                ],
            }
        )
    )
    return path


def test_cross_lingual_questions_replace_by_id(tmp_path: Path) -> None:
    english = squad_file(tmp_path / "en.json", "How long are audit entries kept?")
    german = squad_file(tmp_path / "de.json", "Wie lange werden Audit-Einträge aufbewahrt?")
    data, items = load_squad(english, german)
    assert data.queries["q1"] == "Wie lange werden Audit-Einträge aufbewahrt?"
    assert data.qrels["q1"] == {"0-0": 1}
    assert items[0].answers == ("400 days",)


@pytest.mark.slow
def test_qa_metrics_with_the_real_llm(tmp_path: Path, enclave: Enclave) -> None:
    data, items = load_squad(squad_file(tmp_path / "en.json", "How long are audit entries kept?"))
    evaluator = Evaluator(enclave)
    evaluator.index(data, tmp_path / "work")
    result = evaluator.qa(items, k=1)
    assert result["questions"] == 2
    assert result["gold_passage_hit@1"] == 1.0
    assert 0.0 <= result["f1"] <= 1.0
    assert 0.0 <= result["citation_precision"] <= 1.0
