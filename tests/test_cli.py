"""The `enclave` command end to end, as a subprocess, on a real embedded PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from enclave.config import DEFAULT_EMBEDDING_MODEL, DEFAULT_LLM_MODEL, Settings
from enclave.demo import QUESTIONS, corpus_dir
from enclave.pipeline.grounding import abstention
from enclave.pipeline.store import Store
from tests.conftest import sql

ENCLAVE = [sys.executable, "-m", "enclave.cli"]


def run(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*ENCLAVE, *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "ENCLAVE_LLM_THREADS": "2"},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def as_json(data_dir: Path, *args: str) -> dict:
    return json.loads(run(data_dir, *args, "--json").stdout)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with the demo corpus ingested through the CLI."""
    data = tmp_path_factory.mktemp("cli") / "data"
    corpus = corpus_dir()
    run(data, "users", "add", "alice", "--group", "engineering", "--group", "staff")
    run(data, "users", "add", "bob", "--group", "hr", "--group", "staff")
    report = as_json(data, "ingest", str(corpus / "engineering"), "--allow", "group:engineering")
    assert len(report["added"]) == 4 and not report["failed"]
    as_json(data, "ingest", str(corpus / "hr"), "--allow", "group:hr", "--allow", "user:alice")
    as_json(data, "ingest", str(corpus / "company"), "--allow", "group:staff")
    return data


def test_docs_lists_what_each_user_may_see(data_dir: Path) -> None:
    alice = as_json(data_dir, "docs", "--as", "alice")
    bob = as_json(data_dir, "docs", "--as", "bob")
    assert len(alice["documents"]) == 8
    assert {d["file_name"] for d in bob["documents"]} == {
        "urlaubsrichtlinie.md",
        "remote-work-policy.txt",
        "2026-10-14-all-hands.eml",
        "besprechungsnotizen-2026-11.md",
    }
    first = alice["documents"][0]
    assert set(first) == {
        "document_id",
        "title",
        "file_name",
        "source",
        "mime",
        "classification",
        "chunks",
        "updated_at",
    }
    stranger = run(data_dir, "docs", "--as", "mallory", "--json")
    assert json.loads(stranger.stdout)["documents"] == []
    assert "unknown user" in stranger.stderr
    assert "0 documents visible to mallory" in run(data_dir, "docs", "--as", "mallory").stdout


def test_search_json_fields_and_permissions(data_dir: Path) -> None:
    result = as_json(
        data_dir, "search", "how do I export the audit log", "--as", "alice", "-k", "3"
    )
    assert len(result["hits"]) == 3
    hit = result["hits"][0]
    for field in (
        "rank",
        "score",
        "chunk_id",
        "document_id",
        "title",
        "file_name",
        "page",
        "page_unit",
        "heading_path",
        "char_start",
        "char_end",
        "text",
    ):
        assert field in hit
    assert hit["file_name"] in {"audit-log.html", "release-notes-4.2.md"}
    bob = as_json(data_dir, "search", "how do I export the audit log", "--as", "bob", "-k", "5")
    assert all(
        h["file_name"] not in {"audit-log.html", "release-notes-4.2.md"} for h in bob["hits"]
    )


def test_acl_show_and_set(data_dir: Path) -> None:
    shown = as_json(data_dir, "acl", "show", "urlaubsrichtlinie.md")
    assert shown["allow"] == ["group:hr", "user:alice"]
    as_json(data_dir, "acl", "set", "urlaubsrichtlinie.md", "--allow", "group:hr")
    files = {d["file_name"] for d in as_json(data_dir, "docs", "--as", "alice")["documents"]}
    assert "urlaubsrichtlinie.md" not in files
    as_json(
        data_dir,
        "acl",
        "set",
        "urlaubsrichtlinie.md",
        "--allow",
        "group:hr",
        "--allow",
        "user:alice",
    )


