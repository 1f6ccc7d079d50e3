"""Chunks fit the model's window, point at exact passages and keep their structure."""

from __future__ import annotations

from pathlib import Path

from enclave.pipeline.chunking import Chunker
from enclave.pipeline.embedding import TextEmbedder
from enclave.pipeline.loaders import load
from tests.test_loaders import make_pdf


def test_chunks_are_exact_slices_within_the_token_budget(
    tmp_path: Path, embedder: TextEmbedder
) -> None:
    body = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(200))
    path = tmp_path / "long.md"
    path.write_text(f"# Long\n\n{body}\n\n## Short\n\nJust one line here.\n")
    document = load(path, 2**20)
    chunker = Chunker(embedder.count_tokens, max_tokens=64, overlap=0.15)
    chunks = chunker.chunk(document)
    assert len(chunks) > 10
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert document.text[chunk.char_start : chunk.char_end] == chunk.text
        assert chunk.token_count <= 64
    assert chunks[-1].heading_path == ("Long", "Short")
    assert chunks[0].heading_path == ("Long",)
    # Neighbours inside a section overlap a little.
    assert chunks[1].char_start < chunks[0].char_end


def test_chunks_never_cross_pages(tmp_path: Path, embedder: TextEmbedder) -> None:
    path = make_pdf(tmp_path / "two.pdf", ["Page one words. " * 5, "Page two words. " * 5])
    chunks = Chunker(embedder.count_tokens, 200, 0.1).chunk(load(path, 2**20))
    assert [c.page for c in chunks] == [1, 2]
