"""onm.manager.api over HTTP: status codes, the one error shape, strict bodies, limits, long polls.

Who may do what is tabled in test_authorization.py; this module checks what every answer looks
like. `client` is authenticated as admin.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from httpx import Response

from onm.addressing import HostPrefix, Location
from onm.api.schemas import MAX_INT64
from onm.manager import nodes, tenants
from onm.manager.api.app import Context
from onm.manager.api.limits import MAX_BODY
from onm.manager.ratelimit import Limiter, Limits, OperationClass, Rate
from onm.manager.resolution import RESOLUTION_TTL
from support.manager_world import NOW, Actor, Clock, World, bearer, first_streamed_chunk

ERROR_KEYS = {"status", "code", "message", "field"}


def error_of(response: Response, status: int, code: str, field: str | None = None) -> str:
    """Check the one error shape; return the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == ERROR_KEYS
    assert body["error"]["status"] == status
    assert body["error"]["code"] == code
    assert body["error"]["field"] == field
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    return str(body["error"]["message"])


@pytest.fixture
def seeded(client: TestClient) -> dict[str, Any]:
    """Through the API: tenant t, network t/n, hosts h1 and h2, nodes web (h1) and db (h2)."""
    tenant = client.post("/v1/tenants", json={"name": "t"})
    assert tenant.status_code == 201, tenant.text
    network = client.post(
        "/v1/networks", json={"tenant": "t", "name": "n", "cidrs": ["10.0.0.0/24"]}
    )
    h1 = client.post(
        "/v1/hosts", json={"name": "h1", "location": {"locale": 1, "area": 2, "rack": 3, "node": 4}}
    )
    h2 = client.post("/v1/hosts", json={"name": "h2", "prefix": "fd00:0:102:305::/64"})
    web = client.post(
        "/v1/nodes", json={"name": "web", "network": "t/n", "host": "h1", "ip": "10.0.0.10"}
    )
    db = client.post(
        "/v1/nodes", json={"name": "db", "network": "t/n", "host": "h2", "ip": "10.0.0.20"}
    )
    for response in (network, h1, h2, web, db):
        assert response.status_code == 201, response.text
    return {
        "tenant": tenant.json(),
        "network": network.json(),
        "h1": h1.json(),
        "h2": h2.json(),
        "web": web.json(),
        "db": db.json(),
    }


# --- success answers -------------------------------------------------------------------------


def test_create_read_delete_statuses(client: TestClient) -> None:
    created = client.post("/v1/tenants", json={"name": "t"})
    assert created.status_code == 201
    assert created.json()["tenant"]["name"] == "t"
    assert created.json()["token"].startswith("onm_tenant_")
    assert client.get("/v1/tenants/t").status_code == 200
    assert [t["name"] for t in client.get("/v1/tenants").json()] == ["t"]
    deleted = client.delete("/v1/tenants/t")
    assert deleted.status_code == 204
    assert deleted.content == b""
    error_of(client.get("/v1/tenants/t"), 404, "not_found")


def test_bodies_of_each_kind(client: TestClient, seeded: dict[str, Any]) -> None:
    network = seeded["network"]
    assert network["vni"] == 1
    assert network["cidrs"] == ["10.0.0.0/24"]
    assert network["encoding"] == "siit"
    assert network["gateway"] == "10.0.0.1"
    assert network["tenant_id"] == seeded["tenant"]["tenant"]["id"]
    h1 = seeded["h1"]["host"]
    assert h1["prefix"] == str(HostPrefix(Location(locale=1, area=2, rack=3, node=4)))
    assert h1["location"] == {"locale": 1, "area": 2, "rack": 3, "node": 4}
    assert seeded["h1"]["token"].startswith("onm_host_")
    assert seeded["h2"]["host"]["location"] == {"locale": 1, "area": 2, "rack": 3, "node": 5}
    web = seeded["web"]
    assert (web["ip"], web["slot"], web["host_id"]) == ("10.0.0.10", 0, h1["id"])
    assert web["created_at"] == "2025-01-02T03:04:05Z"
    assert client.get("/v1/nodes/t/n/web").json() == web
    assert client.get(f"/v1/nodes/{web['id']}").json() == web
    assert client.get("/v1/nodes/web", params={"network": "t/n"}).json() == web
    assert client.get("/v1/networks/t/n").json() == network
    assert [n["name"] for n in client.get("/v1/nodes", params={"host": "h2"}).json()] == ["db"]


