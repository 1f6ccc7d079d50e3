"""Evaluation through the real pipeline: retrieval on BEIR-format data, QA on SQuAD-format data.

Every corpus entry becomes a document readable by one evaluation user, and every query runs as
that user, so evaluations exercise the same access-controlled paths as real questions.
"""

from __future__ import annotations

import json
import math
import re
import string
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from enclave.pipeline.access import Principal
from enclave.pipeline.retrieval import Retriever, reciprocal_rank_fusion
from enclave.pipeline.wiring import Enclave

EVAL_USER = "evaluator"


@dataclass
class RetrievalSet:
    """Corpus (id -> (title, text)), queries (id -> text), qrels (query -> doc -> grade)."""

    name: str
    corpus: dict[str, tuple[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


@dataclass(frozen=True)
class QAItem:
    """A question with its gold answers and the corpus entry that holds them."""

    qid: str
    question: str
    answers: tuple[str, ...]
    doc_id: str


# -- data sets --------------------------------------------------------------------------------


def load_beir(folder: Path, split: str = "test") -> RetrievalSet:
    """corpus.jsonl, queries.jsonl and qrels/<split>.tsv (query-id, corpus-id, score)."""
    corpus = {}
    for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            corpus[str(row["_id"])] = (row.get("title", ""), row["text"])
    queries = {}
    for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            queries[str(row["_id"])] = row["text"]
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate((folder / "qrels" / f"{split}.tsv").read_text().splitlines()):
        parts = line.split("\t")
        if number == 0 and not parts[-1].strip().lstrip("-").isdigit():
            continue  # header
        qid, doc, score = parts[0], parts[1], int(parts[2])
        if score > 0:
            qrels.setdefault(qid, {})[doc] = score
    queries = {q: t for q, t in queries.items() if q in qrels}
    return RetrievalSet(folder.name, corpus, queries, qrels)


def load_squad(path: Path, questions: Path | None = None) -> tuple[RetrievalSet, list[QAItem]]:
    """Each paragraph is a document; each question's relevant document is its paragraph.

    questions: another SQuAD file with the same question ids (XQuAD in another language), for
    cross-lingual retrieval: its questions are asked against this file's paragraphs.
    """
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    asked = {}
    if questions is not None:
        for article in json.loads(questions.read_text(encoding="utf-8"))["data"]:
            for paragraph in article["paragraphs"]:
                asked |= {qa["id"]: qa["question"] for qa in paragraph["qas"]}
    corpus, queries, qrels, items = {}, {}, {}, []
    for a, article in enumerate(data):
        for p, paragraph in enumerate(article["paragraphs"]):
            doc_id = f"{a}-{p}"
            corpus[doc_id] = (article.get("title", ""), paragraph["context"])
            for qa in paragraph["qas"]:
                question = asked.get(qa["id"], qa["question"]) if questions else qa["question"]
                queries[qa["id"]] = question
                qrels[qa["id"]] = {doc_id: 1}
                answers = tuple(dict.fromkeys(x["text"] for x in qa["answers"]))
                items.append(QAItem(qa["id"], question, answers, doc_id))
    name = path.stem if questions is None else f"{questions.stem}->{path.stem}"
    return RetrievalSet(name, corpus, queries, qrels), items


def load_dataset(path: Path, questions: Path | None = None) -> tuple[RetrievalSet, list[QAItem]]:
    """A BEIR folder or a SQuAD-format JSON file."""
    if path.is_dir():
        if questions is not None:
            raise ValueError("--questions works with SQuAD-format files only")
        return load_beir(path), []
    return load_squad(path, questions)


# -- metrics ----------------------------------------------------------------------------------


def ndcg_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int) -> float:
    """nDCG@k with graded relevance and the linear gain (as BEIR / trec_eval)."""
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int) -> float:
    return len(set(ranked[:k]) & set(relevant)) / len(relevant) if relevant else 0.0


def mrr_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int) -> float:
    return next((1 / (i + 1) for i, d in enumerate(ranked[:k]) if d in relevant), 0.0)


# English and German articles, as MLQA's evaluation removes them for each language.
_ARTICLES = re.compile(r"\b(a|an|the|der|die|das|den|dem|des|ein|eine|einen|einem|eines|einer)\b")


