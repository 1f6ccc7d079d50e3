"""Files -> documents -> chunks -> vectors -> store, one transaction per document."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import Progress

from enclave.access import Principal
from enclave.chunking import Chunker
from enclave.embedding import Embedder
from enclave.language import text_search_config
from enclave.loaders import LoadError, discover, load
from enclave.store import Store


@dataclass(frozen=True)
class FileResult:
    """What happened to one file: added, updated, unchanged, failed or pruned."""

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


class Ingestor:
    """Keeps the index in step with a set of files and folders."""

    def __init__(self, store: Store, embedder: Embedder, chunker: Chunker, max_file_mb: int):
        self.store = store
        self.embedder = embedder
        self.chunker = chunker
        self.max_bytes = max_file_mb * 2**20

    def ingest(
        self,
        paths: Sequence[Path],
        acl: Sequence[Principal] | None,
        prune: bool = False,
        progress: Progress | None = None,
    ) -> IngestReport:
        """Ingest files and folders (recursively). acl None keeps existing access lists.

        Each document is committed with all its chunks or not at all, so an interrupted run
        leaves a consistent index and a re-run picks up where it stopped (unchanged files are
        skipped by content hash).
        """
        report = IngestReport()
        missing = [p for p in paths if not p.exists()]
        report.files += [
            FileResult(str(p), "failed", reason="not_found", error="no such file or folder")
            for p in missing
        ]
        files = list(discover(p for p in paths if p.exists()))
        self.store.check_embedding_model(self.embedder.name, self.embedder.dim)
        task = progress.add_task("ingesting", total=len(files)) if progress else None
        for path in files:
            if progress and task is not None:
                progress.update(task, description=f"ingesting {path.name}")
            report.files.append(self._ingest_file(path, acl))
            if progress and task is not None:
                progress.advance(task)
        if prune:
            present = {str(f.resolve()) for f in files}
            for folder in (p for p in paths if p.is_dir()):
                for document_id, source in self.store.sources_under(folder):
                    if source not in present:
                        self.store.delete_document(document_id)
                        report.files.append(FileResult(source, "pruned", document_id))
        return report

    def _ingest_file(self, path: Path, acl: Sequence[Principal] | None) -> FileResult:
        source = str(path.resolve())
        try:
            state = self.store.document_state(source)
            if state and state[1] == file_hash(path):
                if acl is not None:
                    self.store.set_acl(state[0], acl)
                return FileResult(source, "unchanged", state[0])
            document = load(path, self.max_bytes)
        except LoadError as exc:
            return FileResult(source, "failed", reason=exc.reason, error=str(exc))
        except OSError as exc:
            return FileResult(source, "failed", reason="unreadable", error=str(exc))
        chunks = self.chunker.chunk(document)
        if not chunks:
            return FileResult(source, "failed", reason="empty", error="no text to index")
        embeddings = self.embedder.embed_passages(
            [embedding_text(document.title, c.heading_path, c.text) for c in chunks]
        )
        languages = [text_search_config(c.text) for c in chunks]
        document_id = self.store.replace_document(document, chunks, embeddings, languages, acl)
        return FileResult(source, "updated" if state else "added", document_id, len(chunks))


def embedding_text(title: str, heading_path: Sequence[str], text: str) -> str:
    """What the bi-encoder sees: the passage with its title and headings as context."""
    context = " › ".join(dict.fromkeys([title, *heading_path]))
    return f"{context}\n{text}" if context else text
