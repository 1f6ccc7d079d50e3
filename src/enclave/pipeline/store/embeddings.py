"""Which embedding model the stored vectors come from, and switching to another one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from enclave.config import ConfigError
from enclave.pipeline.embedding import same_model
from enclave.pipeline.store.database import Database, connected


def hnsw_index(dim: int) -> str:
    """The HNSW index over the chunks' vectors.

    ef_construction 128 instead of pgvector's 64: on 122k real chunks (benchmarks/scale.py)
    it raised recall@10 under a 15 % access filter from 0.920 to 0.949 at ef_search 200 and
    from 0.959 to 0.977 at 400, for 42 s instead of 27 s of build time on 2 cores.
    """
    return (
        "create index if not exists chunks_embedding_hnsw on chunks using hnsw "
        f"((embedding::vector({dim})) vector_cosine_ops) with (m = 16, ef_construction = 128)"
    )


class EmbeddingIndex(Database):
    """The vectors' model and dimension, the HNSW index, and re-embedding in stages."""

    @connected
    def check_embedding_model(self, name: str, dim: int) -> None:
        """Record the embedding model on first use; refuse vectors from a different one."""
        with self.conn.transaction():
            self.conn.execute("select pg_advisory_xact_lock(7361002)")
            meta = self._meta()
            if "embedding_model" not in meta:
                self.conn.execute(
                    "insert into index_meta values ('embedding_model', %s), ('embedding_dim', %s)",
                    [name, str(dim)],
                )
                self.conn.execute(hnsw_index(dim))
            elif not same_model(meta["embedding_model"], name) or int(meta["embedding_dim"]) != dim:
                raise ConfigError(
                    f"the index was built with embedding model {meta['embedding_model']!r} "
                    f"({meta['embedding_dim']} dimensions), not {name!r} ({dim})"
                    "; set ENCLAVE_EMBEDDING_MODEL back or switch with "
                    "`enclave reindex --embedding-model`"
                )

    def indexed_embedding_model(self) -> str | None:
        """The embedding model the stored vectors come from; None before the first ingest."""
        return self._meta().get("embedding_model")

    @connected
    def _meta(self) -> dict[str, str]:
        return {
            r["key"]: r["value"] for r in self.conn.execute("select key, value from index_meta")
        }

    @property
    def embedding_dim(self) -> int:
        return int(self._meta().get("embedding_dim", 0))

    @connected
    def chunks_to_reembed(self, model: str) -> list[dict[str, Any]]:
        """Chunks (id, title, heading_path, text) without a staged vector from model."""
        with self.conn.transaction():
            self.conn.execute("delete from embeddings_next where model <> %s", [model])
            return self.conn.execute(
                "select c.id, d.title, c.heading_path, c.text from chunks c "
                "join documents d on d.id = c.document_id "
                "where not exists (select from embeddings_next n where n.chunk_id = c.id) "
                "order by c.id"
            ).fetchall()

    @connected
    def stage_embeddings(self, model: str, ids: Sequence[int], vectors: np.ndarray) -> None:
        """Keep vectors from the next model; committed at once, so a stopped run resumes."""
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(
                "insert into embeddings_next(chunk_id, model, embedding) values (%s, %s, %s) "
                "on conflict (chunk_id) do update set model = excluded.model, "
                "embedding = excluded.embedding",
                [(i, model, v) for i, v in zip(ids, vectors, strict=True)],
            )

    @connected
    def switch_embeddings(self, model: str, dim: int) -> int:
        """Swap the staged vectors in and record model, in one transaction; returns chunks.

        Refuses (and changes nothing) when a chunk has no staged vector, e.g. when a document
        was ingested meanwhile: run the re-embedding again, it only embeds what is missing.
        """
        with self.conn.transaction():
            # Writers wait until the switch is done; readers go on with the old vectors.
            self.conn.execute("lock table chunks in share row exclusive mode")
            missing = self.conn.execute(
                "select count(*) as n from chunks c where not exists (select from "
                "embeddings_next n where n.chunk_id = c.id and n.model = %s)",
                [model],
            ).fetchone()
            assert missing is not None
            if missing["n"]:
                raise ConfigError(
                    f"{missing['n']} chunks have no vector from {model!r} yet; run it again"
                )
            self.conn.execute("drop index if exists chunks_embedding_hnsw")
            row = self.conn.execute(
                "with moved as (update chunks c set embedding = n.embedding "
                "from embeddings_next n where n.chunk_id = c.id returning c.id) "
                "select count(*) as n from moved"
            ).fetchone()
            assert row is not None
            self.conn.execute(
                "update chunk_signs s set signs = binary_quantize(c.embedding) "
                "from chunks c where c.id = s.chunk_id"
            )
            self.conn.execute(hnsw_index(dim))
            self.conn.execute(
                "delete from index_meta where key in ('embedding_model', 'embedding_dim')"
            )
            self.conn.execute(
                "insert into index_meta values ('embedding_model', %s), ('embedding_dim', %s)",
                [model, str(dim)],
            )
            self.conn.execute("truncate embeddings_next")
            return int(row["n"])
