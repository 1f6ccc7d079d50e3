"""LoRA fine-tuning of a small causal LLM (PEFT) on chat-format instruction data.

Data: JSONL, one {"messages": [{"role": ..., "content": ...}, ...]} per line, ending with the
assistant turn to learn. Models with a chat template get it; base models (Gemma 3 270M, the
workshop's default base) get the same plain completion layout that prompting.py gives them at
answer time, so what is learned is what is asked later. Loss is on the assistant's tokens only.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from enclave.pipeline.catalogue import resolve
from enclave.pipeline.prompting import completion_text
from enclave.workshop.runs import Run, plot_curves, seed_everything, training_device

# The projections LoRA adapts by default; MLP = the feed-forward ones of Llama-style models.
ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")


class ChatDataError(ValueError):
    """The instruction data cannot be used."""


@dataclass(frozen=True)
class ChatExample:
    prompt: str
    target: str


def base_gguf(name: str) -> Path | None:
    """The GGUF file a base model name means (a catalogue model, or a .gguf path), if any."""
    path = Path(resolve(name)).expanduser()
    return path if path.suffix == ".gguf" and path.is_file() else None


def load_causal_lm(name: str) -> tuple[Any, Any]:
    """(model, tokenizer) in float32; a GGUF base (the packaged Gemma) is dequantized on load."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = base_gguf(name)
    if gguf:
        source, kwargs = str(gguf.parent), {"gguf_file": gguf.name}
    else:
        source, kwargs = name, {}
    tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(source, dtype="float32", **kwargs)
    return model, tokenizer


def load_chat_examples(path: Path, tokenizer: Any) -> list[ChatExample]:
    """Prompt/target pairs from chat JSONL, formatted for this model."""
    if not path.is_file():
        raise ChatDataError(f"{path} is not a file")
    examples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            messages = json.loads(line)["messages"]
            roles = [m["role"] for m in messages]
            if not all(isinstance(m["content"], str) for m in messages):
                raise TypeError("content must be text")
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ChatDataError(f'{path}:{number}: expected {{"messages": [...]}}') from exc
        if not roles or roles[-1] != "assistant" or "user" not in roles:
            raise ChatDataError(f"{path}:{number}: needs a user turn and ends with the assistant")
        examples.append(format_chat(messages, tokenizer))
    if len(examples) < 2:
        raise ChatDataError(f"{path}: at least two examples are needed (train and held-out)")
    return examples


def format_chat(messages: Sequence[dict[str, str]], tokenizer: Any) -> ChatExample:
    """The model's chat template where it has one, else prompting.py's completion layout."""
    *context, answer = messages
    if getattr(tokenizer, "chat_template", None):
        prompt = tokenizer.apply_chat_template(
            list(context), tokenize=False, add_generation_prompt=True
        )
        return ChatExample(prompt, answer["content"] + (tokenizer.eos_token or ""))
    system = [m["content"] for m in context if m["role"] == "system"]
    user = [m["content"] for m in context if m["role"] == "user"]
    from_sources = user[-1].lstrip().startswith("Sources:")
    body = user[-1] if from_sources else f"Question: {user[-1]}"
    prompt = completion_text(system, body, worked=from_sources)
    # A base model's answer ends at a blank line (llm.py cuts there).
    return ChatExample(prompt, " " + answer["content"].strip() + "\n\n")


def _encode(example: ChatExample, tokenizer: Any, max_tokens: int) -> tuple[list, list]:
    prompt = tokenizer(example.prompt, add_special_tokens=True)["input_ids"]
    target = tokenizer(example.target, add_special_tokens=False)["input_ids"]
    # Keep the end of the prompt (the question) and all of the answer that fits.
    ids = (prompt + target)[-max_tokens:]
    labels = ([-100] * len(prompt) + target)[-max_tokens:]
    return ids, labels


def mean_loss(
    model: Any, tokenizer: Any, examples: Sequence[ChatExample], max_tokens: int
) -> float:
    """Average per-token loss on the answers (held-out loss)."""
    import torch

    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for example in examples:
            ids, labels = _encode(example, tokenizer, max_tokens)
            n = sum(label != -100 for label in labels[1:])
            if not n:
                continue
            out = model(
                input_ids=torch.tensor([ids], device=model.device),
                labels=torch.tensor([labels], device=model.device),
            )
            total += float(out.loss) * n
            tokens += n
    return total / max(tokens, 1)


def generate(model: Any, tokenizer: Any, prompt: str, max_new_tokens: int = 48) -> str:
    import torch

    model.eval()
    ids = tokenizer(prompt, return_tensors="pt").to(model.device)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.decode(out[0][ids["input_ids"].shape[1] :], skip_special_tokens=True)


