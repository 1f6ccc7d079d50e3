"""Optional cross-encoder reranking of fused candidates."""

from __future__ import annotations

from collections.abc import Sequence

from enclave.config import ConfigError
from enclave.pipeline.embedding import resolve_model_path


class Reranker:
    """A sentence-transformers CrossEncoder scoring (query, passage) pairs."""

    def __init__(self, name: str, device: str = "cpu"):
        from sentence_transformers import CrossEncoder

        self.name = name
        path = resolve_model_path(name, "ENCLAVE_RERANKER_MODEL", {})
        try:
            self.model = CrossEncoder(path, device=device)
        except Exception as exc:  # the library raises many types for a missing model
            raise ConfigError(
                f"reranker model {name!r} could not be loaded (ENCLAVE_RERANKER_MODEL / "
                f"--reranker-model): {exc}"
            ) from exc

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """One relevance score per passage; higher is more relevant."""
        if not passages:
            return []
        scores = self.model.predict([(query, p) for p in passages], convert_to_numpy=True)
        return [float(s) for s in scores.reshape(len(passages), -1)[:, -1]]
