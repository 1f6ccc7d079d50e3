"""Load test: concurrent clients against one real `enclave serve`, on loopback only.

    .venv/bin/python benchmarks/load.py [--clients 32] [--seconds 60]

The demo corpus, its users alice and bob and six more users in random groups; each client
is one of them with its own API token and, until the time is up, searches (70 %), asks
through the native API (20 %) or through /v1/chat/completions (10 %). Every response is
checked: no hit, source or citation from a document its user may not read. A 503 with
Retry-After (the model's queue is full) is a valid answer and counted apart. Prints a
markdown table. Bounded: at most --clients threads for --seconds, then a drain.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from enclave.config import Settings
from enclave.demo import setup_demo
from enclave.pipeline.embedding import MINILM
from enclave.pipeline.wiring import Enclave
from enclave.server.accounts import Accounts

QUESTIONS = [
    "How long does the audit log keep entries?",
    "How do I export the audit log?",
    "Wie viele Urlaubstage bekommen Mitarbeitende?",
    "What is new in Lumen 4.2?",
    "Can I work from abroad?",
    "Wie wird das Gerät gewartet?",
    "What was decided at the all-hands meeting?",
    "Who approves remote work?",
]
GROUPS = ["engineering", "hr", "staff"]


def prepare(data_dir: Path, extra_users: int, rng: random.Random) -> dict[str, Any]:
    """Demo data, users and tokens; what each user may read."""
    with Enclave(Settings.load(data_dir=data_dir, embedding_model=MINILM)) as enclave:
        setup_demo(enclave)
        for n in range(extra_users):
            enclave.store.add_user(f"user{n}", rng.sample(GROUPS, rng.randint(0, 2)))
        accounts = Accounts(enclave.store)
        users = [u["name"] for u in enclave.store.users()]
        tokens = {u: accounts.create_token(u, "load")[1] for u in users}
        readable = {
            u: {d.document_id for d in enclave.store.visible_documents(enclave.store.viewer(u))}
            for u in users
        }
    return {"tokens": tokens, "readable": readable}


def shown_documents(route: str, body: dict[str, Any]) -> set[int]:
    """Every document id a response shows its caller."""
    if route == "search":
        return {h["document_id"] for h in body["hits"]}
    answer = body["enclave"] if route == "openai" else body
    return {s["document_id"] for s in answer["sources"]} | {
        c["document_id"] for c in answer["citations"]
    }


def one_request(client: httpx.Client, route: str, rng: random.Random) -> httpx.Response:
    question = rng.choice(QUESTIONS)
    if route == "search":
        return client.post("/api/search", json={"query": question, "k": 5})
    if route == "ask":
        return client.post("/api/ask", json={"question": question, "k": 3, "stream": False})
    messages = [{"role": "user", "content": question}]
    return client.post(
        "/v1/chat/completions", json={"model": "enclave", "messages": messages, "enclave": {"k": 3}}
    )


def client_loop(
    url: str,
    user: str,
    setup: dict[str, Any],
    until: float,
    seed: int,
    results: list[tuple[str, int, float, bool]],
) -> None:
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {setup['tokens'][user]}"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        while time.monotonic() < until:
            route = rng.choices(["search", "ask", "openai"], [70, 20, 10])[0]
            started = time.perf_counter()
            try:
                response = one_request(client, route, rng)
            except httpx.HTTPError as exc:
                print(f"ERROR {user} {route}: {exc!r}", file=sys.stderr, flush=True)
                results.append((route, 0, time.perf_counter() - started, False))
                continue
            elapsed = time.perf_counter() - started
            leak = False
            if response.status_code == 200:
                shown = shown_documents(route, response.json())
                leak = not shown <= setup["readable"][user]
                if leak:
                    print(
                        f"LEAK {user} {route}: {shown} not within {setup['readable'][user]}:"
                        f" {response.text[:3000]}",
                        file=sys.stderr,
                        flush=True,
                    )
            elif response.status_code not in (200, 503):
                print(
                    f"ERROR {user} {route} {response.status_code}: {response.text[:500]}",
                    file=sys.stderr,
                    flush=True,
                )
            elif response.status_code == 503 and "retry-after" not in response.headers:
                leak = False
                response.status_code = 599  # a refusal must say when to come back
            results.append((route, response.status_code, elapsed, leak))


def report(results: list[tuple[str, int, float, bool]], clients: int, seconds: int) -> None:
    print(f"## Load: {clients} clients for {seconds} s on loopback\n")
    print("| route | requests | 200 | 503 (queue full) | errors | leaks | p50 ms | p95 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    by_route: dict[str, list[tuple[int, float, bool]]] = defaultdict(list)
    for route, status, elapsed, leak in results:
        by_route[route].append((status, elapsed, leak))
    for route in ("search", "ask", "openai"):
        rows = by_route[route]
        ok = [e for s, e, _ in rows if s == 200]
        busy = sum(1 for s, _, _ in rows if s == 503)
        errors = sum(1 for s, _, _ in rows if s not in (200, 503))
        leaks = sum(1 for _, _, leak in rows if leak)
        p50, p95 = (np.percentile(ok, [50, 95]) * 1000) if ok else (float("nan"),) * 2
        print(
            f"| {route} | {len(rows)} | {len(ok)} | {busy} | {errors} | {leaks} | "
            f"{p50:.0f} | {p95:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--server-log", type=Path, help="Write the server's log here.")
    args = parser.parse_args()
    rng = random.Random(11)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        setup = prepare(data_dir, 6, rng)
        environment = os.environ | {
            "ENCLAVE_MAX_ANSWER_TOKENS": "64",
            "ENCLAVE_LLM_WAIT_SECONDS": "20",
        }
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "enclave.cli",
                "serve",
                "--port",
                str(args.port),
                "--data-dir",
                str(data_dir),
            ],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=args.server_log.open("w") if args.server_log else subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{args.port}"
        try:
            wait_for(url, server)
            users = sorted(setup["tokens"])
            results: list[tuple[str, int, float, bool]] = []
            until = time.monotonic() + args.seconds
            threads = [
                threading.Thread(
                    target=client_loop,
                    args=(url, users[n % len(users)], setup, until, n, results),
                )
                for n in range(args.clients)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            alive = httpx.get(f"{url}/login", timeout=10).status_code == 200
            report(results, args.clients, args.seconds)
            print(f"\nServer answering after the run: {alive}.")
        finally:
            server.terminate()
            server.wait(timeout=60)


def wait_for(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.time() + 240
    while time.time() < deadline:
        assert server.poll() is None, "the server exited"
        try:
            if httpx.get(f"{url}/login", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.5)
    raise SystemExit("the server did not start")


if __name__ == "__main__":
    main()
