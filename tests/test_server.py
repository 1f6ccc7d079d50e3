"""The HTTP API over real HTTP: accounts, sessions, CSRF, tokens, documents, ask, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from tests.conftest import sql
from tests.server_harness import ENGINEERING_FILES, PASSWORDS, Running


def login(server: Running, user: str) -> tuple[httpx.Client, str]:
    """A browser-like client signed in as user, and its CSRF token."""
    client = httpx.Client(base_url=server.url, timeout=120)
    response = client.post("/login", data={"username": user, "password": PASSWORDS[user]})
    assert response.status_code == 303
    page = client.get("/chat")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
    return client, csrf


def bearer(server: Running, user: str) -> httpx.Client:
    _, secret = server.accounts.create_token(user, "test")
    return httpx.Client(
        base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {secret}"}
    )


def sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        event = re.search(r"^event: (.*)$", block, re.M).group(1)
        data = json.loads(re.search(r"^data: (.*)$", block, re.M).group(1))
        events.append((event, data))
    return events


def test_sign_in_required_and_wrong_password_refused(server: Running) -> None:
    anonymous = httpx.Client(base_url=server.url)
    assert anonymous.get("/chat").status_code == 303
    assert anonymous.get("/api/documents").status_code == 401
    assert anonymous.get("/api/documents").json()["error"]["message"]
    wrong = anonymous.post("/login", data={"username": "alice", "password": "nope-nope-nope"})
    assert wrong.status_code == 401
    assert "enclave_session" not in wrong.cookies
    unknown = anonymous.post("/login", data={"username": "zed", "password": "whatever-pw"})
    assert unknown.status_code == 401


def test_csrf_is_required_for_cookie_sessions(server: Running) -> None:
    client, csrf = login(server, "alice")
    body = {"query": "audit log", "k": 3}
    assert client.post("/api/search", json=body).status_code == 403
    assert client.post("/api/search", json=body, headers={"X-CSRF-Token": "x"}).status_code == 403
    ok = client.post("/api/search", json=body, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200 and ok.json()["hits"]


def test_tokens_are_shown_once_work_and_can_be_revoked(server: Running) -> None:
    client, csrf = login(server, "bob")
    created = client.post("/api/tokens", json={"name": "script"}, headers={"X-CSRF-Token": csrf})
    assert created.status_code == 201
    secret = created.json()["token"]
    listed = client.get("/api/tokens").json()["tokens"]
    assert secret not in json.dumps(listed)
    api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {secret}"})
    assert api.get("/api/me").json() == {"user": "bob", "admin": False}
    client.delete(f"/api/tokens/{created.json()['id']}", headers={"X-CSRF-Token": csrf})
    assert api.get("/api/me").status_code == 401
    stored = sql(server.enclave.store, "select token_hash from api_tokens")
    assert all(secret not in r["token_hash"] for r in stored)


def test_search_and_documents_follow_permissions(server: Running) -> None:
    alice, bob = bearer(server, "alice"), bearer(server, "bob")
    query = {"query": "how do I export the audit log", "k": 5}
    alice_files = {h["file_name"] for h in alice.post("/api/search", json=query).json()["hits"]}
    bob_files = {h["file_name"] for h in bob.post("/api/search", json=query).json()["hits"]}
    assert "audit-log.html" in alice_files
    assert not bob_files & ENGINEERING_FILES
    bob_docs = {d["file_name"] for d in bob.get("/api/documents").json()["documents"]}
    assert not bob_docs & ENGINEERING_FILES
    audit = next(
        d
        for d in alice.get("/api/documents").json()["documents"]
        if d["file_name"] == "audit-log.html"
    )
    assert alice.get(f"/api/documents/{audit['document_id']}").status_code == 200
    assert bob.get(f"/api/documents/{audit['document_id']}").status_code == 404


def test_ask_streams_tokens_then_sources_and_keeps_history(server: Running) -> None:
    client, csrf = login(server, "alice")
    response = client.post(
        "/api/ask",
        json={"question": "How long does the audit log keep entries?", "k": 3},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    kinds = [e for e, _ in events]
    assert kinds[0] == "conversation" and kinds[-2:] == ["answer", "done"]
    assert "token" in kinds
    answer = events[-2][1]
    streamed = "".join(d["text"] for e, d in events if e == "token")
    assert streamed.strip() == answer["answer"]
    assert answer["sources"] and answer["sources"][0]["file_name"] == "audit-log.html"
    conversation = answer["conversation_id"]
    history = client.get(f"/api/conversations/{conversation}").json()["messages"]
    assert [m["role"] for m in history] == ["user", "assistant"]
    bob, _ = login(server, "bob")
    assert bob.get(f"/api/conversations/{conversation}").status_code == 404
    plain = client.post(
        "/api/ask",
        json={"question": "Say hi.", "use_search": False, "stream": False},
        headers={"X-CSRF-Token": csrf},
    ).json()
    assert plain["used_search"] is False and plain["sources"] == []


def test_upload_acl_owner_and_delete(server: Running, tmp_path: Path) -> None:
    bob, alice, root = bearer(server, "bob"), bearer(server, "alice"), bearer(server, "root")
    files = {"file": ("bonus-plan.md", b"# Bonus plan\n\nThe zephyrine bonus is 7 percent.")}
    created = bob.post("/api/documents", files=files, data={"allow": ["group:hr"]})
    assert created.status_code == 201, created.text
    doc = created.json()["document_id"]
    assert "user:bob" in created.json()["allow"]
    hits = bob.post("/api/search", json={"query": "zephyrine bonus", "k": 3}).json()["hits"]
    assert hits[0]["document_id"] == doc
    assert alice.get(f"/api/documents/{doc}").status_code == 404
    assert (
        alice.put(f"/api/documents/{doc}/acl", json={"allow": ["group:engineering"]}).status_code
        == 403
    )
    assert alice.delete(f"/api/documents/{doc}").status_code == 404
    shared = bob.put(f"/api/documents/{doc}/acl", json={"allow": ["group:hr", "user:alice"]})
    assert shared.json()["allow"] == ["group:hr", "user:alice"]
    assert alice.get(f"/api/documents/{doc}").status_code == 200
    assert bob.post(f"/api/documents/{doc}/reindex").json()["status"] == "updated"
    assert root.delete(f"/api/documents/{doc}").status_code == 200
    assert bob.get(f"/api/documents/{doc}").status_code == 404


def test_the_same_file_uploaded_again_is_refused_naming_the_readable_copy(
    server: Running,
) -> None:
    bob, alice, root = bearer(server, "bob"), bearer(server, "alice"), bearer(server, "root")
    files = {"file": ("parking.md", b"# Parking\n\nSpaces are assigned by Jana Quellmann.")}
    first = bob.post("/api/documents", files=files)
    assert first.status_code == 201, first.text
    doc = first.json()["document_id"]
    uploads = server.enclave.settings.data_dir / "uploads"
    before = set(uploads.iterdir())
    again = bob.post("/api/documents", files={"file": ("copy of parking.md", files["file"][1])})
    assert again.status_code == 409
    assert f"already document {doc} (Parking)" in again.json()["error"]["message"]
    assert set(uploads.iterdir()) == before  # nothing of the refused upload stays
    # Someone who may not read bob's copy learns nothing of it and gets their own.
    theirs = alice.post("/api/documents", files=files)
    assert theirs.status_code == 201 and str(doc) not in theirs.text
    for created in (doc, theirs.json()["document_id"]):
        assert root.delete(f"/api/documents/{created}").status_code == 200


def test_bad_uploads_and_requests_get_clear_json_errors(server: Running) -> None:
    bob = bearer(server, "bob")
    unsupported = bob.post("/api/documents", files={"file": ("x.exe", b"MZ")})
    assert unsupported.status_code == 415
    corrupt = bob.post("/api/documents", files={"file": ("x.pdf", b"%PDF-1.4 broken")})
    assert corrupt.status_code == 422 and "PDF" in corrupt.json()["error"]["message"]
    huge = bob.post("/api/documents", files={"file": ("big.txt", b"a " * (2 * 2**20))})
    assert huge.status_code == 413
    malformed = bob.post(
        "/api/search", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 422
    missing = bob.post("/api/ask", json={"k": 3})
    assert missing.status_code == 422 and "question" in missing.json()["error"]["message"]
    for response in (unsupported, corrupt, huge, malformed, missing):
        assert "Traceback" not in response.text
    assert bob.post("/api/search", json={"query": "x", "k": 1000}).status_code == 422


def test_admin_only_endpoints(server: Running) -> None:
    alice, root = bearer(server, "alice"), bearer(server, "root")
    assert alice.get("/api/users").status_code == 403
    assert alice.post("/api/users", json={"name": "eve", "groups": ["hr"]}).status_code == 403
    made = root.post(
        "/api/users", json={"name": "carol", "groups": ["hr"], "password": "carol-secret-pw"}
    )
    assert made.status_code == 201
    users = {u["user"]: u for u in root.get("/api/users").json()["users"]}
    assert users["carol"]["groups"] == ["hr"] and users["root"]["admin"]
    carol = httpx.Client(base_url=server.url)
    assert (
        carol.post("/login", data={"username": "carol", "password": "carol-secret-pw"}).status_code
        == 303
    )
    assert root.delete("/api/users/carol/groups/hr").status_code == 200
    assert root.get("/admin").status_code in (303, 401)  # bearer tokens do not open the UI
    client, _ = login(server, "root")
    assert "carol" in client.get("/admin").text
    alice_ui, _ = login(server, "alice")
    assert alice_ui.get("/admin").status_code == 403


def test_admin_sees_every_access_list_and_token(server: Running) -> None:
    alice, root = bearer(server, "alice"), bearer(server, "root")
    assert alice.get("/api/admin/documents").status_code == 403
    docs = {d["file_name"]: d for d in root.get("/api/admin/documents").json()["documents"]}
    assert docs["urlaubsrichtlinie.md"]["allow"] == ["group:hr"]
    assert "text" not in docs["urlaubsrichtlinie.md"]  # titles and lists, not content
    mine = [t for t in root.get("/api/admin/tokens").json()["tokens"] if t["user"] == "alice"]
    token = max(mine, key=lambda t: t["id"])  # the one `alice` above was just given
    assert alice.get("/api/admin/tokens").status_code == 403
    assert root.delete(f"/api/admin/tokens/{token['id']}").status_code == 200
    assert alice.get("/api/me").status_code == 401


def test_repeated_failed_sign_ins_are_throttled(server: Running) -> None:
    server.enclave.store.add_user("dave", [])
    server.accounts.set_password("dave", "dave-secret-pw")
    client = httpx.Client(base_url=server.url)
    codes = [
        client.post("/login", data={"username": "dave", "password": f"wrong-{i}-pw"}).status_code
        for i in range(6)
    ]
    assert codes == [401] * 5 + [429]
    # Even the right password waits out the window now.
    right = client.post("/login", data={"username": "dave", "password": "dave-secret-pw"})
    assert right.status_code == 429
    assert "too many" in right.json()["error"]["message"]