def _with_lora(model: Any, rank: int, alpha: int, targets: Sequence[str]) -> tuple[Any, int]:
    """The model with LoRA adapters on the targeted projections (the rest frozen), and the
    number of trainable parameters."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=0.0,
        target_modules=list(targets),
        task_type="CAUSAL_LM",
    )
    tuned = get_peft_model(model, config)
    return tuned, sum(p.numel() for p in tuned.parameters() if p.requires_grad)


def _split(
    data: Path, eval_data: Path | None, tokenizer: Any, held_out: float, seed: int
) -> tuple[list[ChatExample], list[ChatExample]]:
    """(train, held-out): eval_data's examples if given, else a seeded fraction of data."""
    examples = load_chat_examples(data, tokenizer)
    if eval_data:
        return examples, load_chat_examples(eval_data, tokenizer)
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_test = min(max(1, round(len(examples) * held_out)), len(examples) - 1)
    return [examples[i] for i in order[n_test:]], [examples[i] for i in order[:n_test]]


def _train_steps(
    model: Any,
    encoded: list[tuple[list[int], list[int]]],
    tokenizer: Any,
    device: str,
    steps: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    on_step: Callable[[int, float], None] | None,
) -> tuple[list[tuple[float, float]], int, float]:
    """AdamW steps on seeded random batches: (loss curve, tokens seen, seconds)."""
    import torch

    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=learning_rate
    )
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rng = random.Random(seed)
    losses: list[tuple[float, float]] = []
    seen_tokens = 0
    start = time.perf_counter()
    model.train()
    for step in range(1, steps + 1):
        batch = [encoded[rng.randrange(len(encoded))] for _ in range(batch_size)]
        width = max(len(ids) for ids, _ in batch)
        ids = torch.tensor([i + [pad] * (width - len(i)) for i, _ in batch], device=device)
        labels = torch.tensor([lb + [-100] * (width - len(lb)) for _, lb in batch], device=device)
        mask = torch.tensor(
            [[1] * len(i) + [0] * (width - len(i)) for i, _ in batch], device=device
        )
        # bfloat16 on a GPU: several times the float32 speed; the adapter stays float32.
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        # One batch whose gradients are not finite would make every weight NaN: it is skipped.
        norm = torch.nn.utils.clip_grad_norm_(
            [p for p in model.parameters() if p.requires_grad], 1.0
        )
        if torch.isfinite(norm):
            optimizer.step()
        optimizer.zero_grad()
        seen_tokens += int(mask.sum())
        value = float(loss.detach())
        losses.append((step, round(value, 4)))
        if on_step:
            on_step(step, value)
    return losses, seen_tokens, time.perf_counter() - start


def _held_out(
    model: Any, tokenizer: Any, test: Sequence[ChatExample], max_tokens: int
) -> tuple[float, str]:
    """The held-out loss, and the model's answer to the first held-out prompt."""
    return mean_loss(model, tokenizer, test, max_tokens), generate(model, tokenizer, test[0].prompt)


def train_lora(
    base: str,
    data: Path,
    run: Run,
    steps: int = 20,
    batch_size: int = 4,
    learning_rate: float = 2e-4,
    rank: int = 8,
    alpha: int = 16,
    max_tokens: int = 512,
    held_out: float = 0.1,
    seed: int = 0,
    on_step: Callable[[int, float], None] | None = None,
    merge: bool = True,
    eval_data: Path | None = None,
    targets: Sequence[str] = ATTENTION,
) -> dict[str, Any]:
    """LoRA on the targeted projections; saves run/adapter and (merge) run/merged.

    Held out: eval_data if given (e.g. other documents' questions), else a random `held_out`
    fraction of data. Returns held-out loss and a sample answer before and after, and the
    training throughput.
    """
    seed_everything(seed)
    model, tokenizer = load_causal_lm(base)
    device = training_device()
    model.to(device)
    train, test = _split(data, eval_data, tokenizer, held_out, seed)
    before, sample_before = _held_out(model, tokenizer, test, max_tokens)
    model, trainable = _with_lora(model, rank, alpha, targets)
    encoded = [_encode(e, tokenizer, max_tokens) for e in train]
    losses, seen_tokens, seconds = _train_steps(
        model, encoded, tokenizer, device, steps, batch_size, learning_rate, seed, on_step
    )
    after, sample_after = _held_out(model, tokenizer, test, max_tokens)
    model.save_pretrained(str(run.folder / "adapter"))
    if merge:
        save_merged(model, tokenizer, run.folder / "merged")
    plot_curves(run.folder / "loss.png", {"train loss": losses}, "LoRA fine-tuning")
    return {
        "base": base,
        "device": device,
        "train_examples": len(train),
        "held_out_examples": len(test),
        "trainable_parameters": trainable,
        "held_out_loss_before": round(before, 4),
        "held_out_loss_after": round(after, 4),
        "held_out_perplexity_before": round(math.exp(before), 2),
        "held_out_perplexity_after": round(math.exp(after), 2),
        "sample_prompt_tail": test[0].prompt[-300:],
        "sample_reference": test[0].target.strip(),
        "sample_before": sample_before.strip(),
        "sample_after": sample_after.strip(),
        "train_tokens_per_second": round(seen_tokens / seconds, 1),
        "train_seconds": round(seconds, 1),
        "loss": losses,
        "adapter": str(run.folder / "adapter"),
        "merged": str(run.folder / "merged") if merge else None,
    }


