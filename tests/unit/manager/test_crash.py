"""Crash safety (issue #3): what the manager acknowledged over HTTP survives a SIGKILL.

Writers keep creating nodes over HTTP; right after the 50th acknowledgement the manager is
killed with SIGKILL, requests still in flight. Restarted on the same state directory (and, for
PostgreSQL, the same database), it must still hold every object it acknowledged, and the admin
token file it wrote on first start must still open it. Requests that were never answered may
or may not have happened; nothing is checked about them.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from support.manager import ManagerProcess, auth, create, running_manager, start_manager

WRITERS = 4  # each on its own host
ACKNOWLEDGED = 50
NODES_PER_WRITER = 40  # more than the kill leaves time for


def write_until_killed(manager: ManagerProcess) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Create a world, then nodes from WRITERS threads; SIGKILL after ACKNOWLEDGED answers."""
    acknowledged: list[dict[str, Any]] = []
    lock = threading.Lock()
    enough = threading.Event()
    with httpx.Client(base_url=manager.url, headers=auth(manager.admin_token)) as client:
        tenant = create(client, "/v1/tenants", {"name": "acme"})
        network = create(
            client, "/v1/networks", {"tenant": "acme", "name": "blue", "cidrs": ["10.9.0.0/16"]}
        )
        hosts = [
            create(
                client,
                "/v1/hosts",
                {"name": f"h{w}", "location": {"locale": 1, "area": 1, "rack": 1, "node": w}},
            )
            for w in range(WRITERS)
        ]
    world = {"tenant": tenant, "network": network, "hosts": hosts}

    def writer(w: int) -> None:
        headers = auth(manager.admin_token)
        with httpx.Client(base_url=manager.url, headers=headers, timeout=10) as client:
            for k in range(NODES_PER_WRITER):
                body = {"name": f"n{w}-{k}", "network": "blue", "host": f"h{w}"}
                body["ip"] = f"10.9.{w}.{10 + k}"
                try:
                    response = client.post("/v1/nodes", json=body)
                except httpx.TransportError:
                    return  # the manager is gone: this request was never acknowledged
                assert response.status_code == 201, response.text
                with lock:
                    acknowledged.append(response.json())
                    if len(acknowledged) >= ACKNOWLEDGED:
                        enough.set()

    with ThreadPoolExecutor(WRITERS) as pool:
        writers = [pool.submit(writer, w) for w in range(WRITERS)]
        try:
            while not enough.wait(0.01) and not all(f.done() for f in writers):
                pass
            manager.kill()
        finally:
            manager.stop()  # only if something above failed before the kill
        for done in writers:
            done.result()  # a writer's failed assertion fails the test here
    # Every answer a writer received was an acknowledgement, also those counted after the kill.
    return acknowledged, world


def test_acknowledged_writes_survive_sigkill(tmp_path: Path, database_url: str) -> None:
    state = tmp_path / "state"
    db = None if database_url.startswith("sqlite") else database_url  # SQLite: the default file
    first = start_manager(state, db)
    try:
        acknowledged, world = write_until_killed(first)
    finally:
        first.stop()
    assert len(acknowledged) >= ACKNOWLEDGED

    with running_manager(state, db) as manager:
        token = (state / "admin.token").read_text().strip()
        assert token == first.admin_token  # kept, not replaced by a new one
        with httpx.Client(base_url=manager.url, headers=auth(token), timeout=10) as client:
            tenant = client.get("/v1/tenants/acme").json()
            assert tenant.pop("quotas")["networks"]["used"] == 1
            assert tenant == world["tenant"]["tenant"]
            assert client.get("/v1/networks/acme/blue").json() == world["network"]
            for created in world["hosts"]:
                host = created["host"]
                assert client.get(f"/v1/hosts/{host['id']}").json() == host
                host_view = client.get(f"/v1/hosts/{host['id']}", headers=auth(created["token"]))
                assert host_view.status_code == 200
            stored = {n["id"]: n for n in client.get("/v1/nodes").json()}
            for node in acknowledged:
                assert stored.get(node["id"]) == node
            status = client.get("/v1/status").json()
    # One revision per transaction: the world's 2 + WRITERS, then one per node at least.
    assert status["revision"] >= 2 + WRITERS + len(acknowledged)
