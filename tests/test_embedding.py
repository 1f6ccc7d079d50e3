"""Query vectors from ONNX Runtime are the model's own; without ONNX, PyTorch serves them."""

from __future__ import annotations

import numpy as np
import pytest

from enclave.pipeline.embedding import Embedder

QUERIES = [
    "How do I configure the PCI Express advanced error reporting driver?",
    "Wie viele Urlaubstage bekommen Mitarbeitende?",
    "token " * 600,  # longer than the model's window: truncated the same way
    "ß",
]


def torch_vector(embedder: Embedder, text: str) -> np.ndarray:
    return embedder.model.encode_query([text], normalize_embeddings=True, convert_to_numpy=True)[0]


def test_onnx_query_vectors_equal_the_models_own(minilm: Embedder) -> None:
    embedder = minilm
    embedder.prepare_queries()
    assert embedder._queries is not None, "the packaged model must export"
    for text in QUERIES:
        fast = embedder.embed_query(text)
        assert fast.dtype == np.float32 and fast.shape == (embedder.dim,)
        assert float(np.dot(fast, torch_vector(embedder, text))) > 0.99999


def test_a_model_that_does_not_export_still_embeds_queries(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(torch.onnx, "export", refuse)
    plain = Embedder("all-MiniLM-L6-v2", "cpu")
    for text in QUERIES[:3]:
        assert float(np.dot(plain.embed_query(text), torch_vector(plain, text))) > 0.99999
    assert plain._queries is None and not plain._exportable  # tried once, not again


def test_the_export_waits_for_a_second_query() -> None:
    """One query (a CLI search) is cheaper on PyTorch than an export; the second exports."""
    fresh = Embedder("all-MiniLM-L6-v2", "cpu")
    fresh.embed_query(QUERIES[0])
    assert fresh._queries is None
    fresh.embed_query(QUERIES[1])
    assert fresh._queries is not None
