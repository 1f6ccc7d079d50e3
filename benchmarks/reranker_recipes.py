"""Cross-encoder training recipes for the workshop's reranker step, on XQuAD German.

    .venv/bin/python benchmarks/reranker_recipes.py cache CACHE.json      # here (CPU)
    python3 benchmarks/reranker_recipes.py train CACHE.json MODEL_DIR     # on a GPU

`cache` indexes XQuAD German, reuses benchmarks/workshop/pairs-de (run workshop.py first),
mines 3 hybrid negatives per pair, adds every inverse-cloze sentence of the training
documents (negatives: BM25 hits of other documents), and stores the hybrid top 50 of each
held-out query. `train` fine-tunes a cross-encoder from MODEL_DIR with several recipes
(pointwise BCE or a listwise softmax over each query's group; 3 or 7 negatives; 2-8
epochs) and prints nDCG@10 of reranking the hybrid top 30. The recipe is chosen on the
synthetic held-out pairs, never on the human questions. A plain PyTorch loop, so it runs
where only torch and transformers are installed (the device machine).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
XQUAD = HERE.parents[1] / "shared/datasets/xquad"


def build_cache(out: Path) -> None:
    from enclave.config import Settings
    from enclave.pipeline.retrieval import Retriever, passage
    from enclave.pipeline.wiring import Enclave
    from enclave.workshop.evaluation import EVAL_USER, Evaluator, load_squad
    from enclave.workshop.training_data import MIN_SENTENCE_WORDS, sentences

    sys.path.insert(0, str(HERE))
    from workshop import saved_pairs

    data, items = load_squad(XQUAD / "xquad.de.json")
    with (
        tempfile.TemporaryDirectory() as tmp,
        Enclave(Settings.load(data_dir=Path(tmp) / "data")) as enclave,
    ):
        evaluator = Evaluator(enclave)
        evaluator.index(data, Path(tmp))
        pairs = saved_pairs(enclave, HERE / "workshop/pairs-de", 3)
        viewer = enclave.store.viewer(EVAL_USER)
        chunks = enclave.store.readable_chunks(viewer)
        corpus = {h.chunk_id: {"doc": h.document_id, "text": passage(h)} for h in chunks}
        test_docs = {p.document_id for p in pairs.test}
        train = [
            {
                "q": p.query,
                "pos_text": corpus[p.chunk_id]["text"] if p.origin != "sentence" else p.positive,
                "neg": list(p.negative_ids),
            }
            for p in pairs.train
        ]
        ict = []
        for hit in chunks:
            parts = sentences(hit.text)
            if hit.document_id in test_docs or len(parts) < 3:
                continue
            for sentence in parts:
                if len(sentence.split()) < MIN_SENTENCE_WORDS:
                    continue
                found = [i for i, _ in enclave.store.keyword_search(viewer, sentence, 20)]
                others = [i for i in found if corpus[i]["doc"] != hit.document_id]
                rest = " ".join(s for s in parts if s is not sentence)
                ict.append({"q": sentence, "pos_text": rest, "neg": others[2:9]})
        settings = enclave.settings
        hybrid = Retriever(
            enclave.store,
            enclave.embedder,
            None,
            settings.rrf_k,
            dense_weight=enclave.dense_weight,
        )
        enclave_id = {dataset_id: doc for doc, dataset_id in evaluator.doc_of.items()}
        human = [
            {"q": i.question, "doc": enclave_id[i.doc_id]}
            for i in items
            if enclave_id[i.doc_id] in test_docs
        ]
        tests = [{"q": p.query, "doc": p.document_id} for p in pairs.test]
        for row in human + tests:
            row["cands"] = [h.chunk_id for h in hybrid.search(viewer, row["q"], 50)]
    cache = {"corpus": corpus, "train": train, "ict": ict, "human": human, "tests": tests}
    out.write_text(json.dumps(cache, ensure_ascii=False))
    print(
        f"{len(train)} pairs, {len(ict)} inverse-cloze pairs, {len(human)} human and "
        f"{len(tests)} synthetic held-out queries -> {out}"
    )


class Recipes:
    """Train and evaluate cross-encoders on a cache written by build_cache."""

    def __init__(self, cache: Path, model: str):
        import torch
        from transformers import AutoTokenizer

        self.torch = torch
        self.model_dir = model
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        data = json.loads(cache.read_text())
        corpus = {int(k): v for k, v in data["corpus"].items()}
        self.text = {k: v["text"] for k, v in corpus.items()}
        self.doc = {k: v["doc"] for k, v in corpus.items()}
        self.data = data
        self.tokenizer = AutoTokenizer.from_pretrained(model)

    def fresh(self):
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification.from_pretrained(
            self.model_dir, num_labels=1, dtype=self.torch.float32
        ).to(self.device)

    def _logits(self, model, queries: list[str], passages: list[str]):
        batch = self.tokenizer(
            queries,
            passages,
            truncation=True,
            max_length=512,
            padding=True,
            return_tensors="pt",
        ).to(self.device)
        cuda = self.device == "cuda"
        with self.torch.autocast(self.device, dtype=self.torch.bfloat16, enabled=cuda):
            return model(**batch).logits[:, 0].float()

    def ndcg(self, ranked_chunks: list[int], relevant: int) -> float:
        documents = list(dict.fromkeys(self.doc[i] for i in ranked_chunks))
        for rank, document in enumerate(documents[:10]):
            if document == relevant:
                return 1 / math.log2(rank + 2)
        return 0.0

    def evaluate(self, model, rows: list[dict], depth: int = 30) -> float:
        """Mean nDCG@10 after reranking the hybrid top `depth`; None model: plain hybrid."""
        total = 0.0
        for row in rows:
            ids = row["cands"][:depth]
            if model is not None:
                model.eval()
                with self.torch.no_grad():
                    scores = self._logits(
                        model, [row["q"]] * len(ids), [self.text[i] for i in ids]
                    ).tolist()
                ids = [i for i, _ in sorted(zip(ids, scores, strict=True), key=lambda p: -p[1])]
            total += self.ndcg(ids + row["cands"][depth:], row["doc"])
        return round(total / len(rows), 4)

    def train(
        self,
        rows: list[dict],
        loss: str,
        negatives: int,
        epochs: int,
        lr: float,
        batch_size: int = 16,
        seed: int = 0,
    ):
        torch = self.torch
        torch.manual_seed(seed)
        rng = random.Random(seed)
        model = self.fresh()
        groups = [
            (r["q"], [r["pos_text"]] + [self.text[i] for i in r["neg"][:negatives]])
            for r in rows
            if r["neg"]
        ]
        steps = epochs * math.ceil(len(groups) / batch_size)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min((s + 1) / (0.1 * steps), (steps - s) / (0.9 * steps))
        )
        model.train()
        losses = []
        for _ in range(epochs):
            rng.shuffle(groups)
            for start in range(0, len(groups), batch_size):
                batch = groups[start : start + batch_size]
                logits = self._logits(
                    model, [q for q, ps in batch for _ in ps], [p for _, ps in batch for p in ps]
                )
                if loss == "bce":
                    labels = torch.tensor(
                        [float(j == 0) for _, ps in batch for j in range(len(ps))],
                        device=self.device,
                    )
                    value = torch.nn.functional.binary_cross_entropy_with_logits(
                        logits,
                        labels,
                        pos_weight=torch.tensor(float(negatives), device=self.device),
                    )
                else:  # listwise: the positive against its own group
                    sizes = [len(ps) for _, ps in batch]
                    value = sum(
                        torch.nn.functional.cross_entropy(
                            part[None], torch.zeros(1, dtype=torch.long, device=self.device)
                        )
                        for part in logits.split(sizes)
                    ) / len(batch)
                value.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                losses.append(value.item())
        return model, losses


RECIPES = {
    "bce, pairs, 3 neg, 2 ep, 5e-5": ("pairs", "bce", 3, 2, 5e-5),
    "bce, pairs+ICT, 3 neg, 2 ep, 5e-5": ("all", "bce", 3, 2, 5e-5),
    "listwise, pairs+ICT, 3 neg, 2 ep, 5e-5": ("all", "list", 3, 2, 5e-5),
    "listwise, pairs+ICT, 7 neg, 8 ep, 3e-5": ("all", "list", 7, 8, 3e-5),
    "bce, pairs+ICT, 7 neg, 4 ep, 5e-5": ("all", "bce", 7, 4, 5e-5),
}


def run_recipes(cache: Path, model: str) -> None:
    recipes = Recipes(cache, model)
    human, tests = recipes.data["human"], recipes.data["tests"]
    data = {"pairs": recipes.data["train"], "all": recipes.data["train"] + recipes.data["ict"]}
    print("| recipe | train s | first → last loss | synthetic nDCG@10 | human nDCG@10 |")
    print("|---|---:|---|---:|---:|")
    print(
        f"| hybrid, no reranker | | | {recipes.evaluate(None, tests)} | "
        f"{recipes.evaluate(None, human)} |"
    )
    print(
        f"| untuned (fresh head) | | | {recipes.evaluate(recipes.fresh(), tests)} | "
        f"{recipes.evaluate(recipes.fresh(), human)} |",
        flush=True,
    )
    for name, (which, loss, negatives, epochs, lr) in RECIPES.items():
        start = time.perf_counter()
        model, losses = recipes.train(data[which], loss, negatives, epochs, lr)
        seconds = time.perf_counter() - start
        head, tail = losses[:20], losses[-20:]
        print(
            f"| {name} | {seconds:.1f} | {sum(head) / len(head):.3f} → "
            f"{sum(tail) / len(tail):.3f} | {recipes.evaluate(model, tests)} | "
            f"{recipes.evaluate(model, human)} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    sub.add_parser("cache").add_argument("out", type=Path)
    train = sub.add_parser("train")
    train.add_argument("cache", type=Path)
    train.add_argument("model")
    args = parser.parse_args()
    if args.step == "cache":
        build_cache(args.out)
    else:
        run_recipes(args.cache, args.model)


if __name__ == "__main__":
    main()
