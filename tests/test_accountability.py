"""The audit trail, access review, data-subject requests and retention, through a real server
and a real PostgreSQL database."""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from enclave.config import Settings
from enclave.pipeline.audit import SEEING
from enclave.pipeline.embedding import TextEmbedder
from enclave.pipeline.retention import purge
from enclave.server.conversations import Conversations
from tests.conftest import sql
from tests.server_harness import Running
from tests.test_server import bearer, login, sse_events


def last_id(server: Running) -> int:
    row = sql(server.enclave.store, "select max(id) as id from audit_log")[0]
    return int(row["id"] or 0)


class Trail:
    """The entries written since it was made (or last read)."""

    def __init__(self, server: Running):
        self.server, self.mark = server, last_id(server)

    def new(self) -> list[dict]:
        entries = [
            e for e in self.server.enclave.store.audit_entries(limit=50) if e["id"] > self.mark
        ]
        self.mark = last_id(self.server)
        return sorted(entries, key=lambda e: e["id"])

    def one(self, action: str, actor: str | None, interface: str) -> dict:
        """Exactly one new entry, and it is this one."""
        entries = self.new()
        assert [(e["action"], e["actor"], e["interface"]) for e in entries] == [
            (action, actor, interface)
        ], entries
        return entries[0]


def test_every_action_leaves_one_entry_with_the_passages_shown(server: Running) -> None:
    trail = Trail(server)
    alice = bearer(server, "alice")

    hits = alice.post("/api/search", json={"query": "audit log export", "k": 4}).json()["hits"]
    entry = trail.one("search", "alice", "api")
    assert entry["query"] == "audit log export"
    assert entry["chunk_ids"] == [h["chunk_id"] for h in hits] and hits
    assert entry["document_ids"] == list(dict.fromkeys(h["document_id"] for h in hits))

    question = {"question": "How long does the audit log keep entries?", "k": 3, "stream": False}
    answer = alice.post("/api/ask", json=question).json()
    entry = trail.one("ask", "alice", "api")
    assert entry["chunk_ids"] == [s["chunk_id"] for s in answer["sources"]] and answer["sources"]
    assert entry["abstained"] is answer["abstained"]
    assert entry["answer_hash"] == hashlib.sha256(answer["answer"].encode()).hexdigest()
    assert entry["detail"]["cited_chunk_ids"] == [c["chunk_id"] for c in answer["citations"]]

    browser, csrf = login(server, "bob")
    trail.one("sign_in", "bob", "web")
    streamed = browser.post(
        "/api/ask",
        json={"question": "Wie viele Urlaubstage gibt es?", "k": 2},
        headers={"X-CSRF-Token": csrf},
    )
    final = dict(sse_events(streamed.text))["answer"]
    entry = trail.one("ask", "bob", "web")
    assert entry["chunk_ids"] == [s["chunk_id"] for s in final["sources"]]
    assert entry["detail"]["completed"] is True

    openai_body = {
        "model": "enclave",
        "messages": [{"role": "user", "content": "What is new in Lumen 4.2?"}],
        "stream": True,
        "enclave": {"k": 2},
    }
    with alice.stream("POST", "/v1/chat/completions", json=openai_body) as response:
        chunks = [
            json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {")
        ]
    extra = chunks[-1]["enclave"]
    entry = trail.one("ask", "alice", "openai")
    assert entry["chunk_ids"] == [s["chunk_id"] for s in extra["sources"]] and extra["sources"]
    alice.post("/v1/chat/completions", json=openai_body | {"stream": False})
    trail.one("ask", "alice", "openai")

    document = hits[0]["document_id"]
    assert alice.get(f"/api/documents/{document}").status_code == 200
    assert trail.one("view", "alice", "api")["document_ids"] == [document]
    assert browser.get(f"/documents/{hits[0]['document_id']}").status_code == 404
    assert trail.new() == []  # a refused view shows nothing and records nothing

    files = {"file": ("memo.md", b"# Memo\n\nThe quorvex budget is 12 units.")}
    created = alice.post("/api/documents", files=files, data={"allow": ["group:staff"]}).json()
    upload = trail.one("upload", "alice", "api")
    assert upload["document_ids"] == [created["document_id"]]
    assert upload["detail"]["allow"] == ["group:staff", "user:alice"]
    alice.put(f"/api/documents/{created['document_id']}/acl", json={"allow": ["user:alice"]})
    assert trail.one("acl_change", "alice", "api")["detail"]["allow"] == ["user:alice"]
    alice.delete(f"/api/documents/{created['document_id']}")
    assert trail.one("delete", "alice", "api")["detail"]["title"] == "Memo"

    failed = httpx.post(f"{server.url}/login", data={"username": "bob", "password": "wrong-pw!"})
    assert failed.status_code == 401
    entry = trail.one("sign_in_failed", None, "web")
    assert entry["subject"] == "bob"

    token = browser.post("/api/tokens", json={"name": "n"}, headers={"X-CSRF-Token": csrf})
    trail.one("token_create", "bob", "web")
    browser.delete(f"/api/tokens/{token.json()['id']}", headers={"X-CSRF-Token": csrf})
    trail.one("token_revoke", "bob", "web")

    root = bearer(server, "root")
    root.post("/api/users", json={"name": "frank", "groups": ["staff"]})
    assert trail.one("user_add", "root", "api")["subject"] == "frank"
    assert server.enclave.store.verify_audit().ok


def test_the_trail_is_append_only_and_tampering_is_named(server: Running) -> None:
    bearer(server, "alice").post("/api/search", json={"query": "lumen", "k": 2})
    store = server.enclave.store
    target = last_id(server)
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        sql(store, "update audit_log set query = 'x' where id = %s", [target])
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        sql(store, "delete from audit_log where id = %s", [target])
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        sql(store, "truncate audit_log")
    # Someone with the owner's rights goes around the trigger and edits the query text.
    with store.connection() as conn, conn.transaction():
        conn.execute("alter table audit_log disable trigger audit_log_append_only")
        conn.execute("update audit_log set query = 'lumen!' where id = %s", [target])
        conn.execute("alter table audit_log enable trigger audit_log_append_only")
    check = store.verify_audit()
    assert not check.ok and check.broken_id == target and check.reason == "content changed"
    root = bearer(server, "root")
    assert root.get("/api/admin/audit/verify").json()["broken_id"] == target
    removed = sql(store, "select * from audit_log where id = %s", [target - 1])[0]
    with store.connection() as conn, conn.transaction():
        conn.execute("alter table audit_log disable trigger audit_log_append_only")
        conn.execute("update audit_log set query = 'lumen' where id = %s", [target])
        conn.execute("delete from audit_log where id = %s", [target - 1])
        conn.execute("alter table audit_log enable trigger audit_log_append_only")
    check = store.verify_audit()
    assert not check.ok and check.broken_id == target - 1 and check.reason == "entry missing"
    # Put it back as it was: the chain verifies again.
    sql(
        store,
        "insert into audit_log select * from jsonb_populate_record(null::audit_log, %s)",
        [Jsonb(removed, dumps=lambda row: json.dumps(row, default=str))],
    )
    assert store.verify_audit().ok


def test_only_admins_read_the_trail(server: Running) -> None:
    routes = [
        "/api/admin/audit",
        "/api/admin/audit?user=alice&since=7d",
        "/api/admin/audit/verify",
        "/api/admin/audit/who-saw/1",
        "/api/admin/audit/seen-by/alice",
        "/api/admin/documents/1/readers",
        "/api/admin/users/alice/documents",
        "/api/admin/users/alice/export",
    ]
    alice, root = bearer(server, "alice"), bearer(server, "root")
    for route in routes:
        assert alice.get(route).status_code == 403, route
        assert root.get(route).status_code in (200, 404), route
    browser, _ = login(server, "alice")
    assert browser.get("/admin/audit").status_code == 403
    admin_browser, _ = login(server, "root")
    page = admin_browser.get("/admin/audit?user=alice&action=search")
    assert page.status_code == 200 and "audit log export" in page.text
    assert "Content-Security-Policy" in page.headers


def test_who_saw_a_document_and_what_a_user_saw(server: Running) -> None:
    alice, root = bearer(server, "alice"), bearer(server, "root")
    since = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    hits = alice.post("/api/search", json={"query": "audit log retention", "k": 3}).json()["hits"]
    document = hits[0]["document_id"]
    saw = root.get(f"/api/admin/audit/who-saw/{document}", params={"since": since}).json()
    assert [u["user"] for u in saw["users"]] == ["alice"]
    seen = root.get("/api/admin/audit/seen-by/alice", params={"since": since}).json()
    assert {d["document_id"] for d in seen["documents"]} == {h["document_id"] for h in hits}
    assert (
        root.get("/api/admin/audit/seen-by/bob", params={"since": since}).json()["documents"] == []
    )
    assert root.get("/api/admin/audit", params={"since": "yesterday"}).status_code == 422


def test_access_review_agrees_with_what_each_user_can_read(server: Running) -> None:
    root, store = bearer(server, "root"), server.enclave.store
    users = [u["user"] for u in root.get("/api/users").json()["users"]]
    readable = {
        user: {
            d["document_id"]
            for d in root.get(f"/api/admin/users/{user}/documents").json()["documents"]
        }
        for user in users
    }
    assert readable["alice"] and readable["bob"] and readable["alice"] != readable["bob"]
    for document in store.all_documents():
        readers = root.get(f"/api/admin/documents/{document['document_id']}/readers").json()
        names = {r["user"] for r in readers["readers"]}
        assert names == {u for u in users if document["document_id"] in readable[u]}
    assert root.get("/api/admin/documents/999999/readers").status_code == 404


def test_export_then_erase_leaves_only_pseudonymous_entries(server: Running) -> None:
    root, store = bearer(server, "root"), server.enclave.store
    name, password = "zoltan9", "zoltan9-secret-pw"
    root.post("/api/users", json={"name": name, "groups": ["staff"], "password": password})
    browser = httpx.Client(base_url=server.url, timeout=120)
    signed_in = browser.post("/login", data={"username": name, "password": password})
    assert signed_in.status_code == 303
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', browser.get("/chat").text).group(1)
    browser.post(
        "/api/ask",
        json={"question": "What is the remote work policy?", "k": 2, "stream": False},
        headers={"X-CSRF-Token": csrf},
    )
    browser.post("/api/tokens", json={"name": "laptop"}, headers={"X-CSRF-Token": csrf})
    browser.post(
        "/api/search", json={"query": "remote work", "k": 2}, headers={"X-CSRF-Token": csrf}
    )

    exported = root.get(f"/api/admin/users/{name}/export").json()
    assert exported["account"]["name"] == name and exported["groups"] == ["staff"]
    assert [t["name"] for t in exported["tokens"]] == ["laptop"]
    assert "token_hash" not in json.dumps(exported) and "password_hash" not in exported["account"]
    assert exported["conversations"][0]["messages"][0]["content"].startswith("What is the remote")
    # The documents they were shown, by title, are the ones the entries name by id.
    seen = exported["documents_seen"]
    entries = exported["audit_entries"]
    shown = {i for e in entries if e["action"] in SEEING for i in e["document_ids"]}
    assert seen and {d["document_id"] for d in seen} == shown
    assert all(d["title"] and set(d["actions"]) <= {"ask", "search"} for d in seen)
    assert {"sign_in", "ask", "token_create", "user_add"} <= {
        e["action"] for e in exported["audit_entries"]
    }
    key = store.person_key(name)
    written = sql(
        store,
        "select count(*) as n from audit_log where actor_key = %(k)s or subject_key = %(k)s",
        {"k": key},
    )[0]["n"]

    assert root.delete(f"/api/admin/users/{name}").json() == {"erased": name}
    assert root.delete(f"/api/admin/users/{name}").status_code == 404
    tables = [
        r["tablename"]
        for r in sql(store, "select tablename from pg_tables where schemaname = 'public'")
    ]
    for table in tables:
        found = sql(
            store, f"select count(*) as n from {table} t where t::text like %s", [f"%{name}%"]
        )[0]["n"]
        assert found == 0, f"{name} is still in {table}"
    remaining = sql(
        store,
        "select count(*) as n from audit_log where actor_key = %(k)s or subject_key = %(k)s",
        {"k": key},
    )[0]["n"]
    assert remaining == written + 1  # + the erasure itself, under the pseudonym
    assert store.verify_audit().ok
    assert all(e["actor"] != name for e in root.get("/api/admin/audit").json()["entries"])
    signed_in = httpx.post(f"{server.url}/login", data={"username": name, "password": password})
    assert signed_in.status_code == 401


def test_retention_and_deleted_documents(server: Running) -> None:
    store, settings = server.enclave.store, server.enclave.settings
    bob = bearer(server, "bob")
    files = {"file": ("plan.md", b"# Plan\n\nThe vexilla rollout starts in May.")}
    document = bob.post("/api/documents", files=files).json()["document_id"]
    conversations = Conversations(store)
    kept = conversations.start("bob", "vexilla")
    conversations.add(kept, "user", "When does the vexilla rollout start?")
    citation = {"number": 1, "document_id": document, "title": "Plan", "excerpt": "vexilla May"}
    conversations.add(kept, "assistant", "In May [1].", [citation])
    assert bob.delete(f"/api/documents/{document}").status_code == 200
    (stored,) = [m for m in conversations.messages("bob", kept) if m["role"] == "assistant"]
    assert stored["sources"] == [
        {"number": 1, "document_id": document, "title": "Plan", "deleted": True}
    ]
    for table in ("chunks", "postings"):
        assert not sql(store, f"select 1 from {table} where document_id = %s", [document])

    old = conversations.start("bob", "old")
    conversations.add(old, "user", "An old question")
    sql(
        store,
        "update messages set created_at = now() - interval '40 days' where conversation_id = %s",
        [old],
    )
    purged = purge(store, replace(settings, retain_conversations_days=30), "root", "cli")
    assert purged.conversations == 1
    assert conversations.messages("bob", old) is None and conversations.owns("bob", kept)

    before = last_id(server)
    cutoff = datetime.now(UTC)
    time.sleep(0.01)
    bob.post("/api/search", json={"query": "vexilla", "k": 1})
    assert store.purge_audit(cutoff) > 0
    remaining = store.audit_entries(limit=None)
    assert min(e["id"] for e in remaining) == before + 1
    check = store.verify_audit()
    assert check.ok and check.entries == len(remaining)
    bob.post("/api/search", json={"query": "vexilla", "k": 1})
    assert store.verify_audit().ok  # the chain goes on from the purged head


def test_the_server_applies_retention_when_it_starts(
    settings: Settings, embedder: TextEmbedder
) -> None:
    from fastapi.testclient import TestClient

    from enclave.pipeline.wiring import Enclave
    from enclave.server.app import create_app

    with Enclave(replace(settings, retain_conversations_days=30)) as enclave:
        enclave.__dict__["embedder"] = embedder
        enclave.store.add_user("olga", [])
        conversations = Conversations(enclave.store)
        old = conversations.start("olga", "old")
        conversations.add(old, "user", "An old question")
        sql(
            enclave.store,
            "update messages set created_at = now() - interval '31 days' "
            "where conversation_id = %s",
            [old],
        )
        with TestClient(create_app(enclave)):
            deadline = time.monotonic() + 30
            while conversations.owns("olga", old) and time.monotonic() < deadline:
                time.sleep(0.1)
        assert not conversations.owns("olga", old)
        (entry,) = enclave.store.audit_entries(action="purge")
        assert entry["interface"] == "server" and entry["detail"]["conversations"] == 1
