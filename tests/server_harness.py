"""A real Enclave HTTP server on loopback, with the demo corpus and accounts, for tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from enclave.config import Settings
from enclave.demo import setup_demo
from enclave.pipeline.embedding import TextEmbedder
from enclave.pipeline.llm import LLM
from enclave.pipeline.wiring import Enclave
from enclave.server.accounts import Accounts
from enclave.server.app import create_app

# The demo corpus's engineering folder: readable by alice (engineering), not by bob.
ENGINEERING_FILES = {
    "audit-log.html",
    "release-notes-4.2.md",
    "lumen-handbook.md",
    "produkthandbuch-wartung.md",
}
PASSWORDS = {"alice": "alice-secret-pw", "bob": "bob-secret-pw", "root": "root-secret-pw"}


@dataclass
class Running:
    url: str
    enclave: Enclave
    accounts: Accounts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_server(
    data_dir: Path, database_url: str, embedder: TextEmbedder, llm: LLM, max_file_mb: int = 1
) -> Iterator[Running]:
    """Demo corpus, users alice/bob (no admin) and root (admin), served over real HTTP."""
    settings = Settings.load(
        data_dir=data_dir,
        database_url=database_url,
        max_file_mb=max_file_mb,
        max_answer_tokens=48,
    )
    enclave = Enclave(settings)
    enclave.__dict__["embedder"] = embedder
    enclave.__dict__["llm"] = llm
    setup_demo(enclave)
    enclave.store.add_user("root", [])
    accounts = Accounts(enclave.store)
    for user, password in PASSWORDS.items():
        accounts.set_password(user, password)
    accounts.set_admin("root", True)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(enclave), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "server did not start"
    try:
        yield Running(f"http://127.0.0.1:{port}", enclave, accounts)
    finally:
        server.should_exit = True
        thread.join(10)
        enclave.close()