def test_bad_input_gets_a_clear_error(data_dir: Path, tmp_path: Path) -> None:
    bad = run(data_dir, "ingest", str(tmp_path), "--allow", "alice", check=False)
    assert bad.returncode == 2
    assert "user:NAME or group:NAME" in bad.stderr
    missing = run(data_dir, "acl", "show", "no-such-file.md", check=False)
    assert missing.returncode == 2 and "no single document" in missing.stderr
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7 broken")
    failed = run(
        data_dir,
        "ingest",
        str(tmp_path / "broken.pdf"),
        "--allow",
        "group:hr",
        "--json",
        check=False,
    )
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["failed"][0]["reason"] == "corrupt"


@pytest.mark.slow
def test_ask_with_search_cites_permitted_chunks(data_dir: Path) -> None:
    result = as_json(data_dir, "ask", "How long does the audit log keep entries?", "--as", "alice")
    assert result["used_search"] is True
    assert result["answer"]
    assert 1 <= len(result["sources"]) <= 5
    assert "400" in " ".join(s["text"] for s in result["sources"][:3])
    usage = result["usage"]
    assert usage["prompt_tokens"] > 100 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    settings = Settings.load(data_dir=data_dir)
    with Store(settings) as store:
        for citation in result["citations"]:
            row = sql(
                store,
                "select c.text, d.body from chunks c join documents d on d.id = c.document_id "
                "where c.id = %s",
                [citation["chunk_id"]],
            )[0]
            assert row["text"] == citation["excerpt"]
            assert row["body"][citation["char_start"] : citation["char_end"]] == citation["excerpt"]
            source = result["sources"][citation["number"] - 1]
            assert source["chunk_id"] == citation["chunk_id"]


def test_ask_shows_it_is_working_until_the_answer_comes(data_dir: Path) -> None:
    """Searching, reading and checking take seconds before the first piece: a terminal shows
    a spinner on stderr meanwhile (rich takes TTY_* to stand for a terminal), never on stdout."""
    question = "Which port does the web console use?"
    terminal = {"TTY_INTERACTIVE": "1", "TTY_COMPATIBLE": "1"}
    result = subprocess.run(
        [*ENCLAVE, "ask", question, "--as", "alice", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "ENCLAVE_LLM_THREADS": "2"} | terminal,
    )
    assert result.returncode == 0, result.stderr
    assert "Searching your documents" in result.stderr
    assert "Searching" not in result.stdout and "8443" in result.stdout
    # Not a terminal: nothing on stderr.
    assert run(data_dir, "ask", question, "--as", "alice").stderr == ""


@pytest.mark.slow
def test_ask_with_separate_search_and_k(data_dir: Path) -> None:
    results = {
        user: as_json(
            data_dir,
            "ask",
            "Summarise the features",
            "--search",
            "release notes new features",
            "-k",
            "2",
            "--as",
            user,
        )
        for user in ("alice", "bob")
    }
    bob = results["bob"]
    assert bob["search_query"] == "release notes new features"
    assert bob["k"] == 2
    assert len(bob["sources"]) <= 2
    # bob may not read the release notes: none of his sources comes from them.
    assert all(s["file_name"] != "release-notes-4.2.md" for s in bob["sources"])
    assert results["alice"]["sources"][0]["file_name"] == "release-notes-4.2.md"


@pytest.mark.slow
def test_ask_without_search(data_dir: Path) -> None:
    result = as_json(
        data_dir, "ask", "Who was the first US president?", "--no-search", "--as", "bob"
    )
    assert result["used_search"] is False
    assert result["sources"] == [] and result["citations"] == []
    assert result["answer"]
    text = run(data_dir, "ask", "Who was the first US president?", "--no-search", "--as", "bob")
    assert "without searching your documents" in text.stdout


