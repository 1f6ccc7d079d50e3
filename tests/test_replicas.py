"""Two `enclave serve` processes on one PostgreSQL database: sessions, tokens, conversations,
the sign-in throttle and the audit trail are shared, so either replica can take any request."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from enclave.config import Settings
from enclave.pipeline.store import Store
from enclave.server.accounts import Accounts
from tests.conftest import new_database
from tests.server_harness import free_port

PASSWORD = "replica-secret-pw"


@dataclass
class Replicas:
    urls: list[str]
    database_url: str


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, pg_server: object) -> Iterator[Replicas]:
    url = new_database(pg_server)
    with Store(Settings.load(data_dir=tmp_path_factory.mktemp("setup"), database_url=url)) as st:
        st.add_user("rita", ["staff"])
        Accounts(st).set_password("rita", PASSWORD)
    processes, urls = [], []
    for n in range(2):
        port = free_port()
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "enclave.cli", "serve", "--port", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=os.environ
                | {
                    "ENCLAVE_DATABASE_URL": url,
                    "ENCLAVE_DATA_DIR": str(tmp_path_factory.mktemp(f"replica{n}")),
                    "ENCLAVE_LLM_THREADS": "1",
                },
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        deadline = time.time() + 240
        for base in urls:
            while True:
                try:
                    if httpx.get(f"{base}/login", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.time() < deadline, "a replica did not start"
                time.sleep(0.5)
        yield Replicas(urls, url)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def test_a_session_started_on_one_replica_continues_on_the_other(replicas: Replicas) -> None:
    first, second = replicas.urls
    signed_in = httpx.post(f"{first}/login", data={"username": "rita", "password": PASSWORD})
    assert signed_in.status_code == 303
    cookies = signed_in.cookies
    page = httpx.get(f"{second}/chat", cookies=cookies)
    assert page.status_code == 200 and 'data-testid="current-user">rita<' in page.text
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)
    asked = httpx.post(
        f"{second}/api/ask",
        json={"question": "What is our travel policy?", "stream": False},
        cookies=cookies,
        headers={"X-CSRF-Token": csrf},
        timeout=120,
    ).json()
    assert asked["abstained"] is True  # rita can read nothing yet: no model call needed
    listed = httpx.get(f"{first}/api/conversations", cookies=cookies).json()
    assert asked["conversation_id"] in [c["id"] for c in listed["conversations"]]
    token = httpx.post(
        f"{first}/api/tokens", json={"name": "t"}, cookies=cookies, headers={"X-CSRF-Token": csrf}
    ).json()["token"]
    me = httpx.get(f"{second}/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["user"] == "rita"
    httpx.post(f"{second}/logout", cookies=cookies, headers={"X-CSRF-Token": csrf})
    assert httpx.get(f"{first}/api/me", cookies=cookies).status_code == 401


def test_the_throttle_counts_failures_on_both_replicas(replicas: Replicas) -> None:
    first, second = replicas.urls
    codes = [
        httpx.post(
            f"{replicas.urls[n % 2]}/login", data={"username": "rita", "password": f"wrong-{n}-pw"}
        ).status_code
        for n in range(5)
    ]
    assert codes == [401] * 5
    for base in (first, second):
        right = httpx.post(f"{base}/login", data={"username": "rita", "password": PASSWORD})
        assert right.status_code == 429


def test_both_replicas_write_one_audit_chain(replicas: Replicas) -> None:
    # Interleaved writes from two processes: the chain must still verify.
    for n in range(6):
        base = replicas.urls[n % 2]
        httpx.post(f"{base}/login", data={"username": f"x{n}", "password": "nope-nope"})
    listing = subprocess.run(
        [sys.executable, "-m", "enclave.cli", "audit", "verify", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"ENCLAVE_DATABASE_URL": replicas.database_url},
    )
    assert listing.returncode == 0, listing.stderr
    check = json.loads(listing.stdout)
    assert check["ok"] is True and check["entries"] >= 6 + 5 + 3