def test_resolve_answers_live_the_contexts_resolution_ttl(
    client: TestClient, context: Context, seeded: dict[str, Any]
) -> None:
    context.resolution_ttl = dt.timedelta(seconds=6)  # `onm manager serve --resolution-ttl 6`
    answer = client.post(
        "/v1/resolve",
        json={"network": "t/n", "requester": "web", "ip": "10.0.0.20"},
        headers=bearer(seeded["h1"]["token"]),
    )
    assert answer.status_code == 200, answer.text
    expected = NOW + dt.timedelta(seconds=6)
    assert answer.json()["expires_at"] == expected.isoformat().replace("+00:00", "Z")


def test_resolve_and_verify(client: TestClient, seeded: dict[str, Any], clock: Clock) -> None:
    h1_token = seeded["h1"]["token"]
    answer = client.post(
        "/v1/resolve",
        json={"network": "t/n", "requester": "web", "ip": "10.0.0.20"},
        headers=bearer(h1_token),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["target_id"] == seeded["db"]["id"]
    assert body["mac"] == seeded["db"]["mac"]
    assert body["expires_at"] == (NOW + RESOLUTION_TTL).isoformat().replace("+00:00", "Z")
    verdict = client.post(
        "/v1/verify",
        json={"network": "t/n", "ip": "10.0.0.20", "substrate_source": body["substrate_address"]},
    )
    assert verdict.json() == {"valid": True, "reason": "ok", "expected": body["substrate_address"]}
    wrong = client.post(
        "/v1/verify", json={"network": "t/n", "ip": "10.0.0.20", "substrate_source": "fd00::1"}
    ).json()
    assert wrong["valid"] is False
    assert wrong["expected"] == body["substrate_address"]
    # What h1 was told is in its snapshot.
    snapshot = client.get("/v1/hosts/h1/snapshot", headers=bearer(h1_token)).json()
    assert snapshot["grants"] == [body]


def test_refused_resolution_says_why(client: TestClient, seeded: dict[str, Any]) -> None:
    message = error_of(
        client.post("/v1/resolve", json={"network": "t/n", "requester": "web", "ip": "10.0.0.99"}),
        404,
        "not_found",
    )
    assert "10.0.0.99" in message


def test_snapshot_report_and_status(
    client: TestClient, seeded: dict[str, Any], clock: Clock
) -> None:
    h1 = seeded["h1"]["token"]
    snapshot = client.get("/v1/hosts/h1/snapshot", headers=bearer(h1))
    assert snapshot.status_code == 200
    body = snapshot.json()
    assert body["host"]["name"] == "h1"
    assert [n["name"] for n in body["networks"]] == ["n"]
    assert [n["node"]["name"] for n in body["nodes"]] == ["web"]
    assert sorted(r["ip"] for r in body["residents"]) == ["10.0.0.10", "10.0.0.20"]
    revision = body["revision"]

    status = client.get("/v1/status").json()
    assert status["revision"] == revision
    rows = {row["host"]: row for row in status["hosts"]}
    assert rows["h1"]["lagging"] and rows["h1"]["silent"]
    assert rows["h1"]["last_report_at"] is None

    report = client.post(
        "/v1/hosts/h1/report", json={"applied_revision": revision}, headers=bearer(h1)
    )
    assert report.status_code == 200, report.text
    assert report.json()["lagging"] is False
    assert report.json()["silent"] is False
    rows = {row["host"]: row for row in client.get("/v1/status").json()["hosts"]}
    assert (rows["h1"]["lagging"], rows["h1"]["silent"]) == (False, False)
    assert rows["h2"]["lagging"] and rows["h2"]["silent"]

    clock.advance(dt.timedelta(seconds=61))
    rows = {row["host"]: row for row in client.get("/v1/status").json()["hosts"]}
    assert rows["h1"]["silent"] and not rows["h1"]["lagging"]

    message = error_of(
        client.post("/v1/hosts/h1/report", json={"applied_revision": revision + 1}),
        400,
        "invalid_input",
        "applied_revision",
    )
    assert str(revision + 1) in message


def test_events(client: TestClient, seeded: dict[str, Any]) -> None:
    every = client.get("/v1/events").json()
    assert [e["kind"] for e in every] == [
        "tenant.created",
        "network.created",
        "host.created",
        "host.created",
        "node.created",
        "node.created",
    ]
    assert {e["actor"] for e in every} == {"admin"}
    later = client.get("/v1/events", params={"after": every[1]["seq"], "limit": 2}).json()
    assert later == every[2:4]
    assert client.get("/v1/events", params={"limit": 1}).json() == every[-1:]
    tenant = seeded["tenant"]["token"]
    mine = client.get("/v1/events", headers=bearer(tenant)).json()
    assert [e["kind"] for e in mine] == ["tenant.created", "network.created"] + ["node.created"] * 2


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/tenants", {"name": "Bad Name"}, "name"),
        ("/v1/tenants", {}, "name"),  # missing
        ("/v1/tenants", {"name": 7}, "name"),  # wrong type
        ("/v1/tenants", {"name": "x" * 64}, "name"),  # too long for the schema
        ("/v1/tenants", {"name": "t", "colour": "red"}, "colour"),  # unknown field
        ("/v1/networks", {"tenant": "t", "name": "m", "cidrs": ["10.0.0.0/33"]}, "cidrs"),
        ("/v1/networks", {"tenant": "t", "name": "m", "cidrs": []}, "cidrs"),
        ("/v1/networks", {"name": "m", "cidrs": ["10.0.0.0/24"]}, "tenant"),
        ("/v1/networks", {"tenant": "t", "name": "m", "cidrs": ["10.0.0.0/24"], "vni": 5}, "vni"),
        (
            "/v1/networks",
            {"tenant": "t", "name": "m", "cidrs": ["10.0.0.0/24"], "encoding": "gre"},
            "encoding",
        ),
        ("/v1/hosts", {"name": "h9"}, "prefix"),
        ("/v1/hosts", {"name": "h9", "prefix": "fd00::/48"}, "prefix"),
        (
            "/v1/hosts",
            {"name": "h9", "location": {"locale": 64, "area": 0, "rack": 0, "node": 0}},
            "location.locale",
        ),
        (
            "/v1/hosts",
            {"name": "h9", "location": {"locale": 1, "area": 2, "rack": 3}},
            "location.node",
        ),
        (
            "/v1/hosts",
            {
                "name": "h9",
                "prefix": "fd00:0:102:399::/64",
                "location": {"locale": 1, "area": 2, "rack": 3, "node": 4},
            },
            "prefix",
        ),
        ("/v1/nodes", {"name": "x", "network": "t/n", "host": "h1", "ip": "10.9.0.1"}, "ip"),
        ("/v1/nodes", {"name": "x", "network": "t/n", "host": "h1", "ip": "10.0.0.0"}, "ip"),
        ("/v1/nodes", {"name": "x", "network": "t/n", "host": "h1", "ip": "10.0.0.255"}, "ip"),
        ("/v1/nodes", {"name": "x", "network": "t/n", "host": "h1", "ip": "10.0.0.1"}, "ip"),
        ("/v1/nodes", {"name": "x", "network": "t/n", "host": "h1", "ip": "ten"}, "ip"),
        (
            "/v1/nodes",
            {"name": "x", "network": "t/n", "host": "h1", "ip": "10.0.0.9", "interface": "a b"},
            "interface",
        ),
        ("/v1/resolve", {"network": "t/n", "requester": "web", "ip": "x"}, "ip"),
        ("/v1/resolve", {"network": "t/n", "requester": "web"}, "ip"),
        (
            "/v1/verify",
            {"network": "t/n", "ip": "10.0.0.10", "substrate_source": "x"},
            "substrate_source",
        ),
        ("/v1/hosts/h1/report", {"applied_revision": -1}, "applied_revision"),
        ("/v1/hosts/h1/report", {"applied_revision": "one"}, "applied_revision"),
        ("/v1/hosts/h1/report", {"applied_revision": 1, "extra": True}, "extra"),
    ],
)
def test_invalid_input_is_400_naming_the_field(
    client: TestClient, seeded: dict[str, Any], path: str, body: dict[str, Any], field: str
) -> None:
    before = client.get("/v1/status").json()["revision"]
    error_of(client.post(path, json=body), 400, "invalid_input", field)
    assert client.get("/v1/status").json()["revision"] == before  # nothing written


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/tenants", {"name": "t"}, "name"),
        ("/v1/networks", {"tenant": "t", "name": "n", "cidrs": ["10.0.0.0/24"]}, "name"),
        ("/v1/hosts", {"name": "h1", "prefix": "fd00:0:9:9::/64"}, "name"),
        ("/v1/hosts", {"name": "h9", "prefix": "fd00:0:102:305::/64"}, "prefix"),
        ("/v1/nodes", {"name": "web", "network": "t/n", "host": "h2", "ip": "10.0.0.30"}, "name"),
        ("/v1/nodes", {"name": "api", "network": "t/n", "host": "h2", "ip": "10.0.0.10"}, "ip"),
    ],
)
def test_conflicts_are_409_naming_the_field(
    client: TestClient, seeded: dict[str, Any], path: str, body: dict[str, Any], field: str
) -> None:
    error_of(client.post(path, json=body), 409, "conflict", field)


