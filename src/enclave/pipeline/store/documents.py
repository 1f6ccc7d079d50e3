"""Documents and their chunks: writing them (as the owner) and listing them to a reader."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from psycopg.types.json import Jsonb

from enclave.pipeline.access import Principal
from enclave.pipeline.entities import Chunk, Document
from enclave.pipeline.store.database import ACL_FILTER, Viewer, connected
from enclave.pipeline.store.principals import Principals


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


class Documents(Principals):
    """Documents, chunks and BM25 postings; writes run as the owner, reads as a viewer."""

    @connected
    def document_state(self, source: str) -> tuple[int, str] | None:
        """(id, content hash) of the stored document for this source, if any."""
        row = self.conn.execute(
            "select id, content_hash from documents where source = %s", [source]
        ).fetchone()
        return (int(row["id"]), row["content_hash"]) if row else None

    @connected
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
            self._insert_chunks(document_id, document, chunks, embeddings, languages)
            self.index_chunks([document_id])
            if acl is not None:
                self._write_acl(document_id, acl)
        return document_id

    @connected
    def _insert_chunks(
        self,
        document_id: int,
        document: Document,
        chunks: Sequence[Chunk],
        embeddings: np.ndarray,
        languages: Sequence[str],
    ) -> None:
        """Insert the chunks with their tsvector (title and headings weighted A) and vector."""
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

    @connected
    def index_chunks(self, document_ids: Sequence[int]) -> None:
        """Write what search reads beside the chunks of these documents (stored just now): the
        BM25 postings, the vectors' signs (dense search over mid-sized permitted sets) and the
        length totals."""
        self.conn.execute(
            "insert into chunk_signs (chunk_id, document_id, signs) "
            "select id, document_id, binary_quantize(embedding) from chunks "
            "where document_id = any(%(docs)s) order by id",
            {"docs": list(document_ids)},
        )
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

    @connected
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

    @connected
    def sources_under(self, folder: Path) -> list[tuple[int, str]]:
        """(id, source) of every stored document whose file lies under folder."""
        prefix = str(folder.resolve()).rstrip("/") + "/"
        rows = self.conn.execute(
            "select id, source from documents where starts_with(source, %s) order by source",
            [prefix],
        ).fetchall()
        return [(int(r["id"]), r["source"]) for r in rows]

    @connected
    def delete_document(self, document_id: int) -> None:
        """Remove a document: its chunks, vectors, postings and access list, and its
        excerpts from every stored conversation (their citations keep id and title)."""
        with self.conn.transaction():
            self.conn.execute("delete from documents where id = %s", [document_id])
            self.conn.execute(
                "update messages set sources = (select coalesce(jsonb_agg(case "
                "when (s->>'document_id')::bigint = %(d)s then "
                "(s - 'excerpt' - 'quote' - 'text' - 'heading_path') || '{\"deleted\": true}' "
                "else s end order by n), '[]') from jsonb_array_elements(sources) "
                "with ordinality e(s, n)) "
                "where sources @> jsonb_build_array(jsonb_build_object('document_id', %(d)s))",
                {"d": document_id},
            )

    @connected
    def document_title(self, document_id: int) -> str | None:
        row = self.conn.execute("select title from documents where id = %s", [document_id])
        found = row.fetchone()
        return found["title"] if found else None

    @connected
    def counts(self) -> dict[str, int]:
        """Number of documents and chunks in the index (admin view)."""
        row = self.conn.execute(
            "select (select count(*) from documents) as documents, "
            "(select count(*) from chunks) as chunks"
        ).fetchone()
        assert row is not None
        return {"documents": int(row["documents"]), "chunks": int(row["chunks"])}

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

    def readable_copy(self, viewer: Viewer, content_hash: str) -> tuple[int, str] | None:
        """(id, title) of a document this user may read whose file had these bytes, if any."""
        row = self._first_readable(viewer, "d.id, d.title", "d.content_hash = %(v)s", content_hash)
        return (int(row["id"]), row["title"]) if row else None

    def readable_document(self, viewer: Viewer, document_id: int) -> tuple[str, str] | None:
        """(title, extracted text) of a document if this user may read it, else None."""
        row = self._first_readable(viewer, "d.title, d.body", "d.id = %(v)s", document_id)
        return (row["title"], row["body"]) if row else None

    def _first_readable(
        self, viewer: Viewer, columns: str, condition: str, value: object
    ) -> dict[str, Any] | None:
        """The first document (by id) this user may read that meets condition (on %(v)s)."""
        if not viewer.principals:
            return None
        with self.reading_as(viewer) as cur:
            cur.execute(
                f"select {columns} from documents d where {condition} and "
                f"{ACL_FILTER.format(column='d.id')} order by d.id limit 1",
                {"v": value, "principals": viewer.principals},
            )
            return cur.fetchone()

    @connected
    def document_owner(self, document_id: int) -> str | None:
        """The user who uploaded the document through the server, if any."""
        row = self.conn.execute(
            "select p.name from documents d join principals p on p.id = d.owner_id where d.id = %s",
            [document_id],
        ).fetchone()
        return row["name"] if row else None

    @connected
    def set_owner(self, document_id: int, user: str) -> None:
        self.conn.execute(
            "update documents set owner_id = (select id from principals "
            "where kind = 'user' and name = %s) where id = %s",
            [user, document_id],
        )

    @connected
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

    @connected
    def document_source(self, document_id: int) -> str | None:
        row = self.conn.execute("select source from documents where id = %s", [document_id])
        found = row.fetchone()
        return found["source"] if found else None

    @connected
    def stored_text(self, document_id: int) -> tuple[str, str] | None:
        """(title, text) of a document as it was read at its last ingest."""
        row = self.conn.execute(
            "select title, body from documents where id = %s", [document_id]
        ).fetchone()
        return (row["title"], row["body"]) if row else None

    @connected
    def forget_hash(self, document_id: int) -> None:
        """Make the next ingest of this document re-read it even if its file is unchanged."""
        self.conn.execute("update documents set content_hash = '' where id = %s", [document_id])