def _punctuation(char: str) -> bool:
    return char in string.punctuation or unicodedata.category(char).startswith("P")


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation as MLQA extends it to other languages: lower case, no
    punctuation (German quotation marks „…“ and dashes too), no articles, single spaces."""
    text = "".join(c for c in text.lower() if not _punctuation(c))
    return " ".join(_ARTICLES.sub(" ", text).split())


CITATION_MARK = re.compile(r"\[\d+\]")


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    return float(any(normalize_answer(prediction) == normalize_answer(a) for a in answers))


def token_f1(prediction: str, answers: Sequence[str]) -> float:
    """The best token-overlap F1 against any gold answer."""
    best = 0.0
    predicted = normalize_answer(prediction).split()
    for answer in answers:
        gold = normalize_answer(answer).split()
        common = sum((Counter(predicted) & Counter(gold)).values())
        if common:
            precision, recall = common / len(predicted), common / len(gold)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


# -- running ------------------------------------------------------------------------------------


@dataclass
class RetrievalReport:
    """Metrics per configuration, averaged over queries, with query latency."""

    dataset: str
    documents: int
    queries: int
    results: dict[str, dict[str, float]] = field(default_factory=dict)


class Evaluator:
    """Indexes a data set as documents of one user and measures retrieval and answers."""

    def __init__(self, enclave: Enclave):
        self.enclave = enclave
        self.doc_of: dict[int, str] = {}
        self.chunk_doc: dict[int, str] = {}

    def index(self, dataset: RetrievalSet, work: Path) -> None:
        """Write each corpus entry as a text file and ingest them for the evaluation user."""
        folder = work / "corpus"
        folder.mkdir(parents=True, exist_ok=True)
        names = {}
        for number, (doc_id, (title, text)) in enumerate(dataset.corpus.items()):
            name = f"{number:07}.txt"
            (folder / name).write_text(f"{title}\n\n{text}" if title else text, encoding="utf-8")
            names[name] = doc_id
        self.enclave.store.add_user(EVAL_USER, [])
        self.enclave.ingestor.ingest([folder], [Principal("user", EVAL_USER)])
        self.doc_of = {
            document_id: names[Path(source).name]
            for document_id, source in self.enclave.store.sources_under(folder)
        }
        with self.enclave.store.connection() as conn:
            rows = conn.execute("select id, document_id from chunks").fetchall()
        self.chunk_doc = {
            r["id"]: self.doc_of[r["document_id"]] for r in rows if r["document_id"] in self.doc_of
        }

    def configurations(self) -> dict[str, Callable[[str, int], list[int]]]:
        """Ranked chunk ids per retrieval configuration."""
        store, embedder = self.enclave.store, self.enclave.embedder
        viewer = store.viewer(EVAL_USER)
        settings = self.enclave.settings
        hybrid = Retriever(
            store, embedder, None, settings.rrf_k, dense_weight=self.enclave.dense_weight
        )
        configs: dict[str, Callable[[str, int], list[int]]] = {
            "bm25": lambda q, n: [i for i, _ in store.keyword_search(viewer, q, n)],
            "dense": lambda q, n: [
                i for i, _ in store.dense_search(viewer, embedder.embed_query(q), n)
            ],
            "hybrid": lambda q, n: [h.chunk_id for h in hybrid.search(viewer, q, n)],
        }
        configs["pg ts_rank_cd"] = lambda q, n: self.ts_rank(q, n)
        if self.enclave.reranker is not None:
            configs["hybrid+rerank"] = lambda q, n: [
                h.chunk_id for h in self.enclave.retriever.search(viewer, q, n)
            ]
        return configs

    def ts_rank(self, query: str, n: int) -> list[int]:
        """PostgreSQL's own ranking (ts_rank_cd, OR of the query's stems): the baseline that
        the product's BM25 has to beat."""
        viewer = self.enclave.store.viewer(EVAL_USER)
        with self.enclave.store.reading_as(viewer) as cur:
            cur.execute(
                "with q as (select array_to_string(array(select distinct quote_literal(lexeme) "
                "from unnest(to_tsvector('english', %(q)s) || to_tsvector('german', %(q)s))), "
                "' | ') as text) "
                "select c.id from chunks c, q where q.text <> '' and c.tsv @@ q.text::tsquery "
                "order by ts_rank_cd(c.tsv, q.text::tsquery) desc, c.id limit %(n)s",
                {"q": query, "n": n},
            )
            return [r["id"] for r in cur.fetchall()]

    def documents_ranked(self, chunk_ids: Sequence[int]) -> list[str]:
        """Corpus ids in the order their first chunk appears."""
        return list(dict.fromkeys(self.chunk_doc[c] for c in chunk_ids if c in self.chunk_doc))

    def retrieval(self, dataset: RetrievalSet, depth: int = 100) -> RetrievalReport:
        report = RetrievalReport(dataset.name, len(dataset.corpus), len(dataset.queries))
        for name, run in self.configurations().items():
            scores: dict[str, list[float]] = {m: [] for m in METRICS}
            latencies = []
            for qid, query in dataset.queries.items():
                started = time.perf_counter()
                chunk_ids = run(query, depth)
                latencies.append(time.perf_counter() - started)
                ranked = self.documents_ranked(chunk_ids)
                relevant = dataset.qrels[qid]
                scores["ndcg@10"].append(ndcg_at_k(ranked, relevant, 10))
                scores["recall@10"].append(recall_at_k(ranked, relevant, 10))
                scores["recall@100"].append(recall_at_k(ranked, relevant, 100))
                scores["mrr@10"].append(mrr_at_k(ranked, relevant, 10))
            report.results[name] = {m: float(np.mean(v)) for m, v in scores.items()} | {
                "latency_p50_ms": float(np.percentile(latencies, 50) * 1000),
                "latency_p95_ms": float(np.percentile(latencies, 95) * 1000),
            }
        return report

    def fusion_sweep(
        self, dataset: RetrievalSet, ks: Sequence[int], weights: Sequence[float], depth: int = 100
    ) -> dict[tuple[int, float], float]:
        """Mean nDCG@10 of RRF for each (k, dense weight), from one run of both retrievers."""
        store, embedder = self.enclave.store, self.enclave.embedder
        viewer = store.viewer(EVAL_USER)
        runs = []
        for qid, query in dataset.queries.items():
            dense = [i for i, _ in store.dense_search(viewer, embedder.embed_query(query), depth)]
            keyword = [i for i, _ in store.keyword_search(viewer, query, depth)]
            runs.append((dataset.qrels[qid], dense, keyword))
        results = {}
        for k in ks:
            for weight in weights:
                scores = []
                for relevant, dense, keyword in runs:
                    fused = reciprocal_rank_fusion([dense, keyword], k, (weight, 1.0))
                    ranked = self.documents_ranked([i for i, _ in fused])
                    scores.append(ndcg_at_k(ranked, relevant, 10))
                results[(k, weight)] = float(np.mean(scores))
        return results

    def qa(self, items: Sequence[QAItem], k: int = 5) -> dict[str, float]:
        """Gold-passage hit@k, answer EM / F1 and citation precision with the real LLM."""
        viewer = self.enclave.store.viewer(EVAL_USER)
        hits, em, f1, cited, cited_right, explicit = [], [], [], 0, 0, 0
        for item in items:
            answer = self.enclave.assistant.ask(viewer, item.question, k=k)
            documents = [self.doc_of.get(h.document_id) for h in answer.sources]
            hits.append(float(item.doc_id in documents))
            # The answer is scored without its citation markers ("Paris [1]" is "Paris").
            text = CITATION_MARK.sub(" ", answer.text)
            em.append(exact_match(text, item.answers))
            f1.append(token_f1(text, item.answers))
            for citation in answer.citations:
                cited += 1
                explicit += not citation.inferred
                passage = normalize_answer(citation.hit.text)
                cited_right += any(normalize_answer(a) in passage for a in item.answers)
        return {
            "questions": len(items),
            f"gold_passage_hit@{k}": float(np.mean(hits)) if hits else 0.0,
            "exact_match": float(np.mean(em)) if em else 0.0,
            "f1": float(np.mean(f1)) if f1 else 0.0,
            "citation_precision": cited_right / cited if cited else 0.0,
            "citations": cited,
            "explicit_citations": explicit,
        }


METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")


def retrieval_table(report: RetrievalReport) -> str:
    """A markdown table of one report."""
    lines = [
        f"**{report.dataset}**: {report.documents} documents, {report.queries} queries",
        "",
        "| configuration | nDCG@10 | recall@10 | recall@100 | MRR@10 | p50 ms | p95 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in report.results.items():
        lines.append(
            f"| {name} | {r['ndcg@10']:.3f} | {r['recall@10']:.3f} | {r['recall@100']:.3f} | "
            f"{r['mrr@10']:.3f} | {r['latency_p50_ms']:.1f} | {r['latency_p95_ms']:.1f} |"
        )
    return "\n".join(lines)


def save_report(report: RetrievalReport, out: Path) -> tuple[Path, Path]:
    """JSON and a bar chart (nDCG@10 and recall@10 per configuration) under out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.-]+", "_", report.dataset)
    json_path = out / f"retrieval-{stem}.json"
    json_path.write_text(json.dumps(report.__dict__, indent=2))
    names = list(report.results)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7, 4))
    for offset, metric in ((-0.2, "ndcg@10"), (0.2, "recall@10")):
        ax.bar(x + offset, [report.results[n][metric] for n in names], 0.4, label=metric)
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1)
    ax.set_title(f"{report.dataset}: {report.queries} queries")
    ax.legend()
    fig.tight_layout()
    png_path = out / f"retrieval-{stem}.png"
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return json_path, png_path
