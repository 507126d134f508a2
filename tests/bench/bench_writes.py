"""Benchmark of acknowledged writes over HTTP: node creations per second and p50/p99 latency.

Not part of the pass/fail suite (`python tests/bench/bench_writes.py`). A real `onm manager serve`
process on SQLite (the default, WAL with synchronous=FULL) gets one tenant, one network and
one host per client (a tenant per client keeps each under the default quota of nodes); then
CLIENTS threads, each with its own HTTP connection, create nodes with POST /v1/nodes for a
fixed time or NODES_PER_CLIENT nodes, whichever comes first. Every answer is an acknowledged
write: one SQLite commit (and, since issue #7, one acknowledged-revision marker update,
`onm.manager.durability`). Rate limits are raised out of the way (UNLIMITED). The
machine is shared and noisy, so beside the figure is a baseline measured the same way in the
same run: an authenticated GET /v1/hosts/{host} (token check and one read transaction).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for `support`

from support.manager import UNLIMITED, ManagerProcess, start_manager

CLIENTS = (1, 4)
SECONDS = 5.0
NODES_PER_CLIENT = 900  # under the default tenant quota (1000 nodes)


@dataclass(frozen=True)
class Figure:
    rate: float
    p50_ms: float
    p99_ms: float


def post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def measure(manager: ManagerProcess, clients: int, write: bool, tag: str) -> Figure:
    auth = {"Authorization": f"Bearer {manager.admin_token}"}
    with httpx.Client(base_url=manager.url, headers=auth, timeout=30) as admin:
        networks = []
        for c in range(clients):
            post(admin, "/v1/tenants", {"name": f"bench-{tag}-{c}"})
            body = {"tenant": f"bench-{tag}-{c}", "name": "net", "cidrs": ["10.6.0.0/16"]}
            networks.append(post(admin, "/v1/networks", body)["id"])
        hosts = [
            post(
                admin,
                "/v1/hosts",
                {"name": f"h-{tag}-{c}", "prefix": f"fd00:0:{tag_number(tag)}:{c + 1}::/64"},
            )["host"]["id"]
            for c in range(clients)
        ]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    start = threading.Barrier(clients + 1)
    end: list[float] = []
    elapsed = [0.0] * clients

    def loop(c: int) -> None:
        with httpx.Client(base_url=manager.url, headers=auth, timeout=30) as client:
            start.wait()
            began = time.perf_counter()
            for k in range(NODES_PER_CLIENT):
                sent = time.perf_counter()
                if sent >= end[0]:
                    break
                if write:
                    body = {"name": f"n{k}", "network": networks[c], "host": hosts[c]}
                    body["ip"] = f"10.6.{(k + 2) // 256}.{(k + 2) % 256}"
                    response = client.post("/v1/nodes", json=body)
                    assert response.status_code == 201, response.text
                else:
                    assert client.get(f"/v1/hosts/{hosts[c]}").status_code == 200
                latencies[c].append(time.perf_counter() - sent)
            elapsed[c] = time.perf_counter() - began

    threads = [threading.Thread(target=loop, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    end.append(time.perf_counter() + SECONDS)
    start.wait()
    for thread in threads:
        thread.join()
    every = sorted(x for per in latencies for x in per)
    cuts = statistics.quantiles(every, n=100)
    return Figure(len(every) / max(elapsed), cuts[49] * 1000, cuts[98] * 1000)


def tag_number(tag: str) -> int:
    return sum(ord(ch) for ch in tag) % 0xFFFF


def main() -> None:
    print(f"onm manager on SQLite over HTTP: {SECONDS:.0f} s per figure")
    header = f"{'clients':>7} {'request':<26} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="onm-bench-") as tmp:
        manager = start_manager(Path(tmp) / "sqlite", extra=UNLIMITED)
        try:
            for clients in CLIENTS:
                for name, write in (("POST /v1/nodes (write)", True), ("GET /v1/hosts/{h}", False)):
                    tag = f"{clients}{'w' if write else 'r'}"
                    f = measure(manager, clients, write, tag)
                    print(
                        f"{clients:>7} {name:<26} {f.rate:>8.0f} {f.p50_ms:>8.2f} {f.p99_ms:>8.2f}"
                    )
        finally:
            manager.stop()


if __name__ == "__main__":
    main()
