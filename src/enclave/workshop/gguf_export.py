"""Fine-tunes -> GGUF for llama.cpp: a merged model as an F16 file, then a quantised one; or
a LoRA adapter as its own file, applied to the unchanged base at load (write_lora_adapter).

The packaged Gemma exists only as GGUF, so its merged fine-tune is written by copying the base
GGUF (metadata, tokenizer, every tensor) with the fine-tuned tensors replaced; all weights are
stored as F16 (norms stay F32). llama.cpp's own quantiser (through llama-cpp-python) then
makes the Q4_K_M file the generation backend runs by default.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

# Tensor types copied as they are; everything else is dequantised to F16 in the F16 file.
_KEEP = {"F32", "F16", "BF16"}


class ExportError(RuntimeError):
    """The fine-tune does not fit the base GGUF."""


def gguf_names(hf_names: list[str], arch: str, blocks: int) -> dict[str, str]:
    """Hugging Face tensor names -> GGUF names, by the gguf package's tensor map."""
    import gguf

    arch_id = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch)
    mapping = gguf.get_tensor_name_map(arch_id, blocks)
    out = {}
    for name in hf_names:
        mapped = mapping.get_name(name, try_suffixes=(".weight", ".bias"))
        if mapped is None:
            raise ExportError(f"no GGUF name for tensor {name!r} of a {arch} model")
        out[name] = mapped
    return out


