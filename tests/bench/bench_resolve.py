"""Benchmark of address resolution over HTTP: resolutions per second and p50/p99 latency.

Not part of the pass/fail suite (`make bench-manager`). For each backend (SQLite, the default,
and PostgreSQL on a throwaway server) a real `onm manager serve` process gets a world of one
tenant, one network, two hosts and 50 nodes; then 8 concurrent clients, each a thread with its
own HTTP connection and its host's token, send POST /v1/resolve for a fixed time, as agents
resolving for the nodes they run. The machine is shared and noisy, so beside every figure is a
baseline measured the same way in the same run: an authenticated GET /v1/hosts/{host} (token
check and one read transaction, no resolution). The ratio resolve/baseline is what to compare
between runs.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for `support`

from support.manager import UNLIMITED, ManagerProcess, running_manager
from support.postgres import postgres_server

CLIENTS = 8
NODES = 50
HOSTS = 2
SECONDS = 5.0
WARM_UP = 1.0


@dataclass(frozen=True)
class Agent:
    """What one client knows: its host's token and the nodes that host runs."""

    token: str
    host_id: str
    node_ids: list[str]


@dataclass(frozen=True)
class World:
    network_id: str
    ips: list[str]
    agents: list[Agent]


@dataclass(frozen=True)
class Figure:
    rate: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def build_world(manager: ManagerProcess) -> World:
    auth = {"Authorization": f"Bearer {manager.admin_token}"}
    with httpx.Client(base_url=manager.url, headers=auth, timeout=30) as client:

        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            response = client.post(path, json=body)
            response.raise_for_status()
            answer: dict[str, Any] = response.json()
            return answer

        post("/v1/tenants", {"name": "bench"})
        network = post("/v1/networks", {"tenant": "bench", "name": "net", "cidrs": ["10.7.0.0/24"]})
        hosts = [
            post(
                "/v1/hosts",
                {"name": f"h{h}", "location": {"locale": 1, "area": 1, "rack": 1, "node": h}},
            )
            for h in range(HOSTS)
        ]
        nodes: dict[str, list[str]] = {h["host"]["id"]: [] for h in hosts}
        ips = []
        for n in range(NODES):
            host = hosts[n % HOSTS]["host"]
            ip = f"10.7.0.{10 + n}"
            node = post(
                "/v1/nodes", {"name": f"n{n}", "network": "net", "host": host["id"], "ip": ip}
            )
            nodes[host["id"]].append(node["id"])
            ips.append(ip)
    agents = [Agent(h["token"], h["host"]["id"], nodes[h["host"]["id"]]) for h in hosts]
    return World(network["id"], ips, agents)


Request = Callable[[httpx.Client, Agent, int], httpx.Response]


def resolve(world: World) -> Request:
    def send(client: httpx.Client, agent: Agent, i: int) -> httpx.Response:
        body = {
            "network": world.network_id,
            "requester": agent.node_ids[i % len(agent.node_ids)],
            "ip": world.ips[(i * 7) % len(world.ips)],
        }
        return client.post("/v1/resolve", json=body)

    return send


def get_host(client: httpx.Client, agent: Agent, _i: int) -> httpx.Response:
    return client.get(f"/v1/hosts/{agent.host_id}")


def measure(manager: ManagerProcess, world: World, send: Request) -> Figure:
    """CLIENTS threads sending for WARM_UP + SECONDS; only the last SECONDS are counted."""
    start = threading.Barrier(CLIENTS + 1)
    latencies: list[list[float]] = [[] for _ in range(CLIENTS)]
    errors = [0] * CLIENTS
    window: list[float] = []

    def client_loop(c: int) -> None:
        agent = world.agents[c % len(world.agents)]
        headers = {"Authorization": f"Bearer {agent.token}"}
        with httpx.Client(base_url=manager.url, headers=headers, timeout=30) as client:
            start.wait()
            begin, end = window
            i = c
            while True:
                sent = time.perf_counter()
                if sent >= end:
                    return
                response = send(client, agent, i)
                done = time.perf_counter()
                i += CLIENTS
                if sent < begin:
                    continue
                if response.status_code != 200:
                    errors[c] += 1
                latencies[c].append(done - sent)

    threads = [threading.Thread(target=client_loop, args=(c,)) for c in range(CLIENTS)]
    for thread in threads:
        thread.start()
    now = time.perf_counter()
    window.extend([now + WARM_UP, now + WARM_UP + SECONDS])
    start.wait()
    for thread in threads:
        thread.join()
    all_latencies = sorted(x for per_client in latencies for x in per_client)
    cuts = statistics.quantiles(all_latencies, n=100)
    return Figure(
        rate=len(all_latencies) / SECONDS,
        p50_ms=cuts[49] * 1000,
        p99_ms=cuts[98] * 1000,
        requests=len(all_latencies),
        errors=sum(errors),
    )


@contextmanager
def managers() -> Iterator[list[tuple[str, ManagerProcess]]]:
    """A manager on SQLite and one on PostgreSQL, each with its own state dir."""
    with (
        tempfile.TemporaryDirectory(prefix="onm-bench-") as tmp,
        postgres_server() as postgres,
        running_manager(Path(tmp) / "sqlite", extra=UNLIMITED) as on_sqlite,
        running_manager(
            Path(tmp) / "postgresql", postgres.url("onm"), extra=UNLIMITED
        ) as on_postgres,
    ):
        yield [("sqlite", on_sqlite), ("postgresql", on_postgres)]


def main() -> None:
    print(
        f"onm manager over HTTP: {CLIENTS} clients, {SECONDS:.0f} s per figure after "
        f"{WARM_UP:.0f} s warm-up; {NODES} nodes on {HOSTS} hosts in one network"
    )
    header = (
        f"{'backend':<11} {'request':<26} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
    )
    print(header)
    print("-" * len(header))
    with managers() as running:
        for backend, manager in running:
            world = build_world(manager)
            figures = {
                "POST /v1/resolve": measure(manager, world, resolve(world)),
                "GET /v1/hosts/{h} (base)": measure(manager, world, get_host),
            }
            for name, f in figures.items():
                print(
                    f"{backend:<11} {name:<26} {f.rate:>8.0f} {f.p50_ms:>8.2f} "
                    f"{f.p99_ms:>8.2f} {f.errors:>7}"
                )
            ratio = figures["POST /v1/resolve"].rate / figures["GET /v1/hosts/{h} (base)"].rate
            print(f"{backend:<11} {'ratio resolve/baseline':<26} {ratio:>8.2f}")


if __name__ == "__main__":
    main()
