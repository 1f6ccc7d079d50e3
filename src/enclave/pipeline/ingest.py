"""Files -> documents -> chunks -> vectors -> store, one transaction per document."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.progress import Progress

from enclave.pipeline import ocr
from enclave.pipeline.access import Principal
from enclave.pipeline.chunking import Chunker
from enclave.pipeline.embedding import TextEmbedder, embedding_text
from enclave.pipeline.entities import Chunk, Document
from enclave.pipeline.language import text_search_config
from enclave.pipeline.loaders import LoadError, discover, load
from enclave.pipeline.store import Store

if TYPE_CHECKING:
    from enclave.pipeline.classification import TextClassifier

# A classifier reads a document's opening (its window is a few hundred tokens anyway).
CLASSIFY_CHARS = 4000
# Chunks embedded together; documents are still committed one by one.
EMBED_BATCH_CHUNKS = 256


@dataclass(frozen=True)
class FileResult:
    """What happened to one file: added, updated, unchanged, failed, pruned or gone.

    gone: the document's file is no longer under a folder that was ingested, and the run did
    not prune (the document stays searchable until `--prune` or a deletion).
    """

    path: str
    status: str
    document_id: int | None = None
    chunks: int = 0
    reason: str | None = None
    error: str | None = None


@dataclass
class IngestReport:
    """Per-file results of one ingest run."""

    files: list[FileResult] = field(default_factory=list)

    def with_status(self, status: str) -> list[FileResult]:
        return [f for f in self.files if f.status == status]

    @property
    def chunks_written(self) -> int:
        return sum(f.chunks for f in self.files if f.status in ("added", "updated"))


def file_hash(path: Path) -> str:
    """sha256 of the file's bytes: an unchanged file is recognised without parsing it."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@dataclass(frozen=True)
class _Prepared:
    """A loaded and chunked document waiting for its vectors."""

    state: tuple[int, str] | None
    document: Document
    chunks: list[Chunk]


class Ingestor:
    """Keeps the index in step with a set of files and folders."""

    def __init__(
        self,
        store: Store,
        embedder: TextEmbedder,
        chunker: Chunker,
        max_file_mb: int,
        batch_chunks: int = EMBED_BATCH_CHUNKS,
        classifier: TextClassifier | None = None,
    ):
        self.store = store
        self.embedder = embedder
        self.chunker = chunker
        self.max_bytes = max_file_mb * 2**20
        self.batch_chunks = batch_chunks
        self.classifier = classifier

    def ingest(
        self,
        paths: Sequence[Path],
        acl: Sequence[Principal] | None,
        prune: bool = False,
        progress: Progress | None = None,
        reread: bool = False,
    ) -> IngestReport:
        """Ingest files and folders (recursively). acl None keeps existing access lists.

        reread: read files whose bytes are unchanged too (after an upgrade that reads some
        files differently); a document whose title and text come out the same is left as it
        is, without embedding it again.

        Chunks of several documents are embedded together (the encoder is fastest on full
        batches), but each document is committed with all its chunks or not at all: an
        interrupted run leaves a consistent index, and a re-run picks up where it stopped
        (unchanged files are skipped by content hash).
        """
        report = IngestReport()
        report.files += [
            FileResult(str(p), "failed", reason="not_found", error="no such file or folder")
            for p in paths
            if not p.exists()
        ]
        # The same file named twice (or through a link) is ingested once.
        files = list({f.resolve(): f for f in discover(p for p in paths if p.exists())}.values())
        self.store.check_embedding_model(self.embedder.name, self.embedder.dim)
        bar = _Bars(progress, len(files))
        pending: list[_Prepared] = []
        for path in files:
            bar.reading(path)
            with ocr.reporting_pages(bar.scanning):
                outcome = self._prepare(path, acl, reread)
            bar.read(0 if isinstance(outcome, FileResult) else len(outcome.chunks))
            if isinstance(outcome, FileResult):
                report.files.append(outcome)
            else:
                pending.append(outcome)
                if sum(len(p.chunks) for p in pending) >= self.batch_chunks:
                    report.files += self._embed_and_store(pending, acl, bar)
                    pending = []
        report.files += self._embed_and_store(pending, acl, bar)
        present = {str(f.resolve()) for f in files}
        for folder in (p for p in paths if p.is_dir()):
            for document_id, source in self.store.sources_under(folder):
                if source in present:
                    continue
                if prune:
                    self.store.delete_document(document_id)
                report.files.append(FileResult(source, "pruned" if prune else "gone", document_id))
        return report

    def _prepare(
        self, path: Path, acl: Sequence[Principal] | None, reread: bool = False
    ) -> FileResult | _Prepared:
        source = str(path.resolve())
        try:
            state = self.store.document_state(source)
            if state and state[1] == file_hash(path) and not reread:
                return self._unchanged(source, state[0], acl)
            document = load(path, self.max_bytes)
            read = (document.title, document.text)
            if reread and state and self.store.stored_text(state[0]) == read:
                return self._unchanged(source, state[0], acl)
        except LoadError as exc:
            return FileResult(source, "failed", reason=exc.reason, error=str(exc))
        except OSError as exc:
            return FileResult(source, "failed", reason="unreadable", error=str(exc))
        chunks = self.chunker.chunk(document)
        if not chunks:
            return FileResult(source, "failed", reason="empty", error="no text to index")
        return _Prepared(state, document, chunks)

    def _unchanged(
        self, source: str, document_id: int, acl: Sequence[Principal] | None
    ) -> FileResult:
        if acl is not None:
            self.store.set_acl(document_id, acl)
        return FileResult(source, "unchanged", document_id)

    def _embed_and_store(
        self, batch: list[_Prepared], acl: Sequence[Principal] | None, bar: _Bars
    ) -> list[FileResult]:
        texts = [
            embedding_text(p.document.title, c.heading_path, c.text)
            for p in batch
            for c in p.chunks
        ]
        vectors = self.embedder.embed_passages(texts, on_batch=bar.embedded)
        classes = self._classify([p.document for p in batch])
        results, offset = [], 0
        for prepared, classification in zip(batch, classes, strict=True):
            n = len(prepared.chunks)
            document_id = self.store.replace_document(
                prepared.document,
                prepared.chunks,
                vectors[offset : offset + n],
                [text_search_config(c.text) for c in prepared.chunks],
                acl,
                classification,
            )
            offset += n
            status = "updated" if prepared.state else "added"
            results.append(FileResult(prepared.document.source, status, document_id, n))
        return results

    def _classify(self, documents: Sequence[Document]) -> list[dict[str, Any] | None]:
        """The classifier's label per document (its opening text), if one is configured."""
        if not self.classifier or not documents:
            return [None] * len(documents)
        predictions = self.classifier.predict([d.text[:CLASSIFY_CHARS] for d in documents])
        return [
            {"label": label, "score": round(score, 4), "model": self.classifier.name}
            for label, score in predictions
        ]