def write_f16_gguf(base: Path, replacements: Mapping[str, np.ndarray], out: Path) -> Path:
    """Copy base with `replacements` (GGUF tensor name -> float array); weights as F16.

    Each replacement must have its tensor's shape; the first is also checked against the
    base's own values elsewhere (see check_alignment), so a wrong mapping cannot pass silently.
    """
    import gguf

    reader = gguf.GGUFReader(str(base))
    arch = str(reader.fields[gguf.Keys.General.ARCHITECTURE].contents())
    writer = gguf.GGUFWriter(str(out), arch)
    for field in reader.fields.values():
        # The writer adds the architecture and the GGUF.* header fields itself.
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        if field.name == gguf.Keys.General.FILE_TYPE:
            writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    unknown = set(replacements) - {t.name for t in reader.tensors}
    if unknown:
        raise ExportError(f"tensors not in the base GGUF: {sorted(unknown)[:5]}")
    for tensor in reader.tensors:
        if tensor.name in replacements:
            data = np.asarray(replacements[tensor.name], dtype=np.float32)
            expected = _float_shape(tensor)
            if data.shape != expected:
                raise ExportError(f"{tensor.name}: shape {data.shape}, base has {expected}")
            data = data.astype(np.float16)
        elif tensor.tensor_type.name in _KEEP:
            data = np.asarray(tensor.data)
        else:
            data = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float16)
        writer.add_tensor(tensor.name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def _float_shape(tensor: Any) -> tuple[int, ...]:
    return tuple(int(n) for n in reversed(tensor.shape.tolist()))


def base_tensor(base: Path, name: str) -> np.ndarray:
    """One tensor of a GGUF as float32 (dequantised)."""
    return base_tensors(base, [name])[name]


def base_tensors(base: Path, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Tensors of a GGUF as float32 (dequantised), the file read once (reading a large
    vocabulary's metadata takes seconds)."""
    import gguf

    wanted = set(names)
    reader = gguf.GGUFReader(str(base))
    return {
        t.name: gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        for t in reader.tensors
        if t.name in wanted
    }


def check_alignment(base: Path, gguf_name: str, hf_weight: np.ndarray) -> float:
    """Max abs difference between a base-model weight and its GGUF tensor (must be ~0)."""
    reference = base_tensor(base, gguf_name)
    if reference.shape != hf_weight.shape:
        raise ExportError(f"{gguf_name}: GGUF {reference.shape} vs model {hf_weight.shape}")
    diff = float(np.abs(reference - hf_weight).max())
    if diff > 1e-3:
        raise ExportError(f"{gguf_name} does not match the base model (max diff {diff:.3g})")
    return diff


def quantize(source: Path, target: Path, kind: str = "Q4_K_M", threads: int = 0) -> Path:
    """llama.cpp's quantiser: source GGUF (F16/F32) -> target in `kind`."""
    import llama_cpp

    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind}", None)
    if ftype is None:
        raise ExportError(f"unknown quantisation type {kind!r} (e.g. Q4_K_M, Q5_K_M, Q8_0)")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads
    with _native_stderr_to(target.with_suffix(".log")):
        status = llama_cpp.llama_model_quantize(
            str(source).encode(), str(target).encode(), ctypes.byref(params)
        )
    if status != 0 or not target.is_file():
        raise ExportError(f"llama.cpp could not quantise {source} (status {status})")
    return target


@contextmanager
def _native_stderr_to(path: Path) -> Iterator[None]:
    """llama.cpp's quantiser logs a line per tensor on the process's stderr: keep it in a file."""
    sys.stderr.flush()
    saved = os.dup(2)
    with path.open("ab") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def generation_speed(model: Path, prompt: str, tokens: int = 64, threads: int = 2) -> dict:
    """Tokens per second of llama.cpp generating from a GGUF, and the text."""
    from llama_cpp import Llama

    llm = Llama(str(model), n_ctx=1024, n_threads=threads, verbose=False)
    start = time.perf_counter()
    out = llm.create_completion(prompt, max_tokens=tokens, temperature=0.0)
    seconds = time.perf_counter() - start
    generated = out["usage"]["completion_tokens"]  # type: ignore[index]
    return {
        "tokens": generated,
        "tokens_per_second": round(generated / seconds, 1),
        "text": out["choices"][0]["text"],  # type: ignore[index]
    }


def lora_keys(keys: Iterable[str], stem: str) -> tuple[str, str]:
    """The names of a PEFT adapter's A and B matrices for one weight ("model.layers.0.mlp.up_proj"
    -> "base_model.model.model.layers.0.mlp.up_proj.lora_A.weight", ...)."""
    names = list(keys)
    a = next(k for k in names if f"{stem}.lora_A" in k)
    b = next(k for k in names if f"{stem}.lora_B" in k)
    return a, b


def write_lora_adapter(
    base: Path, adapter: Mapping[str, np.ndarray], alpha: float, out: Path
) -> Path:
    """A PEFT LoRA adapter (its safetensors' tensors) as a GGUF adapter llama.cpp applies to
    base at load time: the base file stays as it is (35 MB for rank 16 on every projection of
    a 1.5B model).

    llama.cpp reads `NAME.lora_a` as (rank x inputs) and `NAME.lora_b` as (outputs x rank),
    PEFT's own layout, and scales by alpha / rank as PEFT does.
    """
    import gguf

    reader = gguf.GGUFReader(str(base))
    arch = str(reader.fields[gguf.Keys.General.ARCHITECTURE].contents())
    blocks = int(reader.fields[f"{arch}.block_count"].contents())
    shapes = {t.name: _float_shape(t) for t in reader.tensors}
    stems = sorted({k.split(".lora_")[0].removeprefix("base_model.model.") for k in adapter})
    names = gguf_names([s + ".weight" for s in stems], arch, blocks)
    writer = gguf.GGUFWriter(str(out), arch)
    writer.add_string(gguf.Keys.General.TYPE, gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
    for stem in stems:
        a_key, b_key = lora_keys(adapter, stem)
        a, b = adapter[a_key], adapter[b_key]
        name = names[stem + ".weight"]
        if shapes.get(name) != (b.shape[0], a.shape[1]):
            raise ExportError(f"{stem}: adapter {b.shape[0]}x{a.shape[1]}, base {shapes.get(name)}")
        writer.add_tensor(f"{name}.lora_a", np.asarray(a, dtype=np.float16))
        writer.add_tensor(f"{name}.lora_b", np.asarray(b, dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
