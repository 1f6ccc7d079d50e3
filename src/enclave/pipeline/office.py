"""Office files: the archive check every OOXML file passes, PowerPoint slides, Excel sheets.

(Word files are read in loaders.py, with the headings of the other text formats.)
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from enclave.pipeline.entities import LoadError, Section
from enclave.pipeline.titles import metadata_title

# The first bytes of an OLE2 file: a legacy (.doc, .ppt, .xls) or a password-protected Office file.
OLE_SIGNATURE = b"\xd0\xcf\x11\xe0"

# A DOCX, PPTX or XLSX file is a ZIP archive: its parts may inflate far beyond the file's size (a
# decompression bomb). zipfile stops each part at its declared size, so checking the
# declared sizes bounds what is inflated, and with it the time spent.
MAX_INFLATED_BYTES = 128 * 2**20
MAX_ARCHIVE_PARTS = 10_000


def check_archive(data: bytes) -> None:
    """Refuse an archive whose parts would inflate beyond the bounds."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            parts = archive.infolist()
    except zipfile.BadZipFile:
        return  # not an archive at all: the loader reports it as corrupt
    inflated = sum(p.file_size for p in parts)
    if len(parts) > MAX_ARCHIVE_PARTS or inflated > MAX_INFLATED_BYTES:
        raise LoadError(
            "too_large",
            f"the archive inflates to {inflated // 2**20} MiB in {len(parts)} parts, over "
            f"the limit of {MAX_INFLATED_BYTES // 2**20} MiB and {MAX_ARCHIVE_PARTS} parts",
        )


def refused(data: bytes, legacy: str, kind: str, exc: Exception) -> LoadError:
    """Why an Office file its library could not open is refused: an OLE2 file is an encrypted
    or legacy one ("(.doc) Word"), anything else is corrupt ("DOCX")."""
    if data.startswith(OLE_SIGNATURE):
        return LoadError("encrypted", f"encrypted or legacy {legacy} file")
    return LoadError("corrupt", f"not a readable {kind} file ({exc})")


def load_pptx(data: bytes, path: Path) -> tuple[str, list[Section]]:
    """One section per slide (its number as the page, its title as the heading): the text of
    every shape and table, then the speaker notes."""
    import pptx
    from pptx.exc import PackageNotFoundError

    check_archive(data)
    try:
        presentation = pptx.Presentation(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise refused(data, "(.ppt) PowerPoint", "PPTX", exc) from exc
    sections = []
    for number, slide in enumerate(presentation.slides, start=1):
        heading = slide.shapes.title.text.strip() if slide.shapes.title is not None else ""
        texts = list(_shape_texts(slide.shapes))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            texts.append(slide.notes_slide.notes_text_frame.text)
        text = "\n\n".join(t.strip() for t in texts if t.strip())
        if text:
            sections.append(Section(text, (heading,) if heading else (), number))
    title = metadata_title(presentation.core_properties.title) or next(
        (s.heading_path[0] for s in sections if s.heading_path), ""
    )
    return title or path.stem, sections


def _shape_texts(shapes: Iterable[Any]) -> Iterable[str]:
    """The text of shapes in slide order, into groups, a table row per line."""
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    for shape in shapes:
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            yield from _shape_texts(shape.shapes)
        elif shape.has_text_frame:
            yield shape.text_frame.text
        elif shape.has_table:
            for row in shape.table.rows:
                yield " | ".join(c.text.strip() for c in row.cells if c.text.strip())


def load_xlsx(data: bytes, path: Path) -> tuple[str, list[Section]]:
    """One section per worksheet (its name as the heading), a row per line, the values as
    last calculated (not the formulas)."""
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    check_archive(data)
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise refused(data, "(.xls) Excel", "XLSX", exc) from exc
    sections = []
    try:
        for sheet in workbook.worksheets:
            lines = []
            for row in sheet.iter_rows(values_only=True):
                cells = [_cell(value) for value in row if value is not None]
                if any(cells):
                    lines.append(" | ".join(c for c in cells if c))
            if lines:
                sections.append(Section("\n".join(lines), (sheet.title,)))
        title = metadata_title(workbook.properties.title)
    finally:
        workbook.close()
    return title or path.stem, sections


def _cell(value: object) -> str:
    """A cell as a person reads it: 4200 not 4200.0, a date without midnight."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    return str(value).strip()
