"""The one store: PostgreSQL + pgvector, split by concern over one shared connection handling.

- database.py: pooled connections, transactions, migrations, reads as a user (RLS).
- principals.py: users, groups and access lists.
- documents.py: documents, chunks and keyword postings.
- embeddings.py: the embedding model of the stored vectors, re-embedding and switching.
- search.py: dense and keyword search under the access filter.
- audit.py: the hash-chained audit trail.
- people.py: a person's data exported or erased, and retention.

Imports only enclave.config and enclave.pipeline's records (access, entities, keywords,
audit).
"""

from __future__ import annotations

from enclave.pipeline.store.audit import ChainCheck
from enclave.pipeline.store.database import ACL_FILTER, Viewer, connected
from enclave.pipeline.store.documents import Documents, StoredDocument
from enclave.pipeline.store.people import People
from enclave.pipeline.store.search import SearchQueries

__all__ = ["ACL_FILTER", "ChainCheck", "Store", "StoredDocument", "Viewer", "connected"]


class Store(Documents, SearchQueries, People):
    """All reads and writes of Enclave's data, through two bounded connection pools."""
