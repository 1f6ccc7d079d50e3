"""LoRA on Gemma 3 270M: answer from numbered sources and cite them (XQuAD, held-out articles).

    .venv/bin/python benchmarks/lora.py data OUT            # chat JSONL from XQuAD English
    python3 benchmarks/lora.py train OUT --base M.gguf      # LoRA (GPU where there is one)
    .venv/bin/python benchmarks/lora.py finish OUT          # merge, GGUF, quantise, QA eval
    .venv/bin/python benchmarks/lora.py check OUT           # CPU loss cross-check, speeds

Training examples are the answering prompt itself (prompting.py: instruction, the gold
paragraph as source [1], the question) with "<answer> [1]" as the target. Articles 1-38 train,
39-48 are held out: held-out loss, and answer EM/F1 + citation precision of the base model
against the quantised fine-tune through the real pipeline (retrieval included) on held-out
questions. Writes benchmarks/lora.md and benchmarks/lora/*.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRAIN_ARTICLES = 38


def make_data(xquad: Path, out: Path) -> None:
    from enclave.pipeline.prompting import INSTRUCTION

    out.mkdir(parents=True, exist_ok=True)
    articles = json.loads((xquad / "xquad.en.json").read_text(encoding="utf-8"))["data"]
    for name, part in (("train", articles[:TRAIN_ARTICLES]), ("test", articles[TRAIN_ARTICLES:])):
        with (out / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
            for article in part:
                for paragraph in article["paragraphs"]:
                    for qa in paragraph["qas"]:
                        user = (
                            f"Sources:\n\n[1] {article['title']}\n{paragraph['context'].strip()}"
                            f"\n\nQuestion: {qa['question'].strip()}"
                        )
                        messages = [
                            {"role": "system", "content": INSTRUCTION},
                            {"role": "user", "content": user},
                            {"role": "assistant", "content": f"{qa['answers'][0]['text']} [1]"},
                        ]
                        handle.write(json.dumps({"messages": messages}) + "\n")


def train(out: Path, base: str, steps: int, batch_size: int) -> None:
    from enclave.workshop.lora import train_lora
    from enclave.workshop.runs import Run

    run = Run.create(out, "llm", {"base": base, "steps": steps, "batch_size": batch_size})
    metrics = train_lora(
        base,
        out / "train.jsonl",
        run,
        steps=steps,
        batch_size=batch_size,
        learning_rate=2e-4,
        rank=16,
        alpha=32,
        max_tokens=384,
        merge=False,
        eval_data=out / "test.jsonl",
        on_step=lambda step, loss: (
            print(f"step {step} loss {loss:.3f}", flush=True) if step % 20 == 0 else None
        ),
    )
    (out / "train-metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps({k: v for k, v in metrics.items() if k != "loss"}, indent=2))


def finish(out: Path, xquad: Path, questions: int) -> None:
    from enclave.config import Settings
    from enclave.pipeline.wiring import Enclave
    from enclave.workshop.evaluation import Evaluator, load_squad
    from enclave.workshop.lora import export_to_gguf, merge_adapter

    run = next(out.glob("llm-*"))
    merge_adapter("gemma-3-270m", run / "adapter", run / "merged")
    exported = export_to_gguf(run, "gemma-3-270m")
    data, items = load_squad(xquad / "xquad.en.json")
    # load_squad names paragraphs "<article index>-<paragraph index>".
    held_out = [i for i in items if int(i.doc_id.split("-")[0]) >= TRAIN_ARTICLES][:questions]
    qa = {}
    for label, model in (("base", "gemma-3-270m"), ("LoRA", exported["Q4_K_M"]["path"])):
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings.load(data_dir=Path(tmp) / "data", llm_model=model)
            with Enclave(settings) as enclave:
                evaluator = Evaluator(enclave)
                evaluator.index(data, Path(tmp))
                qa[label] = evaluator.qa(held_out, k=5)
        print(label, qa[label], flush=True)
    trained = json.loads((out / "train-metrics.json").read_text())
    report = {"train": {k: v for k, v in trained.items() if k != "loss"}, "gguf": exported}
    report["qa"] = qa
    (HERE / "lora").mkdir(exist_ok=True)
    (HERE / "lora" / "metrics.json").write_text(json.dumps(report, indent=2))
    write_report(report, len(held_out))


def check(out: Path, examples: int) -> None:
    """On this machine's CPU: held-out loss of base and LoRA on the first held-out examples,
    and llama.cpp speed of the three GGUF files (run on an otherwise idle machine)."""
    from peft import PeftModel

    from enclave.workshop.gguf_export import generation_speed
    from enclave.workshop.lora import base_gguf, load_causal_lm, load_chat_examples, mean_loss

    run = next(out.glob("llm-*"))
    model, tokenizer = load_causal_lm("gemma-3-270m")
    test = load_chat_examples(out / "test.jsonl", tokenizer)[:examples]
    cpu = {"examples": len(test), "base": mean_loss(model, tokenizer, test, 384)}
    tuned = PeftModel.from_pretrained(model, str(run / "adapter"))
    cpu["LoRA"] = mean_loss(tuned, tokenizer, test, 384)
    report = json.loads((HERE / "lora" / "metrics.json").read_text())
    report["cpu_held_out_loss"] = {
        k: round(v, 4) if isinstance(v, float) else v for k, v in cpu.items()
    }
    prompt = "Question: What is the capital of Germany?\nAnswer:"
    for key, path in (
        ("base_packaged", base_gguf("gemma-3-270m")),
        ("f16", run / "model-f16.gguf"),
        ("Q4_K_M", run / "model-q4_k_m.gguf"),
    ):
        report["gguf"][key] |= generation_speed(Path(str(path)), prompt, 64)
    (HERE / "lora" / "metrics.json").write_text(json.dumps(report, indent=2))
    write_report(report, report["qa"]["base"]["questions"])


def write_report(report: dict, questions: int) -> None:
    t, g, qa = report["train"], report["gguf"], report["qa"]
    lines = [
        "# LoRA fine-tune of Gemma 3 270M (answer from sources, cite them)",
        "",
        "Generated by `benchmarks/lora.py`. XQuAD English, articles 1-38 train, 39-48 held out.",
        f"Training on {t['device']}: {t['train_examples']} examples, "
        f"{t['trainable_parameters']:,} trainable parameters, "
        f"{t['train_tokens_per_second']} tokens/s, {t['train_seconds']} s.",
        "",
        "| measure | base | LoRA |",
        "|---|---:|---:|",
        f"| held-out loss ({t['held_out_examples']} answers) | {t['held_out_loss_before']} | "
        f"{t['held_out_loss_after']} |",
    ]
    if "cpu_held_out_loss" in report:
        c = report["cpu_held_out_loss"]
        lines.append(
            f"| held-out loss recomputed on the CPU (first {c['examples']}) | {c['base']} | "
            f"{c['LoRA']} |"
        )
    for key in ("exact_match", "f1", "citation_precision", "citations", "explicit_citations"):
        if key in qa["base"]:
            lines.append(
                f"| {key} ({questions} held-out questions, Q4_K_M, retrieval on) | "
                f"{qa['base'][key]:.3g} | {qa['LoRA'][key]:.3g} |"
            )
    lines += [
        "",
        "| file | MB | tokens/s (llama.cpp, 2 threads) |",
        "|---|---:|---:|",
        f"| packaged base Q4_K_M | {g['base_packaged']['mb']} | "
        f"{g['base_packaged']['tokens_per_second']} |",
        f"| merged fine-tune F16 | {g['f16']['mb']} | {g['f16']['tokens_per_second']} |",
        f"| merged fine-tune Q4_K_M | {g['Q4_K_M']['mb']} | {g['Q4_K_M']['tokens_per_second']} |",
        "",
        f"Sample (held-out): …{t['sample_prompt_tail'][-160:]!r}",
        f"- reference: {t['sample_reference']!r}",
        f"- before: {t['sample_before'][:160]!r}",
        f"- after: {t['sample_after'][:160]!r}",
        "",
    ]
    (HERE / "lora.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=["data", "train", "finish", "check"])
    parser.add_argument("out", type=Path)
    parser.add_argument("--xquad", type=Path, default=HERE.parents[1] / "shared/datasets/xquad")
    parser.add_argument("--base", default="gemma-3-270m")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--questions", type=int, default=60)
    args = parser.parse_args()
    if args.stage == "data":
        make_data(args.xquad, args.out)
    elif args.stage == "train":
        train(args.out, args.base, args.steps, args.batch_size)
    elif args.stage == "finish":
        finish(args.out, args.xquad, args.questions)
    else:
        check(args.out, 40)


if __name__ == "__main__":
    sys.exit(main())