def save_merged(peft_model: Any, tokenizer: Any, folder: Path) -> Path:
    """Fold the LoRA update into the weights and save a plain model."""
    merged = peft_model.merge_and_unload()
    # Loaded from GGUF, the weights are plain float tensors by now; the GGUF loader's marker
    # would only refuse to save them.
    merged.hf_quantizer = None
    if hasattr(merged.config, "quantization_config"):
        del merged.config.quantization_config
    merged.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def merge_adapter(base: str, adapter: Path, folder: Path) -> Path:
    """Load base with a saved adapter (as generation would) and save the merged model."""
    from peft import PeftModel

    model, tokenizer = load_causal_lm(base)
    return save_merged(PeftModel.from_pretrained(model, str(adapter)), tokenizer, folder)


def _tuned_tensors(merged_dir: Path, targets: tuple[str, ...]) -> dict[str, Any]:
    """The merged model's tensors of the LoRA-targeted modules, as float32 arrays."""
    from safetensors import safe_open

    tensors: dict[str, Any] = {}
    for file in sorted(merged_dir.glob("*.safetensors")):
        with safe_open(str(file), framework="numpy") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open is not a dict)
                if key.rsplit(".", 2)[-2] in targets:
                    tensors[key] = handle.get_tensor(key).astype(np.float32)
    return tensors


def _lora_factors(adapter_dir: Path, tensor: str) -> tuple[Any, Any]:
    """The adapter's A and B matrices for one merged tensor."""
    from safetensors import safe_open

    from enclave.workshop.gguf_export import lora_keys

    with safe_open(str(adapter_dir / "adapter_model.safetensors"), framework="numpy") as handle:
        a, b = lora_keys(handle.keys(), tensor.removesuffix(".weight"))
        return handle.get_tensor(a), handle.get_tensor(b)


def _measured(path: Path, prompt: str, tokens: int) -> dict[str, Any]:
    from enclave.workshop.gguf_export import generation_speed

    return {"path": str(path), "mb": round(path.stat().st_size / 2**20, 1)} | generation_speed(
        path, prompt, tokens
    )


def export_to_gguf(
    run_folder: Path, base: str, quantization: str = "Q4_K_M", speed_tokens: int = 64
) -> dict[str, Any]:
    """The merged model of a `tune llm` run as F16 GGUF and quantised GGUF, measured.

    Only a GGUF base (the packaged Gemma or a .gguf file) can be written this way: its
    fine-tuned tensors replace the base's. For a Hugging Face model use llama.cpp's
    convert_hf_to_gguf.py on run/merged.
    """
    from enclave.workshop.gguf_export import (
        ExportError,
        check_alignment,
        gguf_names,
        quantize,
        write_f16_gguf,
    )

    source = base_gguf(base)
    if source is None:
        raise ExportError(
            "GGUF export here starts from a GGUF base (a catalogue model such as gemma-3-270m, "
            "or a .gguf file); "
            f"for {base!r} run llama.cpp's convert_hf_to_gguf.py on {run_folder / 'merged'}"
        )
    merged_dir, adapter_dir = run_folder / "merged", run_folder / "adapter"
    adapter_config = json.loads((adapter_dir / "adapter_config.json").read_text())
    scale = adapter_config["lora_alpha"] / adapter_config["r"]
    targets = tuple(adapter_config["target_modules"])
    tensors = _tuned_tensors(merged_dir, targets)
    config = json.loads((merged_dir / "config.json").read_text())
    text_config = config.get("text_config", config)
    names = gguf_names(
        list(tensors),
        config.get("model_type", "gemma3").removesuffix("_text"),
        int(text_config["num_hidden_layers"]),
    )
    # The mapping must put each tensor where llama.cpp expects it: undo the LoRA update of the
    # first one and compare with the base GGUF's values.
    first = sorted(tensors)[0]
    a, b = _lora_factors(adapter_dir, first)
    alignment = check_alignment(source, names[first], tensors[first] - scale * (b @ a))
    f16 = write_f16_gguf(
        source, {names[k]: v for k, v in tensors.items()}, run_folder / "model-f16.gguf"
    )
    quantized = quantize(f16, run_folder / f"model-{quantization.lower()}.gguf", quantization)
    prompt = "Question: What is the capital of Germany?\nAnswer:"
    return {
        "alignment_max_diff": alignment,
        "replaced_tensors": len(tensors),
        "f16": _measured(f16, prompt, speed_tokens),
        quantization: _measured(quantized, prompt, speed_tokens),
        "base_packaged": _measured(source, prompt, speed_tokens),
    }
