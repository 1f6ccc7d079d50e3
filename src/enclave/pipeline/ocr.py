"""Scanned PDF pages read by Tesseract OCR, where it is installed.

Contracts, signed letters and delivery notes are often scans: pages without a text layer.
Where the `tesseract` program is installed (Debian: tesseract-ocr, tesseract-ocr-deu), such a
page is rendered (PDFium) and read; without it a scanned PDF is refused as before, with a
reason that says what to install.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import Any

# Tesseract reads 10-12 pt print reliably from 300 dpi.
RESOLUTION = 300
# Tried in this order; the installed ones are read together ("deu+eng").
LANGUAGES = ("deu", "eng")
HOW_TO_INSTALL = "install tesseract-ocr and tesseract-ocr-deu to read scanned pages"

# Told (pages read, pages to read) before each page and after the last: a 100-page scan takes
# minutes, and the loaders between the ingest's progress bar and this module are plain
# functions of a file.
_page_read: ContextVar[Callable[[int, int], None] | None] = ContextVar("page_read", default=None)


@contextmanager
def reporting_pages(report: Callable[[int, int], None]) -> Iterator[None]:
    """Call report(pages read, pages to read) before each page OCR reads in this context, and
    once more when it has read them all."""
    token = _page_read.set(report)
    try:
        yield
    finally:
        _page_read.reset(token)


@cache
def installed_languages() -> str | None:
    """The Tesseract languages to read with ("deu+eng"), or None where there is no Tesseract."""
    if shutil.which("tesseract") is None:
        return None
    import pytesseract

    found = set(pytesseract.get_languages())
    return "+".join(language for language in LANGUAGES if language in found) or None


def read_pages(data: bytes, numbers: Sequence[int]) -> dict[int, str]:
    """The text of the PDF's pages with these (0-based) numbers, read from their images.

    A page PDFium cannot render or Tesseract cannot read stays empty."""
    languages = installed_languages()
    if languages is None or not numbers:
        return {}
    import pypdfium2
    import pytesseract

    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError:
        return {}
    read: dict[int, str] = {}
    report = _page_read.get()
    try:
        for done, number in enumerate(numbers, start=1):
            if report:
                report(done - 1, len(numbers))
            try:
                page = document[number]
                if not _has_images(page):
                    continue  # a blank page: nothing to read, and 2 s saved
                image = page.render(scale=RESOLUTION / 72).to_pil()
                read[number] = pytesseract.image_to_string(image, lang=languages)
            except (pypdfium2.PdfiumError, pytesseract.TesseractError):
                continue
        if report:
            report(len(numbers), len(numbers))
    finally:
        document.close()
    return read


def _has_images(page: Any) -> bool:
    """Whether a PDFium page holds a picture (at most two form levels deep)."""
    import pypdfium2.raw

    images = page.get_objects(filter=[pypdfium2.raw.FPDF_PAGEOBJ_IMAGE], max_depth=2)
    return next(iter(images), None) is not None
