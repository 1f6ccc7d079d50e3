"""LoRA fine-tuning of the packaged Gemma on tiny data, merge, GGUF export and quantisation,
through the real models (a few CPU steps)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from enclave.config import ConfigError, Settings
from enclave.pipeline.entities import Hit
from enclave.pipeline.llamacpp import LlamaCppLLM
from enclave.pipeline.llm import load_llm
from enclave.pipeline.prompting import INSTRUCTION, Prompt, build_prompt
from enclave.workshop.gguf_export import (
    ExportError,
    base_tensors,
    gguf_names,
    write_f16_gguf,
    write_lora_adapter,
)
from enclave.workshop.lora import (
    ChatDataError,
    base_gguf,
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


def _last_logits(model: Path, prompt: bytes, lora: Path | None = None) -> np.ndarray:
    from llama_cpp import Llama

    llm = Llama(
        str(model),
        n_ctx=128,
        n_threads=2,
        verbose=False,
        logits_all=True,
        lora_path=str(lora) if lora else None,
    )
    tokens = llm.tokenize(prompt)
    llm.eval(tokens)
    return np.array(llm.scores[len(tokens) - 1], dtype=np.float64)


def test_a_lora_adapter_as_gguf_is_applied_by_llama_cpp_as_merged_weights(tmp_path: Path) -> None:
    """The adapter file llama.cpp applies at load gives the logits of the merged model."""
    base = base_gguf("gemma-3-270m")
    assert base is not None
    rng = np.random.default_rng(0)
    rank, alpha = 4, 8.0
    stems = [f"model.layers.{n}.self_attn.{p}" for n in range(18) for p in ("q_proj", "v_proj")]
    names = gguf_names([stem + ".weight" for stem in stems], "gemma3", 18)
    weights = base_tensors(base, list(names.values()))
    adapter, merged = {}, {}
    for stem in stems:
        name = names[stem + ".weight"]
        a = rng.normal(0, 0.05, (rank, weights[name].shape[1])).astype(np.float32)
        b = rng.normal(0, 0.05, (weights[name].shape[0], rank)).astype(np.float32)
        adapter[f"base_model.model.{stem}.lora_A.weight"] = a
        adapter[f"base_model.model.{stem}.lora_B.weight"] = b
        merged[name] = weights[name] + (alpha / rank) * (b @ a)
    lora = write_lora_adapter(base, adapter, alpha, tmp_path / "adapter.gguf")
    plain = write_f16_gguf(base, {}, tmp_path / "base-f16.gguf")
    folded = write_f16_gguf(base, merged, tmp_path / "merged-f16.gguf")
    prompt = b"Question: Where is Nordlicht Systems based?\nAnswer:"
    expected = _last_logits(folded, prompt)
    applied = _last_logits(plain, prompt, lora)
    untouched = _last_logits(plain, prompt)
    assert np.abs(untouched - expected).max() > 1.0  # the adapter changes what the model says
    assert np.abs(applied - expected).max() < 0.1 * np.abs(untouched - expected).max()
    assert applied.argmax() == expected.argmax()


def test_a_lora_adapter_that_does_not_fit_the_base_is_refused(tmp_path: Path) -> None:
    base = base_gguf("gemma-3-270m")
    assert base is not None
    stem = "base_model.model.model.layers.0.self_attn.q_proj"
    adapter = {
        f"{stem}.lora_A.weight": np.zeros((4, 17), dtype=np.float32),
        f"{stem}.lora_B.weight": np.zeros((640, 4), dtype=np.float32),
    }
    with pytest.raises(ExportError, match="q_proj"):
        write_lora_adapter(base, adapter, 8.0, tmp_path / "adapter.gguf")


def test_the_configured_lora_adapter_is_applied_to_the_answering_model(tmp_path: Path) -> None:
    base = base_gguf("gemma-3-270m")
    assert base is not None
    rng = np.random.default_rng(1)
    stems = [f"model.layers.{n}.self_attn.o_proj" for n in range(18)]
    names = gguf_names([stem + ".weight" for stem in stems], "gemma3", 18)
    weights = base_tensors(base, list(names.values()))
    adapter = {}
    for stem in stems:
        outputs, inputs = weights[names[stem + ".weight"]].shape
        adapter[f"base_model.model.{stem}.lora_A.weight"] = rng.normal(0, 0.5, (4, inputs))
        adapter[f"base_model.model.{stem}.lora_B.weight"] = rng.normal(0, 0.5, (outputs, 4))
    lora = write_lora_adapter(base, adapter, 8.0, tmp_path / "adapter.gguf")
    prompt = Prompt([], "Question: Where is Nordlicht Systems based?\nAnswer:")
    answers = []
    for setting in ("", str(lora)):
        settings = Settings.load(data_dir=tmp_path, llm_model="gemma-3-270m", llm_lora=setting)
        answers.append("".join(load_llm(settings).stream(prompt, 8)))
    assert answers[0] != answers[1]
    with pytest.raises(ConfigError, match="ENCLAVE_LLM_LORA"):
        load_llm(Settings.load(data_dir=tmp_path, llm_lora=str(tmp_path / "missing.gguf")))
