"""Training pairs (query, passage, hard negatives) from the chunks a user may read.

Queries come from three sources: the local LLM asked to write a question a passage answers,
and two cheap heuristics: a document's title and heading path -> its passage, and one of a
passage's sentences -> the rest of the passage (the inverse cloze task). Hard negatives are
what the current retriever ranks high for the query from other documents. The split into
train and test is by document, so no test passage or its neighbours is seen in training.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from enclave.pipeline.embedding import embedding_text
from enclave.pipeline.entities import Hit
from enclave.pipeline.grounding import language_of_hit
from enclave.pipeline.llm import LLM
from enclave.pipeline.prompting import Prompt
from enclave.pipeline.retrieval import Retriever, passage
from enclave.pipeline.sentences import sentences
from enclave.pipeline.store import Viewer

QUESTION_PROMPT = (
    "Write one question that the passage answers, in the passage's language.\n\n"
    "Passage: {passage}\n\nQuestion:"
)
MIN_SENTENCE_WORDS = 6


@dataclass(frozen=True)
class TrainingPair:
    """A query, the passage that answers it (as the bi-encoder sees it) and hard negatives."""

    query: str
    positive: str
    chunk_id: int
    document_id: int
    origin: str  # "llm", "heading" or "sentence"
    negatives: tuple[str, ...] = ()
    negative_ids: tuple[int, ...] = ()


@dataclass
class PairSet:
    """Train and test pairs plus every readable passage (the test retrieval corpus).

    corpus maps chunk id -> (document id, passage as the bi-encoder sees it).
    """

    train: list[TrainingPair] = field(default_factory=list)
    test: list[TrainingPair] = field(default_factory=list)
    corpus: dict[int, tuple[int, str]] = field(default_factory=dict)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, pairs in (("train", self.train), ("test", self.test)):
            with (folder / f"{name}.jsonl").open("w", encoding="utf-8") as out:
                for pair in pairs:
                    out.write(json.dumps(asdict(pair), ensure_ascii=False) + "\n")
        with (folder / "corpus.jsonl").open("w", encoding="utf-8") as out:
            for chunk_id, (document_id, text) in self.corpus.items():
                row = {"id": chunk_id, "document_id": document_id, "text": text}
                out.write(json.dumps(row, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, folder: Path) -> PairSet:
        """Read what save() wrote; a missing folder or file is a clear error."""
        if not (folder / "train.jsonl").is_file():
            raise FileNotFoundError(f"{folder} holds no train.jsonl: run `enclave tune pairs`")

        def pairs(name: str) -> list[TrainingPair]:
            rows = (folder / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
            out = []
            for row in filter(None, rows):
                data = json.loads(row)
                data["negatives"] = tuple(data["negatives"])
                data["negative_ids"] = tuple(data["negative_ids"])
                out.append(TrainingPair(**data))
            return out

        corpus = {}
        for row in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
            if row:
                data = json.loads(row)
                corpus[int(data["id"])] = (int(data["document_id"]), data["text"])
        return cls(pairs("train"), pairs("test"), corpus)


def heading_pairs(chunks: Sequence[Hit]) -> list[TrainingPair]:
    """Title and heading path -> passage, where that path names exactly one chunk."""
    by_path: dict[str, list[Hit]] = {}
    for hit in chunks:
        path = " › ".join(dict.fromkeys([hit.title, *hit.heading_path]))
        by_path.setdefault(path, []).append(hit)
    return [
        # The positive is the bare text: the heading itself must not be the answer.
        TrainingPair(path, hit.text, hit.chunk_id, hit.document_id, "heading")
        for path, hits in by_path.items()
        for hit in hits
        if len(hits) == 1 and len(path.split()) >= 2
    ]


def sentence_pairs(chunks: Sequence[Hit], rng: random.Random) -> list[TrainingPair]:
    """One sentence of a passage -> the passage without it (inverse cloze task)."""
    out = []
    for hit in chunks:
        parts = sentences(hit.text, language_of_hit(hit))
        candidates = [s for s in parts if len(s.split()) >= MIN_SENTENCE_WORDS]
        if len(parts) < 3 or not candidates:
            continue
        query = rng.choice(candidates)
        rest = " ".join(s for s in parts if s is not query)
        context = replace_text(hit, rest)
        out.append(TrainingPair(query, context, hit.chunk_id, hit.document_id, "sentence"))
    return out


def replace_text(hit: Hit, text: str) -> str:
    return embedding_text(hit.title, hit.heading_path, text)


def llm_pairs(
    chunks: Sequence[Hit], llm: LLM, on_chunk: Callable[[], None] | None = None
) -> list[TrainingPair]:
    """The local LLM writes one question per passage; unusable output is dropped."""
    out = []
    for hit in chunks:
        request = QUESTION_PROMPT.format(passage=hit.text.strip())
        prompt = Prompt([{"role": "user", "content": request}], request)
        text = "".join(llm.stream(prompt, max_tokens=48)).strip()
        question = clean_question(text.split("\n")[0] if text else "", hit.text)
        if question:
            out.append(TrainingPair(question, passage(hit), hit.chunk_id, hit.document_id, "llm"))
        if on_chunk:
            on_chunk()
    return out


def clean_question(text: str, source: str) -> str | None:
    """A generated question if it looks like one: 3-40 words, ends in '?', not copied, and
    about this passage (shares a word of 4+ letters with it: "What is the meaning of the
    passage?" fits any passage and teaches nothing)."""
    question = text.strip().strip('"').strip()
    words = question.split()
    if not question.endswith("?") or not 3 <= len(words) <= 40:
        return None
    if question.rstrip("?").strip() in source:
        return None
    content = {w.lower() for w in re.findall(r"\w{4,}", question)}
    if not content & {w.lower() for w in re.findall(r"\w{4,}", source)}:
        return None
    return question


def split_by_document(
    pairs: Iterable[TrainingPair], test_fraction: float, seed: int
) -> tuple[list[TrainingPair], list[TrainingPair], set[int]]:
    """(train, test, test document ids): every document's pairs go to one side only."""
    pairs = list(pairs)
    documents = sorted({p.document_id for p in pairs})
    random.Random(seed).shuffle(documents)
    n_test = round(len(documents) * test_fraction) if len(documents) > 1 else 0
    if test_fraction > 0 and len(documents) > 1:
        n_test = min(max(n_test, 1), len(documents) - 1)
    test_documents = set(documents[:n_test])
    train = [p for p in pairs if p.document_id not in test_documents]
    test = [p for p in pairs if p.document_id in test_documents]
    return train, test, test_documents


def mine_negatives(
    pair: TrainingPair, retriever: Retriever, viewer: Viewer, count: int, skip: int = 2
) -> TrainingPair:
    """Add the retriever's best-ranked passages from other documents as hard negatives.

    Passages of the positive's own document are left out (they may well answer the query
    too), as are the top `skip` others, which are the likeliest unlabelled positives.
    """
    hits = retriever.search(viewer, pair.query, k=skip + count + 10)
    others = [h for h in hits if h.document_id != pair.document_id][skip : skip + count]
    return TrainingPair(
        pair.query,
        pair.positive,
        pair.chunk_id,
        pair.document_id,
        pair.origin,
        tuple(passage(h) for h in others),
        tuple(h.chunk_id for h in others),
    )
