"""The one place for configuration: environment variables, overridden by CLI flags."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
DEFAULT_LLM_MODEL = "gemma-3-270m"


class ConfigError(Exception):
    """A setting is missing or points at something that cannot be used."""


@dataclass(frozen=True)
class Settings:
    """Every tunable of Enclave. Each field maps to the env var ENCLAVE_<FIELD_NAME>."""

    data_dir: Path
    # Empty: start a private PostgreSQL server inside data_dir.
    database_url: str = ""
    # Empty: the model the index was built with (after `enclave reindex` a fine-tuned one),
    # or DEFAULT_EMBEDDING_MODEL for a new index.
    embedding_model: str = ""
    # Empty: no cross-encoder rerank.
    reranker_model: str = ""
    rerank_candidates: int = 30
    # Empty: documents are not classified at ingest; else a `tune classifier` model folder.
    classifier_model: str = ""
    llm_backend: str = "llama-cpp"  # or "openai"
    llm_model: str = DEFAULT_LLM_MODEL
    llm_base_url: str = ""
    llm_api_key: str = ""
    llm_threads: int = max(1, os.cpu_count() or 1)
    llm_context: int = 4096
    # How long a request waits for the in-process model before it is refused (503).
    llm_wait_seconds: int = 120
    max_answer_tokens: int = 256
    chunk_tokens: int = 200
    chunk_overlap: float = 0.15
    max_file_mb: int = 50
    # Below this many permitted chunks, dense search is an exact scan instead of HNSW.
    exact_search_limit: int = 20000
    rrf_k: int = 10
    # Weight of the dense ranking in fusion (BM25's is 1); chosen on XQuAD, see README.
    dense_weight: float = 0.5

    @classmethod
    def load(cls, **overrides: object) -> Settings:
        """Settings from the environment, then non-None keyword overrides (CLI flags)."""
        values: dict[str, object] = {}
        for field in fields(cls):
            raw = os.environ.get(f"ENCLAVE_{field.name.upper()}")
            if raw is None:
                continue
            values[field.name] = _coerce(field.name, raw, field.type)
        if "data_dir" not in values:
            values["data_dir"] = Path.home() / ".local" / "share" / "enclave"
        settings = cls(**values)  # type: ignore[arg-type]
        given = {k: v for k, v in overrides.items() if v is not None}
        if "data_dir" in given:
            given["data_dir"] = Path(str(given["data_dir"]))
        return replace(settings, **given).normalised()

    def normalised(self) -> Settings:
        """Validate values that would otherwise fail far from where they were set."""
        if self.llm_backend not in ("llama-cpp", "openai"):
            raise ConfigError(
                f"ENCLAVE_LLM_BACKEND must be 'llama-cpp' or 'openai', not {self.llm_backend!r}"
            )
        if self.chunk_tokens < 16:
            raise ConfigError("ENCLAVE_CHUNK_TOKENS must be at least 16")
        if not 0 <= self.chunk_overlap < 0.5:
            raise ConfigError("ENCLAVE_CHUNK_OVERLAP must be a fraction in [0, 0.5)")
        return replace(self, data_dir=self.data_dir.expanduser().resolve())


def _coerce(name: str, raw: str, annotation: object) -> object:
    kind = str(annotation)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"ENCLAVE_{name.upper()}={raw!r} is not a {kind}") from exc
    if kind == "Path":
        return Path(raw)
    return raw
