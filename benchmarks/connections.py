"""PostgreSQL connections held by one `enclave serve` over bursts of requests with idle gaps.

The server answers requests on worker threads that end after 10 s of idling (anyio) and are
started anew by the next burst. The store's connections must stay bounded by its two pools
(readers and writers, ENCLAVE_DATABASE_POOL_SIZE each), not grow with threads or bursts.
Demo corpus, loopback only, bounded in count and time.

    python benchmarks/connections.py [--bursts 5] [--clients 24] [--requests 48]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg

from enclave.config import Settings
from enclave.pipeline.wiring import Enclave
from enclave.server.accounts import Accounts

PORT = 8765
IDLE_S = 12  # longer than anyio's 10 s, so the worker threads of a burst end before the next


def client_connections(url: str) -> int:
    """Client connections on the server, less the one counting them."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "select count(*) from pg_stat_activity "
            "where backend_type = 'client backend' and pid <> pg_backend_pid()"
        ).fetchone()
        return row[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bursts", type=int, default=5)
    parser.add_argument("--clients", type=int, default=24)
    parser.add_argument("--requests", type=int, default=48)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="enclave-connections-") as tmp:
        data = Path(tmp) / "data"
        env = os.environ | {"ENCLAVE_DATA_DIR": str(data)}
        enclave_cli = [sys.executable, "-m", "enclave.cli"]
        subprocess.run([*enclave_cli, "demo", "--json"], env=env, check=True, capture_output=True)
        with Enclave(Settings.load(data_dir=data)) as enclave:
            _, secret = Accounts(enclave.store).create_token("alice", "connections")
            url = enclave.store.url  # the embedded server's socket in the data directory
        server = subprocess.Popen(
            [*enclave_cli, "serve", "--port", str(PORT)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{PORT}",
            headers={"Authorization": f"Bearer {secret}"},
            timeout=60,
        )
        try:
            for _ in range(120):
                try:
                    client.get("/api/documents")
                    break
                except httpx.TransportError:
                    time.sleep(1)

            def search(_: int) -> int:
                body = {"query": "How long are audit log entries kept?"}
                return client.post("/api/search", json=body).status_code

            print("| burst | requests | 200 | server connections after |\n|---:|---:|---:|---:|")
            for burst in range(1, args.bursts + 1):
                with ThreadPoolExecutor(args.clients) as pool:
                    codes = list(pool.map(search, range(args.requests)))
                print(
                    f"| {burst} | {len(codes)} | {codes.count(200)} | {client_connections(url)} |",
                    flush=True,
                )
                time.sleep(IDLE_S)
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