@pytest.mark.slow
def test_demo_with_the_default_model_answers_rightly_or_abstains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's demo as a new user runs it: the default model, not the tests' Gemma."""
    monkeypatch.delenv("ENCLAVE_LLM_MODEL")
    assert Settings.load(data_dir=tmp_path / "demo").llm_model == DEFAULT_LLM_MODEL
    done = run(tmp_path / "demo", "demo", "--json")
    result = json.loads(done.stdout)
    runs = {r["user"]: r for r in result["runs"]}
    expected = {  # (user, question) -> (what the answer says, the document it cites)
        ("alice", QUESTIONS[0]): ("400", "Audit log — Lumen feature guide"),
        ("bob", QUESTIONS[1]): ("30", "Urlaubsrichtlinie der Nordlicht Systems GmbH"),
    }
    answered = set()
    for user, entry in runs.items():
        for answer in entry["answers"]:
            key = (user, answer["question"])
            if answer["abstained"]:
                assert answer["answer"] == abstention(answer["question"])
                assert not answer["citations"]
                continue
            assert key in expected, f"{user} got an answer they may not read: {answer}"
            assert expected[key][0] in answer["answer"]
            assert {c["title"] for c in answer["citations"]} == {expected[key][1]}
            answered.add(key)
    # The default model answers both readable questions (first tokens far above its floor).
    assert answered == set(expected)
    assert "assembling" not in done.stdout  # progress goes to stderr, never into the JSON


@pytest.mark.slow
def test_demo_shows_different_sources_per_user(tmp_path: Path) -> None:
    result = as_json(tmp_path / "demo", "demo")
    runs = {r["user"]: r for r in result["runs"]}
    alice_sources = {s for a in runs["alice"]["answers"] for s in a["sources"]}
    bob_sources = {s for a in runs["bob"]["answers"] for s in a["sources"]}
    assert "Audit log — Lumen feature guide" in alice_sources
    assert "Audit log — Lumen feature guide" not in bob_sources
    assert "Urlaubsrichtlinie der Nordlicht Systems GmbH" in bob_sources
    assert "Urlaubsrichtlinie der Nordlicht Systems GmbH" not in alice_sources
    # Who was shown what: the demo's questions are in the audit trail as well.
    entries = as_json(tmp_path / "demo", "audit", "list")["entries"]
    asked = sorted((e["actor"], e["query"]) for e in entries if e["action"] == "ask")
    assert asked == sorted((u, q) for u in ("alice", "bob") for q in QUESTIONS)


def test_ingest_reports_files_that_are_gone_and_prunes_them_when_asked(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "keep.md").write_text("# Keep\n\nThe canteen opens at noon.\n")
    (corpus / "sub" / "parking.txt").write_text("Parking spaces are assigned by Jana Weber.\n")
    data = tmp_path / "data"
    run(data, "users", "add", "carol", "--group", "staff")
    first = as_json(data, "ingest", str(corpus), "--allow", "group:staff")
    assert len(first["added"]) == 2 and not first["gone"]
    (corpus / "sub" / "parking.txt").unlink()

    kept = run(data, "ingest", str(corpus))
    assert "0 pruned" in kept.stdout
    assert "1 indexed document has no file any more" in " ".join(kept.stderr.split())
    assert "parking.txt" in kept.stderr and "--prune" in kept.stderr
    hits = as_json(data, "search", "parking spaces", "--as", "carol")["hits"]
    assert "parking.txt" in {h["file_name"] for h in hits}  # still indexed, as the note says

    pruned = as_json(data, "ingest", str(corpus), "--prune")
    assert [Path(f["path"]).name for f in pruned["pruned"]] == ["parking.txt"]
    assert not pruned["gone"]
    hits = as_json(data, "search", "parking spaces", "--as", "carol")["hits"]
    assert "parking.txt" not in {h["file_name"] for h in hits}


def test_killed_ingest_resumes_to_a_consistent_complete_index(tmp_path: Path) -> None:
    """SIGKILL an ingest half-way, run it again: every document complete, none half-written."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(60):
        paragraphs = "\n\n".join(
            f"Paragraph {p} of report {i} discusses sensor {i * p} and line {p}." for p in range(30)
        )
        (corpus / f"report{i:02}.md").write_text(f"# Report {i}\n\n{paragraphs}\n")
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [
            *ENCLAVE,
            "ingest",
            str(corpus),
            "--allow",
            "group:all",
            "--create-principals",
            "--data-dir",
            str(data),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    settings = Settings.load(data_dir=data)
    deadline = time.time() + 300
    store = None
    while time.time() < deadline:
        if (data / "pg" / "postmaster.pid").exists():
            store = store or Store(settings)
            if store.counts()["documents"] >= 5:
                break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert store is not None
    partial = store.counts()["documents"]
    assert 5 <= partial < 60, "the kill must land half-way"
    store.close()

    rerun = as_json(data, "ingest", str(corpus), "--allow", "group:all", "--create-principals")
    assert len(rerun["unchanged"]) >= partial
    assert len(rerun["added"]) + len(rerun["unchanged"]) == 60
    # Reading every file again finds nothing read differently: nothing is rewritten.
    reread = as_json(data, "ingest", str(corpus), "--reread")
    assert len(reread["unchanged"]) == 60 and reread["chunks_written"] == 0

    with Store(settings) as store:
        assert store.counts()["documents"] == 60
        rows = sql(
            store,
            "select d.id, count(c.id) as n, max(c.ordinal) as last, "
            "bool_and(substr(d.body, c.char_start + 1, c.char_end - c.char_start) = c.text) "
            "as exact "
            "from documents d left join chunks c on c.document_id = d.id group by d.id",
        )
        assert all(r["n"] > 0 and r["last"] == r["n"] - 1 and r["exact"] for r in rows)


def test_model_workshop_through_the_cli(tmp_path: Path) -> None:
    """tune pairs -> embedder -> reindex -> reranker, and classifier -> classify -> ingest."""
    data = tmp_path / "data"
    corpus = corpus_dir()
    run(data, "users", "add", "alice", "--group", "engineering", "--group", "staff")
    as_json(data, "ingest", str(corpus / "engineering"), "--allow", "group:engineering")
    as_json(data, "ingest", str(corpus / "company"), "--allow", "group:staff")

    pairs = as_json(data, "tune", "pairs", "--as", "alice", "--no-llm", "--test-fraction", "0.3")
    assert pairs["train_pairs"] > 0 and pairs["test_pairs"] > 0
    assert (Path(pairs["run"]) / "train.jsonl").is_file()
    assert (Path(pairs["run"]) / "summary.txt").read_text().strip() == pairs["summary"]
    tuned = as_json(data, "tune", "embedder", "--pairs", pairs["run"], "--batch-size", "8")
    assert tuned["summary"].startswith("embedder: nDCG@10")
    assert (Path(tuned["run"]) / "loss.png").is_file()
    switched = as_json(data, "reindex", "--embedding-model", tuned["model"])
    assert switched["previous_model"] == DEFAULT_EMBEDDING_MODEL
    assert switched["embedding_model"] == tuned["model"] and switched["chunks"] > 0
    hits = as_json(data, "search", "audit log retention", "--as", "alice")["hits"]
    assert any("400 days" in h["text"] for h in hits)
    reranker = as_json(data, "tune", "reranker", "--pairs", pairs["run"], "--as", "alice")
    assert "hybrid+tuned cross-encoder" in reranker["test_pairs"]

    rows = ["text,label"] + [
        f"{topic} question number {i} about the {word},{topic}"
        for i in range(24)
        for topic, word in (("finance", "invoice payment"), ("hr", "vacation leave"))
    ]
    (tmp_path / "labels.csv").write_text("\n".join(rows))
    trained = as_json(
        data, "tune", "classifier", "--data", str(tmp_path / "labels.csv"), "--epochs", "2"
    )
    assert (Path(trained["run"]) / "confusion.png").is_file()
    assert {"accuracy", "macro_f1"} <= set(trained["baseline_tfidf_svm_test"])
    classified = subprocess.run(
        [*ENCLAVE, "classify", "--model", trained["model"], "the invoice payment", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    result = json.loads(classified.stdout)
    assert result["results"][0]["label"] in {"finance", "hr"}
    memo = tmp_path / "memo" / "memo.txt"
    memo.parent.mkdir()
    memo.write_text("Please send the invoice payment for the new laptops by Friday.")
    as_json(
        data, "ingest", str(memo.parent), "--allow", "user:alice", "--classifier", trained["model"]
    )
    listed = {d["file_name"]: d for d in as_json(data, "docs", "--as", "alice")["documents"]}
    assert listed["memo.txt"]["classification"]["model"] == trained["model"]
    assert listed["memo.txt"]["classification"]["label"] in {"finance", "hr"}
    assert listed["lumen-handbook.md"]["classification"] is None


def test_data_dir_before_the_command(tmp_path: Path) -> None:
    """`enclave --data-dir D users add ...` (as git and docker take global options)."""
    data = tmp_path / "data"
    added = subprocess.run(
        [*ENCLAVE, "--data-dir", str(data), "users", "add", "carol", "--group", "ops", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout) == {"user": "carol", "groups": ["ops"], "admin": False}
    # The same data directory given after the command sees the same user.
    listed = as_json(data, "users", "list")
    assert listed["users"] == [{"user": "carol", "groups": ["ops"]}]
    # Given in both places, the command's own --data-dir wins.
    other = tmp_path / "other"
    subprocess.run(
        [*ENCLAVE, "--data-dir", str(data), "users", "add", "dave", "--data-dir", str(other)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert [u["user"] for u in as_json(other, "users", "list")["users"]] == ["dave"]
    assert [u["user"] for u in as_json(data, "users", "list")["users"]] == ["carol"]


def test_accountability_commands(data_dir: Path, tmp_path: Path) -> None:
    """audit list/verify/who-saw/seen-by, acl who-can-read/readable-by, users export/erase,
    unlock and purge, and principals only by flag, all as the shell runs them."""
    hits = as_json(data_dir, "search", "audit log export", "--as", "alice", "-k", "3")["hits"]
    searched = as_json(data_dir, "audit", "list", "--user", "alice", "--action", "search")
    newest = searched["entries"][0]
    assert newest["interface"] == "cli" and newest["query"] == "audit log export"
    assert newest["chunk_ids"] == [h["chunk_id"] for h in hits]
    document = str(hits[0]["document_id"])
    saw = as_json(data_dir, "audit", "who-saw", document, "--since", "1h")
    assert "alice" in [u["user"] for u in saw["users"]]
    seen = as_json(data_dir, "audit", "seen-by", "alice", "--since", "1h")
    assert int(document) in [d["document_id"] for d in seen["documents"]]
    assert run(data_dir, "audit", "list", "--since", "soon", check=False).returncode == 2
    # The questions the earlier tests asked are there with the chunks given to the model.
    asked = as_json(data_dir, "audit", "list", "--action", "ask")["entries"]
    assert asked and all(e["interface"] == "cli" and e["answer_hash"] for e in asked)
    assert any(e["chunk_ids"] for e in asked)

    readers = as_json(data_dir, "acl", "who-can-read", "urlaubsrichtlinie.md")["readers"]
    assert {r["user"] for r in readers} == {"alice", "bob"}
    readable = as_json(data_dir, "acl", "readable-by", "bob")["documents"]
    assert "urlaubsrichtlinie.md" in {d["file_name"] for d in readable}

    unknown = run(data_dir, "acl", "set", document, "--allow", "group:nobody-yet", check=False)
    assert unknown.returncode == 2 and "group:nobody-yet" in unknown.stderr
    shared = as_json(
        data_dir, "acl", "set", document, "--allow", "group:auditors", "--create-principals"
    )
    assert shared["allow"] == ["group:auditors"]
    as_json(data_dir, "acl", "set", document, "--allow", "group:engineering")

    run(data_dir, "users", "add", "ivy", "--group", "staff")
    as_json(data_dir, "search", "remote work", "--as", "ivy")
    export = tmp_path / "ivy.json"
    summary = as_json(data_dir, "users", "export", "ivy", "--output", str(export))
    record = json.loads(export.read_text())
    assert record["account"]["name"] == "ivy" and record["groups"] == ["staff"]
    assert summary["audit_entries"] == len(record["audit_entries"]) >= 2
    assert as_json(data_dir, "users", "erase", "ivy")["erased"] == "ivy"
    assert "ivy" not in {u["user"] for u in as_json(data_dir, "users", "list")["users"]}
    assert as_json(data_dir, "audit", "list", "--user", "ivy")["entries"] == []
    assert as_json(data_dir, "users", "unlock", "alice")["failures_cleared"] == 0

    purged = as_json(data_dir, "purge")
    assert purged == {"conversations": 0, "audit_entries": 0}  # nothing kept for a limit yet
    verified = as_json(data_dir, "audit", "verify")
    assert verified["ok"] is True and verified["entries"] > 10
    with (
        Store(Settings.load(data_dir=data_dir)) as store,
        store.connection() as conn,
        conn.transaction(),
    ):
        conn.execute("alter table audit_log disable trigger audit_log_append_only")
        conn.execute("update audit_log set query = 'changed' where action = 'search'")
        conn.execute("alter table audit_log enable trigger audit_log_append_only")
    broken = run(data_dir, "audit", "verify", check=False)
    assert broken.returncode == 1 and "broken at entry" in broken.stderr


def test_search_ask_and_docs_use_a_running_server(data_dir: Path) -> None:
    """With `enclave serve` on the data directory, the CLI answers through its warm models:
    the same results, recorded as the CLI's, and the operator key opens nothing else."""
    import httpx

    from tests.server_harness import free_port

    local_search = as_json(data_dir, "search", "audit log export", "--as", "alice", "-k", "3")
    local_docs = as_json(data_dir, "docs", "--as", "bob")
    port = free_port()
    server = subprocess.Popen(
        [*ENCLAVE, "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    announcement = data_dir / "server.json"
    try:
        deadline = time.time() + 180
        while not announcement.exists() or not _answers(f"http://127.0.0.1:{port}/login"):
            assert time.time() < deadline and server.poll() is None, "server did not start"
            time.sleep(0.5)
        assert announcement.stat().st_mode & 0o777 == 0o600
        key = json.loads(announcement.read_text())["key"]

        remote_search = as_json(data_dir, "search", "audit log export", "--as", "alice", "-k", "3")
        assert remote_search == local_search
        assert as_json(data_dir, "docs", "--as", "bob") == local_docs
        answer = as_json(
            data_dir, "ask", "How long does the audit log keep entries?", "--as", "bob"
        )
        assert answer["abstained"] is True and "conversation_id" not in answer
        streamed = run(
            data_dir, "ask", "How long does the audit log keep entries?", "--as", "alice"
        )
        assert "400" in streamed.stdout

        entries = as_json(data_dir, "audit", "list", "--limit", "3")["entries"]
        assert [(e["action"], e["actor"], e["interface"]) for e in entries] == [
            ("ask", "alice", "cli"),
            ("ask", "bob", "cli"),
            ("search", "alice", "cli"),
        ]
        url = f"http://127.0.0.1:{port}"
        operator = {"Authorization": f"Bearer {key}", "X-Enclave-As": "alice"}
        assert httpx.get(f"{url}/api/me", headers=operator).json()["user"] == "alice"
        assert httpx.get(f"{url}/api/users", headers=operator).status_code == 403
        assert httpx.get(f"{url}/api/conversations", headers=operator).json() == {
            "conversations": []
        }
        wrong = operator | {"Authorization": "Bearer not-the-key"}
        assert httpx.get(f"{url}/api/me", headers=wrong).status_code == 401
        alone = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{url}/api/me", headers=alone).status_code == 401
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert not announcement.exists()
    assert as_json(data_dir, "docs", "--as", "bob") == local_docs  # on its own again


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False
