"""Wires the pipeline's parts together from Settings; models load on first use."""

from __future__ import annotations

import logging
from functools import cached_property
from threading import Thread
from typing import TYPE_CHECKING

import psycopg

from enclave.config import DEFAULT_EMBEDDING_MODEL, ConfigError, Settings
from enclave.pipeline.answering import Assistant
from enclave.pipeline.chunking import Chunker
from enclave.pipeline.embedding import TextEmbedder, load_embedder, same_model
from enclave.pipeline.llm import LLM, load_llm
from enclave.pipeline.reranking import Reranker
from enclave.pipeline.retrieval import Retriever
from enclave.pipeline.store import Store

if TYPE_CHECKING:
    # Loaders import parsers for every format; a search or an answer needs none of them.
    from enclave.pipeline.ingest import Ingestor


log = logging.getLogger("enclave.store")


class Enclave:
    """One instance per process: the store, the models and the services built on them."""

    def __init__(self, settings: Settings):
        self.settings = settings

    @cached_property
    def store(self) -> Store:
        return Store(self.settings)

    @cached_property
    def embedder(self) -> TextEmbedder:
        indexed = self.store.indexed_embedding_model()
        wanted = self.settings.embedding_model or indexed or DEFAULT_EMBEDDING_MODEL
        if indexed and not same_model(wanted, indexed):
            raise ConfigError(
                f"the index was built with embedding model {indexed!r}, not {wanted!r}: unset "
                "ENCLAVE_EMBEDDING_MODEL, or switch with `enclave reindex --embedding-model`"
            )
        return load_embedder(wanted, self.settings.embedding_device)

    @cached_property
    def chunker(self) -> Chunker:
        # Leave room in the model's window for the title/heading context and special tokens.
        window = self.embedder.max_tokens - 32
        return Chunker(
            self.embedder.count_tokens,
            min(self.settings.chunk_tokens, window),
            self.settings.chunk_overlap,
        )

    @cached_property
    def ingestor(self) -> Ingestor:
        from enclave.pipeline.ingest import Ingestor

        classifier = None
        if self.settings.classifier_model:
            from enclave.pipeline.classification import DataError, TextClassifier

            try:
                classifier = TextClassifier(self.settings.classifier_model)
            except (DataError, OSError) as exc:
                raise ConfigError(f"ENCLAVE_CLASSIFIER_MODEL / --classifier: {exc}") from exc
        return Ingestor(
            self.store,
            self.embedder,
            self.chunker,
            self.settings.max_file_mb,
            classifier=classifier,
        )

    @cached_property
    def reranker(self) -> Reranker | None:
        return Reranker(self.settings.reranker_model) if self.settings.reranker_model else None

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever(
            self.store,
            self.embedder,
            self.reranker,
            self.settings.rrf_k,
            self.settings.rerank_candidates,
            self.dense_weight,
        )

    def _model_default(self, name: str) -> float:
        """A setting that defaults to the embedding model's own value (measured per model)."""
        value = getattr(self.settings, name)
        return getattr(self.embedder, name) if value is None else value

    @property
    def dense_weight(self) -> float:
        """The dense ranking's weight in fusion."""
        return self._model_default("dense_weight")

    @property
    def min_similarity(self) -> float:
        """Least similarity of a passage that can answer."""
        return self._model_default("min_similarity")

    @property
    def min_similarity_across(self) -> float:
        """The same for a passage in another language than the search query: the setting,
        else the same as for one in its language."""
        if self.settings.min_similarity_across is None:
            return self.min_similarity
        return self.settings.min_similarity_across

    @property
    def source_margin(self) -> float:
        """How far below the best source one may score and be shown to the LLM."""
        return self._model_default("source_margin")

    @property
    def sure_similarity(self) -> float:
        """From what similarity a cited passage is surely about the question."""
        return self._model_default("sure_similarity")

    @cached_property
    def llm(self) -> LLM:
        return load_llm(self.settings)

    @cached_property
    def assistant(self) -> Assistant:
        return Assistant(
            self.retriever,
            self.llm,
            self.settings.llm_context,
            self.settings.max_answer_tokens,
            self.min_similarity,
            self.min_similarity_across,
            self.source_margin,
            self.sure_similarity,
            self.settings.answer_hold_chars,
            self.settings.translate_queries == "on",
        )

    def warm_up(self) -> None:
        """Load the models now and warm the store's indexes in the background (a server
        should not make its first callers wait for either)."""
        _ = self.assistant
        self.embedder.prepare_queries()
        Thread(target=self._warm_store, name="enclave-warm-up", daemon=True).start()

    def _warm_store(self) -> None:
        try:
            probes = self.store.warm_up()
        except psycopg.Error as exc:  # the server stopping meanwhile; nothing depends on it
            log.info("index warm-up stopped: %s", exc)
        else:
            log.info("index warm-up: %d searches", probes)

    def close(self) -> None:
        """Release the database (and with it the embedded server)."""
        if "store" in self.__dict__:
            self.store.close()

    def __enter__(self) -> Enclave:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