@pytest.mark.parametrize(
    ("path", "field"),
    [("/v1/tenants/t", "tenant"), ("/v1/networks/t/n", "network"), ("/v1/hosts/h1", "host")],
)
def test_deleting_a_parent_with_children_is_409(
    client: TestClient, seeded: dict[str, Any], path: str, field: str
) -> None:
    error_of(client.delete(path), 409, "conflict", field)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"name": ', "not valid JSON"),  # regression: the field was the character position
        (b"[1, 2]", "valid dictionary"),
        (b'"t"', "valid dictionary"),
        (b"", "required"),
    ],
)
def test_a_body_that_is_not_an_object_is_400_naming_the_body(
    client: TestClient, content: bytes, reason: str
) -> None:
    response = client.post(
        "/v1/tenants", content=content, headers={"content-type": "application/json"}
    )
    assert reason in error_of(response, 400, "invalid_input", "body")


def test_missing_and_garbage_tokens_are_401(client: TestClient) -> None:
    for headers in (
        {"Authorization": ""},
        bearer("onm_admin_nope"),
        {"Authorization": "Basic eA=="},
    ):
        response = client.get("/v1/tenants", headers=headers)
        error_of(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"


def test_missing_token_is_401_even_with_a_bad_body(client: TestClient) -> None:
    """Authentication comes before validation: a stranger learns nothing (regression)."""
    error_of(
        client.post("/v1/tenants", json={}, headers={"Authorization": ""}), 401, "unauthorized"
    )


def test_forbidden_is_403(client: TestClient, seeded: dict[str, Any]) -> None:
    tenant = bearer(seeded["tenant"]["token"])
    error_of(
        client.post("/v1/hosts", json={"name": "h9", "prefix": "fd00:0:9:9::/64"}, headers=tenant),
        403,
        "forbidden",
    )


def test_unknown_route_and_method(client: TestClient) -> None:
    error_of(client.get("/v1/nothing"), 404, "http_error")
    error_of(client.put("/v1/tenants"), 405, "http_error")


@pytest.mark.parametrize("after", [MAX_INT64 + 1, 10**30, -1])
def test_out_of_range_event_cursor_is_400(client: TestClient, after: int) -> None:
    """A cursor past what the database can hold is refused, not a 500 (regression)."""
    error_of(client.get("/v1/events", params={"after": after}), 400, "invalid_input", "after")


def test_largest_event_cursor_is_fine(client: TestClient) -> None:
    assert client.get("/v1/events", params={"after": MAX_INT64}).json() == []


def test_oversize_body_is_413(client: TestClient) -> None:
    body = json.dumps({"name": "t", "pad": "x" * MAX_BODY}).encode()
    error_of(
        client.post("/v1/tenants", content=body, headers={"content-type": "application/json"}),
        413,
        "too_large",
    )
    assert client.get("/v1/tenants").json() == []


def test_oversize_chunked_body_is_413(client: TestClient) -> None:
    """No Content-Length: the body is cut where it crosses the limit (regression: was 400)."""

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "t", "pad": "'
        for _ in range(MAX_BODY // 1024 + 1):
            yield b"x" * 1024
        yield b'"}'

    response = client.post(
        "/v1/tenants", content=chunks(), headers={"content-type": "application/json"}
    )
    error_of(response, 413, "too_large")
    assert client.get("/v1/tenants").json() == []


def test_body_at_the_limit_is_read(client: TestClient) -> None:
    prefix = b'{"name": "t", "pad": "'
    body = prefix + b"x" * (MAX_BODY - len(prefix) - 2) + b'"}'
    assert len(body) == MAX_BODY
    # Read in full (and then refused for its unknown field, not for its size).
    error_of(
        client.post("/v1/tenants", content=body, headers={"content-type": "application/json"}),
        400,
        "invalid_input",
        "pad",
    )


def test_internal_errors_hide_their_details(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("secret detail /etc/onm")

    monkeypatch.setattr(tenants, "list_all", broken)
    response = client.get("/v1/tenants")
    message = error_of(response, 500, "internal")
    assert "secret" not in response.text and "RuntimeError" not in response.text
    assert "log" in message


# --- long polls ---------------------------------------------------------------------------------


def desired_revision(client: TestClient, host: str) -> int:
    rows = {row["host"]: row for row in client.get("/v1/status").json()["hosts"]}
    return int(rows[host]["desired_revision"])


def test_long_poll_with_nothing_new_is_204_after_the_wait(
    client: TestClient, seeded: dict[str, Any]
) -> None:
    h1 = bearer(seeded["h1"]["token"])
    current = desired_revision(client, "h1")
    start = time.monotonic()
    response = client.get(
        "/v1/hosts/h1/snapshot", params={"after": current, "wait": 0.3}, headers=h1
    )
    elapsed = time.monotonic() - start
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert 0.3 <= elapsed < 2


def test_long_poll_returns_at_once_when_behind(client: TestClient, seeded: dict[str, Any]) -> None:
    h1 = bearer(seeded["h1"]["token"])
    current = desired_revision(client, "h1")
    start = time.monotonic()
    response = client.get(
        "/v1/hosts/h1/snapshot", params={"after": current - 1, "wait": 5}, headers=h1
    )
    assert response.status_code == 200
    assert time.monotonic() - start < 1


def test_long_poll_wakes_on_a_change(
    client: TestClient, seeded: dict[str, Any], admin: Actor
) -> None:
    h1 = bearer(seeded["h1"]["token"])
    current = desired_revision(client, "h1")

    def change() -> None:
        time.sleep(0.15)
        admin(lambda tx: nodes.create(tx, "late", "t/n", "h2", "10.0.0.30"))  # h1 shares t/n

    thread = threading.Thread(target=change)
    thread.start()
    try:
        start = time.monotonic()
        response = client.get(
            "/v1/hosts/h1/snapshot", params={"after": current, "wait": 5}, headers=h1
        )
        elapsed = time.monotonic() - start
    finally:
        thread.join()
    assert response.status_code == 200, response.text
    assert response.json()["revision"] == desired_revision(client, "h1") > current
    assert "10.0.0.30" in {r["ip"] for r in response.json()["residents"]}
    assert 0.1 < elapsed < 4


def test_long_poll_ignores_changes_elsewhere(
    client: TestClient, seeded: dict[str, Any], admin: Actor
) -> None:
    h1 = bearer(seeded["h1"]["token"])
    current = desired_revision(client, "h1")
    client.post("/v1/tenants", json={"name": "other"})
    response = client.get(
        "/v1/hosts/h1/snapshot", params={"after": current, "wait": 0.1}, headers=h1
    )
    assert response.status_code == 204


@pytest.mark.parametrize(("params", "field"), [({"wait": 61}, "wait"), ({"after": -1}, "after")])
def test_long_poll_bounds(
    client: TestClient, seeded: dict[str, Any], params: dict[str, int], field: str
) -> None:
    error_of(client.get("/v1/hosts/h1/snapshot", params=params), 400, "invalid_input", field)


# --- the event stream ---------------------------------------------------------------------------


def test_event_stream_sends_events_as_server_sent_events(
    client: TestClient, seeded: dict[str, Any], admin_token: str
) -> None:
    app = client.app
    assert isinstance(app, FastAPI)
    status, chunk = first_streamed_chunk(app, "/v1/events/stream?after=0", admin_token)
    assert status == 200
    text = chunk.decode()
    assert text.startswith("id: 1\nevent: tenant.created\ndata: ")
    data = json.loads(text.split("data: ", 1)[1])
    assert data["kind"] == "tenant.created" and data["actor"] == "admin"


def test_event_stream_refuses_before_streaming(client: TestClient, seeded: dict[str, Any]) -> None:
    error_of(client.get("/v1/events/stream", headers=bearer("nope")), 401, "unauthorized")
    error_of(
        client.get("/v1/events/stream", headers=bearer(seeded["h1"]["token"])), 403, "forbidden"
    )


# --- the OpenAPI document -----------------------------------------------------------------------


def test_openapi_lists_every_route(client: TestClient) -> None:
    response = client.get("/openapi.json", headers={"Authorization": ""})
    assert response.status_code == 200
    document = response.json()
    app = client.app
    assert isinstance(app, FastAPI)
    served = {
        (method.lower(), route.path.replace(":path", ""))
        for route in app.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    listed = {(method, path) for path, item in document["paths"].items() for method in item}
    assert served == listed
    assert {p for _, p in served if not p.startswith("/v1/")} == set()
    # 25; for issue #9: 7 for pools and their members, health, claims, accept, reject; and
    # PATCH /v1/networks (auto_pools); for issue #10: 3 external networks, 5 edge pools, 3
    # gateways, 3 routes, 3 firewall rules, 3 public IPs; gateway health: reports, each
    # pool's gateways, rebalance
    assert len(served) == 60
    assert "bearer" in json.dumps(document["components"]["securitySchemes"]).lower()


def test_every_v1_route_wants_a_token(client: TestClient, context: Context) -> None:
    # More failures in a row than one address may make by default (see test_throttle.py).
    context.limiter = Limiter(Limits().with_rates({OperationClass.AUTH: Rate(1, 100)}))
    app = client.app
    assert isinstance(app, FastAPI)
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        path = route.path.replace("{ref:path}", "x").replace("{ref}", "x")
        for method in route.methods or ():
            response = client.request(method, path, json={}, headers={"Authorization": ""})
            error_of(response, 401, "unauthorized")


def test_world_and_client_share_the_store(client: TestClient, world: World) -> None:
    assert client.get("/v1/networks/a/na").json()["vni"] == world.na.vni