def reembed(store: Store, embedder: TextEmbedder, progress: Progress | None = None) -> int:
    """Re-embed every chunk with embedder, then switch the index to it; returns chunks.

    Search keeps using the old vectors until the final switch; a stopped run resumes with the
    chunks that have no new vector yet.
    """
    todo = store.chunks_to_reembed(embedder.name)
    task = progress.add_task("re-embedding chunks", total=len(todo)) if progress else None
    for start in range(0, len(todo), EMBED_BATCH_CHUNKS):
        rows = todo[start : start + EMBED_BATCH_CHUNKS]
        texts = [embedding_text(r["title"], r["heading_path"], r["text"]) for r in rows]
        store.stage_embeddings(
            embedder.name, [r["id"] for r in rows], embedder.embed_passages(texts)
        )
        if progress and task is not None:
            progress.advance(task, len(rows))
    return store.switch_embeddings(embedder.name, embedder.dim)


class _Bars:
    """Two progress bars: files read, chunks embedded (its total grows as files are read)."""

    def __init__(self, progress: Progress | None, files: int):
        self.progress = progress
        self.name = ""
        if progress:
            self.files = progress.add_task("reading", total=files)
            self.chunks = progress.add_task("embedding chunks", total=0)

    def reading(self, path: Path) -> None:
        self.name = path.name
        if self.progress:
            self.progress.update(self.files, description=f"reading {path.name}")

    def scanning(self, pages_read: int, pages: int) -> None:
        if self.progress:
            description = f"reading {self.name} (OCR: page {pages_read + 1} of {pages})"
            if pages_read == pages:
                description = f"reading {self.name}"
            self.progress.update(self.files, description=description)

    def read(self, chunks: int) -> None:
        if self.progress:
            self.progress.advance(self.files)
            task = self.progress.tasks[self.chunks]
            self.progress.update(self.chunks, total=(task.total or 0) + chunks)

    def embedded(self, chunks: int) -> None:
        if self.progress:
            self.progress.advance(self.chunks, chunks)
