"""No user or input makes the server fail: malformed and hostile input gets a clear 4xx, the
headers forbid framing and inline script, principals come only from admins, the throttle
counts by name and address, and SIGTERM stops a busy server."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import sql
from tests.server_harness import Running, free_port
from tests.test_server import bearer, sse_events

HOSTILE = st.sampled_from(
    ["\x00", "a\x00b", "\ud800", "x\udfff", "é" * 5000, "a" * 200_000, "", " ", "user:\x00"]
)
TEXT = st.one_of(st.text(max_size=50), HOSTILE)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT)
VALUE = st.recursive(
    SCALAR, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3)
)
# Every JSON route with the fields it reads; values are anything.
ROUTES = {
    ("POST", "/api/search"): ["query", "k"],
    ("POST", "/api/ask"): ["question", "search", "k", "stream", "conversation_id"],
    ("POST", "/api/tokens"): ["name"],
    ("PUT", "/api/documents/1/acl"): ["allow"],
    ("POST", "/api/users"): ["name", "groups", "password", "admin"],
    ("POST", "/v1/chat/completions"): ["model", "messages", "stream", "enclave"],
    ("POST", "/v1/embeddings"): ["model", "input", "encoding_format"],
}
MESSAGES = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", 7]), "content": VALUE}
    ),
    max_size=3,
)


def body_for(fields: list[str]) -> st.SearchStrategy[dict]:
    values = {f: MESSAGES if f == "messages" else VALUE for f in fields}
    return st.fixed_dictionaries({}, optional=values)


def test_no_json_input_makes_the_server_fail(server: Running) -> None:
    # A user who may read nothing: answers abstain without the model, unless search is off.
    server.enclave.store.add_user("mallory", [])
    mallory = bearer(server, "mallory")
    admin = bearer(server, "root")

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def drive(data: st.DataObject) -> None:
        for (method, path), fields in ROUTES.items():
            body = data.draw(body_for(fields), label=path)
            if path.startswith("/api/ask") and body.get("stream") is not True:
                body.setdefault("stream", False)
            raw = json.dumps(body).encode()  # lone surrogates travel as \\ud800 escapes
            client = admin if path == "/api/users" else mallory
            response = client.request(
                method, path, content=raw, headers={"Content-Type": "application/json"}
            )
            assert response.status_code < 500, (path, body, response.text[:300])
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                assert sse_events(response.text)[-1][0] == "done" or "[DONE]" in response.text

    drive()
    assert mallory.get("/api/me").json() == {"user": "mallory", "admin": False}


def test_nul_and_overlong_input_get_named_errors(server: Running) -> None:
    alice = bearer(server, "alice")
    nul = alice.post("/api/search", json={"query": "a\x00b"})
    assert nul.status_code == 422 and "NUL" in nul.json()["error"]["message"]
    assert alice.get("/api/documents/1%00").status_code == 400
    assert alice.get("/api/admin/users/a%00b/export").status_code == 400
    long = alice.post("/api/ask", json={"question": "x" * 4001, "stream": False})
    assert long.status_code == 422 and "at most 4000 characters" in long.json()["error"]["message"]
    for blank in ("", "   "):
        empty = alice.post("/api/ask", json={"question": blank, "stream": False})
        assert empty.status_code == 422 and "must not be empty" in empty.json()["error"]["message"]
    chat = {"model": "enclave", "messages": [{"role": "user", "content": "y " * 2001}]}
    refused = alice.post("/v1/chat/completions", json=chat)
    assert refused.status_code == 422 and "4000" in refused.json()["error"]["message"]
    parts = {"model": "enclave", "messages": [{"role": "user", "content": [{"type": 3}]}]}
    assert alice.post("/v1/chat/completions", json=parts).status_code == 422
    # Within the character limit, but over the model's context window in tokens.
    dense = "".join(chr(0x4E00 + i % 2000) for i in range(3990))
    too_long = {"question": dense, "use_search": False, "stream": False}
    response = alice.post("/api/ask", json=too_long)
    assert response.status_code == 413 and "context" in response.json()["error"]["message"]
    streamed = alice.post("/api/ask", json=too_long | {"stream": True})
    events = [name for name, _ in sse_events(streamed.text)]
    assert events[-2:] == ["error", "done"]


def test_body_limit_holds_for_chunked_bodies(server: Running) -> None:
    alice = bearer(server, "alice")

    def body():
        yield b'{"query": "'
        for _ in range(40):
            yield b"a" * 65536
        yield b'"}'

    response = alice.post(
        "/api/search", content=body(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413 and "MiB" in response.json()["error"]["message"]
    assert alice.get("/api/me").status_code == 200


def test_a_docx_bomb_is_refused_and_leaves_no_file(server: Running) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=True) as part:
            for _ in range(200):
                part.write(b"\0" * 2**20)
    assert len(buffer.getvalue()) < 2**20  # 200 MiB inflated from under 1 MiB
    uploads = server.enclave.settings.data_dir / "uploads"
    before = set(uploads.iterdir()) if uploads.exists() else set()
    bob = bearer(server, "bob")
    files = {"file": ("bomb.docx", buffer.getvalue())}
    response = bob.post("/api/documents", files=files)
    assert response.status_code == 422 and "inflates" in response.json()["error"]["message"]
    assert set(uploads.iterdir()) == before


def test_security_headers_and_no_outside_assets(server: Running) -> None:
    page = httpx.get(f"{server.url}/login")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "same-origin"
    api = httpx.get(f"{server.url}/api/me")
    assert api.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(f"{server.url}/docs").status_code == 404
    assert httpx.get(f"{server.url}/redoc").status_code == 404
    assert "cdn" not in httpx.get(f"{server.url}/openapi.json").text.lower()


def test_only_admins_create_principals(server: Running) -> None:
    store = server.enclave.store
    before = sql(store, "select count(*) as n from principals")[0]["n"]
    bob = bearer(server, "bob")
    files = {"file": ("note.md", b"# Note\n\nShared under a name nobody has yet.")}
    refused = bob.post("/api/documents", files=files, data={"allow": ["user:ghost"]})
    assert refused.status_code == 400
    assert "unknown user:ghost" in refused.json()["error"]["message"]
    created = bob.post("/api/documents", files=files).json()["document_id"]
    acl = bob.put(f"/api/documents/{created}/acl", json={"allow": ["group:phantoms"]})
    assert acl.status_code == 400 and "group:phantoms" in acl.json()["error"]["message"]
    assert [str(p) for p in store.acl(created)] == ["user:bob"]
    after = sql(store, "select count(*) as n from principals")[0]["n"]
    assert after == before


def test_throttle_counts_by_name_and_address_and_admins_unlock(server: Running) -> None:
    store = server.enclave.store
    store.add_user("gina", [])
    server.accounts.set_password("gina", "gina-secret-pw")

    def sign_in(name: str, password: str) -> int:
        return httpx.post(
            f"{server.url}/login", data={"username": name, "password": password}
        ).status_code

    assert [sign_in("gina", f"bad-{i}-pw") for i in range(6)] == [401] * 5 + [429]
    assert sign_in("gina", "gina-secret-pw") == 429
    root = bearer(server, "root")
    assert root.post("/api/admin/users/gina/unlock").json()["failures_cleared"] == 5
    assert bearer(server, "alice").post("/api/admin/users/gina/unlock").status_code == 403
    assert sign_in("gina", "gina-secret-pw") == 303
    # Guessing spread over many names from one address is limited too.
    codes = [sign_in(f"nobody{i}", "guess-pw-123") for i in range(21)]
    assert codes[:20] == [401] * 20 and codes[20] == 429
    assert sign_in("gina", "gina-secret-pw") == 429  # this address is blocked for a while
    sql(store, "delete from sign_in_failures")
    assert sign_in("gina", "gina-secret-pw") == 303


def test_sigterm_stops_a_server_in_the_middle_of_an_answer(tmp_path: Path) -> None:
    """`enclave serve` with an answer streaming: SIGTERM ends the process within seconds."""
    data = tmp_path / "data"
    enclave = [sys.executable, "-m", "enclave.cli"]
    run = dict(check=True, capture_output=True, text=True, timeout=300)
    subprocess.run([*enclave, "users", "add", "hank", "--data-dir", str(data)], **run)
    made = subprocess.run(
        [*enclave, "users", "token", "hank", "--json", "--data-dir", str(data)], **run
    )
    token = json.loads(made.stdout)["token"]
    port = free_port()
    server = subprocess.Popen(
        [*enclave, "serve", "--port", str(port), "--data-dir", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ | {"ENCLAVE_MAX_ANSWER_TOKENS": "2000"},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if httpx.get(f"{url}/login", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        first_token = threading.Event()

        def listen() -> None:
            body = {"question": "Write a long story about a lighthouse.", "use_search": False}
            headers = {"Authorization": f"Bearer {token}"}
            try:
                with httpx.stream(
                    "POST", f"{url}/api/ask", json=body, headers=headers, timeout=60
                ) as response:
                    for line in response.iter_lines():
                        if line.startswith("event: token"):
                            first_token.set()
            except httpx.HTTPError:
                pass

        threading.Thread(target=listen, daemon=True).start()
        assert first_token.wait(120), "no answer started"
        stopping = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        assert time.monotonic() - stopping < 20
    finally:
        if server.poll() is None:
            server.kill()
