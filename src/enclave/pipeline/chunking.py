"""Split documents into citable chunks that fit the embedding model's token window.

Chunks never cross a section (heading or PDF page) boundary, so each carries one heading path
and one page. Inside a section, semchunk splits at the largest natural boundary that fits
(paragraphs, then sentences, then words), with a small overlap between neighbours.
"""

from __future__ import annotations

from collections.abc import Callable

import semchunk

from enclave.pipeline.entities import Chunk, Document

TokenCounter = Callable[[str], int]


class Chunker:
    """Chunks documents by token count, as measured by the embedding model's tokenizer."""

    def __init__(self, count_tokens: TokenCounter, max_tokens: int, overlap: float):
        self.count_tokens = count_tokens
        self.max_tokens = max_tokens
        self.overlap = overlap
        self._split = semchunk.chunkerify(count_tokens, max_tokens)

    def chunk(self, document: Document) -> list[Chunk]:
        """The document's chunks, in reading order; each one's text is a slice of document.text."""
        chunks: list[Chunk] = []
        for section, start in zip(document.sections, document.section_starts, strict=True):
            _, spans = self._split(section.text, offsets=True, overlap=self.overlap or None)
            for span_start, span_end in spans:
                char_start, char_end = start + span_start, start + span_end
                text = document.text[char_start:char_end]
                if not text.strip():
                    continue
                chunks.append(
                    Chunk(
                        ordinal=len(chunks),
                        text=text,
                        char_start=char_start,
                        char_end=char_end,
                        page=section.page,
                        heading_path=section.heading_path,
                        token_count=self.count_tokens(text),
                    )
                )
        return chunks
