"""LoRA fine-tuning of the packaged Gemma on tiny data, merge, GGUF export and quantisation,
through the real models (a few CPU steps)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from enclave.pipeline.entities import Hit
from enclave.pipeline.llamacpp import LlamaCppLLM
from enclave.pipeline.prompting import INSTRUCTION, Prompt, build_prompt
from enclave.workshop.lora import (
    ChatDataError,
    export_to_gguf,
    format_chat,
    load_chat_examples,
    train_lora,
)
from enclave.workshop.runs import Run

BASE_TOKENIZER = SimpleNamespace(chat_template=None, eos_token="<eos>")


def chat(user: str, answer: str, system: str = INSTRUCTION) -> dict:
    return {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
            {"role": "assistant", "content": answer},
        ]
    }


def test_base_model_examples_use_the_answering_prompt_layout() -> None:
    """What LoRA teaches a base model is exactly the completion prompt it gets when asked."""
    hit = Hit(1, 1, "Audit log", "/a", 0, "Entries are kept for 400 days.", None, (), 0, 30)
    prompt = build_prompt("How long are entries kept?", [hit], 4000)
    user = prompt.messages[-1]["content"]
    example = format_chat(chat(user, "400 days [1]")["messages"], BASE_TOKENIZER)
    assert example.prompt == prompt.completion
    assert example.target == " 400 days [1]\n\n"


def test_bad_chat_data_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "chat.jsonl"
    data.write_text(json.dumps(chat("q", "a")) + "\n{broken\n")
    with pytest.raises(ChatDataError, match=r"chat\.jsonl:2"):
        load_chat_examples(data, BASE_TOKENIZER)
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "only a question"}]}))
    with pytest.raises(ChatDataError, match="ends with the assistant"):
        load_chat_examples(data, BASE_TOKENIZER)
    data.write_text(json.dumps(chat("q", "a")))
    with pytest.raises(ChatDataError, match="at least two"):
        load_chat_examples(data, BASE_TOKENIZER)


FACTS = [
    ("Where is Nordlicht Systems based?", "Hamburg."),
    ("How long does Lumen keep audit entries?", "400 days."),
    ("Which format does the audit export use?", "CSV."),
    ("Who approves vacation requests?", "The team lead."),
    ("When are salaries paid?", "On the last working day."),
    ("Which port does the syslog forwarder use?", "6514."),
]


def test_lora_trains_merges_and_runs_as_quantised_gguf(tmp_path: Path) -> None:
    data = tmp_path / "chat.jsonl"
    data.write_text("\n".join(json.dumps(chat(q, a, "Answer briefly.")) for q, a in FACTS))
    run = Run.create(tmp_path, "llm", {})
    steps: list[float] = []
    metrics = train_lora(
        "gemma-3-270m",
        data,
        run,
        steps=2,
        batch_size=2,
        learning_rate=1e-3,
        max_tokens=64,
        held_out=0.34,
        on_step=lambda _step, loss: steps.append(loss),
    )
    assert len(steps) == 2 and all(math.isfinite(v) for v in steps)
    assert metrics["held_out_examples"] == 2 and metrics["train_examples"] == 4
    assert metrics["trainable_parameters"] > 0
    assert metrics["held_out_loss_after"] != metrics["held_out_loss_before"]
    assert (run.folder / "adapter" / "adapter_model.safetensors").is_file()
    assert (run.folder / "merged" / "config.json").is_file()

    exported = export_to_gguf(run.folder, "gemma-3-270m", speed_tokens=8)
    assert exported["alignment_max_diff"] < 1e-3
    assert exported["replaced_tensors"] == 4 * 18  # q, k, v, o in each of Gemma's 18 blocks
    assert exported["Q4_K_M"]["mb"] < exported["f16"]["mb"] / 1.8
    assert exported["Q4_K_M"]["tokens"] > 0
    # The quantised fine-tune is an ordinary ENCLAVE_LLM_MODEL for the answering backend.
    llm = LlamaCppLLM(exported["Q4_K_M"]["path"], context=512, threads=2)
    text = "".join(llm.stream(Prompt([], "Question: Where is Nordlicht based?\nAnswer:"), 8))
    assert text.strip()
