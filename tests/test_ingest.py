"""Ingestion into the real store: batches with broken files, re-ingest, prune, ACL changes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from enclave.cli.common import where
from enclave.pipeline.access import Principal
from enclave.pipeline.prompting import source_label
from enclave.pipeline.serialize import hit_json
from enclave.pipeline.wiring import Enclave
from tests.conftest import sql, stale_signs, write
from tests.test_loaders import mail_with_attachments, make_pptx, make_scan

ENG = [Principal("group", "eng")]


def chunk_rows(enclave: Enclave, document_id: int) -> list[dict]:
    return sql(
        enclave.store,
        "select ordinal, text, char_start, char_end from chunks where document_id = %s "
        "order by ordinal",
        [document_id],
    )


def test_batch_goes_on_past_broken_files(tmp_path: Path, enclave: Enclave) -> None:
    docs = tmp_path / "docs"
    write(docs / "good.md", "# Good\n\nThe parking lot opens at six.")
    (docs / "bad.pdf").write_bytes(b"%PDF-1.4 garbage")
    (docs / "empty.txt").write_bytes(b"")
    report = enclave.ingestor.ingest([docs, tmp_path / "missing"], ENG)
    assert [Path(f.path).name for f in report.with_status("added")] == ["good.md"]
    reasons = {Path(f.path).name: f.reason for f in report.with_status("failed")}
    assert reasons == {"bad.pdf": "corrupt", "empty.txt": "empty", "missing": "not_found"}


def test_reingest_skips_unchanged_replaces_changed_and_prunes(
    tmp_path: Path, enclave: Enclave
) -> None:
    docs = tmp_path / "docs"
    a = write(docs / "a.md", "# A\n\nApples are red.")
    write(docs / "b.md", "# B\n\nBananas are yellow.")
    first = enclave.ingestor.ingest([docs], ENG)
    assert len(first.with_status("added")) == 2

    second = enclave.ingestor.ingest([docs], ENG)
    assert len(second.with_status("unchanged")) == 2
    assert second.chunks_written == 0

    a.write_text("# A\n\nApricots are orange.\n\n## More\n\nAvocados are green.")
    third = enclave.ingestor.ingest([docs], None)
    (updated,) = third.with_status("updated")
    rows = chunk_rows(enclave, updated.document_id)
    assert "Apricots" in " ".join(r["text"] for r in rows)
    assert "Apples" not in " ".join(r["text"] for r in rows)
    body = sql(enclave.store, "select body from documents where id = %s", [updated.document_id])[0][
        "body"
    ]
    assert all(body[r["char_start"] : r["char_end"]] == r["text"] for r in rows)
    # acl None keeps the access list the document had.
    assert enclave.store.acl(updated.document_id) == ENG
    assert stale_signs(enclave.store) == 0

    (docs / "b.md").unlink()
    without_prune = enclave.ingestor.ingest([docs], None)
    assert not without_prune.with_status("pruned")
    # Not pruned, but reported: the caller learns that the index holds a file that is gone.
    assert [Path(f.path).name for f in without_prune.with_status("gone")] == ["b.md"]
    assert enclave.store.counts()["documents"] == 2
    pruned = enclave.ingestor.ingest([docs], None, prune=True)
    assert [Path(f.path).name for f in pruned.with_status("pruned")] == ["b.md"]
    assert not pruned.with_status("gone")
    assert enclave.store.counts()["documents"] == 1
    signs = sql(enclave.store, "select count(*) as n from chunk_signs")[0]["n"]
    assert signs == enclave.store.counts()["chunks"] and stale_signs(enclave.store) == 0


def test_reingest_with_new_allow_list_changes_access(tmp_path: Path, enclave: Enclave) -> None:
    path = write(tmp_path / "memo.txt", "The memo says hello.")
    enclave.ingestor.ingest([path], ENG)
    report = enclave.ingestor.ingest([path], [Principal("user", "carol")])
    (result,) = report.with_status("unchanged")
    assert enclave.store.acl(result.document_id) == [Principal("user", "carol")]


def test_vectors_stay_in_the_table_rows(tmp_path: Path, enclave: Enclave) -> None:
    """Full-size chunks pass PostgreSQL's 2 kB row limit; their vectors must not be TOASTed
    (an exact scan would make one TOAST lookup per chunk: migration 009)."""
    import random

    rng = random.Random(3)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choice(letters) for _ in range(7)) for _ in range(3000)]

    def toasted(title: str) -> tuple[int, int]:
        write(tmp_path / title / f"{title}.txt", " ".join(rng.sample(words, 1500)))
        enclave.ingestor.ingest([tmp_path / title], ENG)
        row = sql(
            enclave.store,
            "select count(*) as chunks, count(pg_column_toast_chunk_id(embedding)) as toasted "
            "from chunks c join documents d on d.id = c.document_id where d.title = %s",
            [title],
        )[0]
        return row["chunks"], row["toasted"]

    chunks, vectors_toasted = toasted("kept")
    assert chunks >= 5 and vectors_toasted == 0
    # The control: with pgvector's default storage the same kind of rows do toast the vector.
    sql(enclave.store, "alter table chunks alter column embedding set storage external")
    chunks, vectors_toasted = toasted("control")
    assert chunks >= 5 and vectors_toasted >= chunks - 1  # all but a short last chunk


def test_reread_replaces_what_was_read_wrongly_and_leaves_the_rest(
    tmp_path: Path, enclave: Enclave
) -> None:
    docs = tmp_path / "docs"
    write(docs / "a.md", "# A\n\nApples are red.")
    (docs / "kantine.txt").write_bytes("Die Kantine öffnet um 11 Uhr.".encode("latin-1"))
    enclave.ingestor.ingest([docs], ENG)
    # As an older version might have read it.
    sql(
        enclave.store,
        "update documents set body = 'Die Kantine ˆffnet um 11 Uhr.' where source like %s",
        ["%kantine.txt"],
    )
    chunk_ids = {r["id"] for r in sql(enclave.store, "select id from chunks")}
    again = enclave.ingestor.ingest([docs], ENG)
    assert len(again.with_status("unchanged")) == 2  # same bytes: not read again
    reread = enclave.ingestor.ingest([docs], ENG, reread=True)
    assert [Path(f.path).name for f in reread.with_status("updated")] == ["kantine.txt"]
    assert [Path(f.path).name for f in reread.with_status("unchanged")] == ["a.md"]
    body = sql(enclave.store, "select body from documents where source like %s", ["%kantine%"])
    assert body[0]["body"].strip() == "Die Kantine öffnet um 11 Uhr."
    # a.md was neither re-embedded nor rewritten: its chunk keeps its id.
    after = {r["id"] for r in sql(enclave.store, "select id from chunks")}
    assert len(chunk_ids & after) == 1


def test_an_attachment_is_found_and_cited_as_part_of_its_message(
    tmp_path: Path, enclave: Enclave
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "einladung.eml").write_bytes(mail_with_attachments(tmp_path))
    (report,) = enclave.ingestor.ingest([docs], ENG).files
    assert report.status == "added"
    enclave.store.add_user("erik", ["eng"])
    (hit, *_) = enclave.retriever.search(enclave.store.viewer("erik"), "Parkhaus Nord", 3)
    assert "Parkhaus Nord" in hit.text and hit.file_name == "einladung.eml"
    assert hit.heading_path[-1] == "agenda.pdf" and hit.page == 2


def test_a_scanned_contract_is_searchable_with_its_pages(tmp_path: Path, enclave: Enclave) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    make_scan(
        docs / "mietvertrag.pdf",
        ["Mietvertrag Lagerhalle Nord.", "Kündigungsfrist: sechs Monate zum Quartalsende."],
    )
    (report,) = enclave.ingestor.ingest([docs], ENG).files
    assert report.status == "added"
    enclave.store.add_user("erik", ["eng"])
    (hit, *_) = enclave.retriever.search(enclave.store.viewer("erik"), "Kündigungsfrist", 3)
    assert hit.file_name == "mietvertrag.pdf" and hit.page == 2
    assert "sechs Monate zum Quartalsende" in hit.text


def test_slides_and_spreadsheets_are_searchable(tmp_path: Path, enclave: Enclave) -> None:
    import openpyxl

    docs = tmp_path / "docs"
    docs.mkdir()
    make_pptx(docs / "planung.pptx")
    book = openpyxl.Workbook()
    book.active.title = "Reisekosten"
    book.active.append(["Kilometerpauschale", 0.30])
    book.save(docs / "pauschalen.xlsx")
    report = enclave.ingestor.ingest([docs], ENG)
    assert len(report.with_status("added")) == 2
    enclave.store.add_user("erik", ["eng"])
    erik = enclave.store.viewer("erik")
    (slide, *_) = enclave.retriever.search(erik, "Umsatzziel Region Süd", 3)
    assert (
        slide.file_name == "planung.pptx" and slide.page == 2 and slide.heading_path == ("Ziele",)
    )
    (sheet, *_) = enclave.retriever.search(erik, "Kilometerpauschale", 3)
    assert sheet.file_name == "pauschalen.xlsx" and "0.3" in sheet.text
    # A slide is cited as a slide, to the model, in JSON and on the command line.
    assert source_label(1, slide) == "[1] Vertriebsplanung 2027, slide 2 — Ziele"
    assert hit_json(slide, 1)["page_unit"] == "slide"
    assert where(hit_json(slide, 1)) == "planung.pptx, slide 2, Ziele"
    attached = replace(slide, source="/mail/plan.eml", heading_path=("Plan", "planung.pptx"))
    assert attached.page_label == ", slide 2"
    assert replace(slide, source="/x/vertrag.pdf").page_label == ", p. 2"
