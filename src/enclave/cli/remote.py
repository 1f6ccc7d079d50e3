"""A running `enclave serve` on the same data directory, which `search`, `ask` and `docs` use.

Its models are warm, so a shell command answers in about a second instead of loading them
itself. The server announces itself in DATA_DIR/server.json (readable by its owner only)
with an operator key; a request with that key and `X-Enclave-As: USER` runs as USER, from
loopback only, and is recorded in the audit trail as coming from the CLI.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from enclave.config import OPERATOR_HEADER, SERVER_FILE, ConfigError, Settings


def new_operator_key() -> str:
    return secrets.token_urlsafe(32)


def _database(settings: Settings) -> str:
    return settings.database_url or "embedded"


@contextmanager
def announced(settings: Settings, host: str, port: int, key: str) -> Iterator[None]:
    """Write DATA_DIR/server.json while the server runs (owner-only), remove it after."""
    local = "127.0.0.1" if host in ("0.0.0.0", "", "localhost") else host
    local = "[::1]" if local == "::" else local
    path = settings.data_dir / SERVER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {
        "url": f"http://{local}:{port}",
        "pid": os.getpid(),
        "key": key,
        "database": _database(settings),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(info, out)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class Remote:
    """Requests to the running server as a given user."""

    url: str
    key: str

    def request(self, method: str, path: str, user: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.key}", OPERATOR_HEADER: user}
        response = httpx.request(method, self.url + path, headers=headers, timeout=None, **kwargs)
        _raise_for_error(response)
        return response

    @contextmanager
    def stream(self, path: str, user: str, body: dict[str, Any]) -> Iterator[httpx.Response]:
        headers = {"Authorization": f"Bearer {self.key}", OPERATOR_HEADER: user}
        with httpx.stream(
            "POST", self.url + path, json=body, headers=headers, timeout=None
        ) as response:
            if response.status_code >= 400:
                response.read()
                _raise_for_error(response)
            yield response


def _raise_for_error(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:200]
    raise ConfigError(f"the running server answered {response.status_code}: {message}")


def running_server(settings: Settings) -> Remote | None:
    """The server announced in the data directory, if it runs on the same database."""
    path = settings.data_dir / SERVER_FILE
    try:
        info = json.loads(path.read_text())
        os.kill(int(info["pid"]), 0)
    except PermissionError:
        pass  # it runs, as another account: its key file let us in, so we may use it
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if info.get("database") != _database(settings):
        return None
    remote = Remote(info["url"], info["key"])
    try:
        httpx.get(remote.url + "/login", timeout=2)
    except httpx.TransportError:
        return None
    return remote


def server_events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event, data) of a server-sent event stream."""
    event = ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            yield event, json.loads(line[6:])
