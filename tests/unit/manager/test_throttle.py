"""onm.manager.api.throttle over HTTP: 429 with Retry-After after a burst, recovery, throttling
of bad tokens per client address, tenant quotas, and what the metrics say about them.

The `client` fixture's clock stands still, so a bucket refills only when a test moves the clock:
every figure below is exact, not timed. The last tests run a real manager process.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from onm.manager import tokens
from onm.manager.api.app import Context, create_app
from onm.manager.api.throttle import CLASSES
from onm.manager.quota import Quotas
from onm.manager.ratelimit import Limiter, Limits, OperationClass, Rate
from onm.manager.store import Store
from support.manager import free_port, start_manager
from support.manager_world import Clock, World, bearer

ERROR_KEYS = {"status", "code", "message", "field"}


def limited(context: Context, **rates: Rate) -> None:
    context.limiter = Limiter(Limits().with_rates({OperationClass(k): r for k, r in rates.items()}))


def refused(response: httpx.Response) -> int:
    """A 429 in the one error shape; its Retry-After in seconds."""
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert set(error) == ERROR_KEYS
    assert error["status"] == 429 and error["code"] == "rate_limited"
    assert "retry in" in error["message"]
    header = response.headers["Retry-After"]
    assert header.isdigit() and int(header) >= 1
    return int(header)


def metric(context: Context, name: str, **labels: str) -> float:
    """One sample of the manager's metrics, as Prometheus would read it."""
    registry = CollectorRegistry()
    registry.register(context.metrics)
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


# --- per-token buckets ------------------------------------------------------------------------


def test_a_burst_past_the_limit_gets_429_with_retry_after(
    client: TestClient, context: Context, clock: Clock
) -> None:
    limited(context, read=Rate(2, 10))
    statuses = [client.get("/v1/tenants").status_code for _ in range(25)]
    assert statuses == [200] * 10 + [429] * 15
    response = client.get("/v1/tenants")
    assert refused(response) == 1  # half a second to the next token, rounded up
    assert "at most 2 per second, 10 at once" in response.json()["error"]["message"]
    clock.advance(dt.timedelta(seconds=1))  # two tokens back
    assert [client.get("/v1/tenants").status_code for _ in range(3)] == [200, 200, 429]
    clock.advance(dt.timedelta(seconds=60))  # the whole burst back, no more
    assert [client.get("/v1/tenants").status_code for _ in range(11)] == [200] * 10 + [429]


def test_classes_have_their_own_buckets(client: TestClient, context: Context, world: World) -> None:
    limited(context, write=Rate(1, 1))
    assert client.post("/v1/tenants", json={"name": "t1"}).status_code == 201
    refused(client.post("/v1/tenants", json={"name": "t2"}))
    refused(client.delete("/v1/tenants/t1"))  # deletes are writes too
    assert client.get("/v1/tenants").status_code == 200  # reads are not held back
    host_x = bearer(world.tokens["host_x"])
    ask = {"network": "a/na", "requester": "a1", "ip": "10.0.0.12"}
    assert client.post("/v1/resolve", json=ask, headers=host_x).status_code == 200
    report = client.post("/v1/hosts/x/report", json={"applied_revision": 1}, headers=host_x)
    assert report.status_code == 200, report.text


def test_each_token_has_its_own_budget(client: TestClient, context: Context, world: World) -> None:
    limited(context, read=Rate(1, 3))
    for _ in range(3):
        assert client.get("/v1/networks").status_code == 200
    refused(client.get("/v1/networks"))
    tenant_a = bearer(world.tokens["tenant_a"])
    assert client.get("/v1/networks", headers=tenant_a).status_code == 200


def test_a_throttled_request_does_no_work(client: TestClient, context: Context) -> None:
    limited(context, write=Rate(1, 1))
    assert client.post("/v1/tenants", json={"name": "t1"}).status_code == 201
    refused(client.post("/v1/tenants", json={"name": "t2"}))
    assert [t["name"] for t in client.get("/v1/tenants").json()] == ["t1"]


def test_every_override_names_a_route() -> None:
    app = create_app(Context(Store("sqlite://")))
    served = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    assert set(CLASSES) <= served


def test_the_openapi_document_shows_429_with_retry_after(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            answer = operation["responses"].get("429")
            assert answer is not None, f"{method} {path}"
            assert "Retry-After" in answer["headers"]
            assert answer["content"]["application/json"]["schema"]["$ref"].endswith("ErrorOut")
            assert "422" in operation["responses"]


# --- failed authentication, per client address ------------------------------------------------


def test_bad_tokens_are_throttled_per_address(
    client: TestClient,
    context: Context,
    clock: Clock,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limited(context, auth=Rate(0.25, 5))
    assert client.get("/v1/tenants").status_code == 200  # the admin token has earned trust
    garbage = bearer("onm_admin_" + "x" * 43)
    assert [client.get("/v1/tenants", headers=garbage).status_code for _ in range(5)] == [401] * 5
    assert refused(client.get("/v1/tenants", headers=garbage)) == 4
    refused(client.get("/v1/tenants", headers={"Authorization": ""}))
    # Once throttled, tokens are not even looked up ...
    looked_up = []
    real = tokens.authenticate
    monkeypatch.setattr(
        tokens, "authenticate", lambda tx, token: looked_up.append(token) or real(tx, token)
    )
    for _ in range(50):
        refused(client.get("/v1/tenants", headers=garbage))
    assert looked_up == []
    # ... even a valid one that has not earned a success yet from anywhere,
    refused(client.get("/v1/networks", headers=bearer(world.tokens["tenant_a"])))
    # while a token that has keeps working from the same address (a lab, a NAT),
    assert client.get("/v1/tenants").status_code == 200
    assert looked_up  # and is authenticated as ever
    # and other addresses are not held back at all.
    with TestClient(client.app, client=("192.0.2.9", 4000)) as elsewhere:
        assert elsewhere.get("/v1/tenants", headers=garbage).status_code == 401
        assert (
            elsewhere.get("/v1/networks", headers=bearer(world.tokens["tenant_a"])).status_code
            == 200
        )
    # After the cool-down, one more try.
    clock.advance(dt.timedelta(seconds=4))
    assert client.get("/v1/tenants", headers=garbage).status_code == 401
    refused(client.get("/v1/tenants", headers=garbage))


def test_a_revoked_token_loses_its_trust(
    client: TestClient, context: Context, world: World
) -> None:
    limited(context, auth=Rate(0.25, 2))
    host_z = bearer(world.tokens["host_z"])
    assert client.get("/v1/hosts/z", headers=host_z).status_code == 200
    assert client.delete("/v1/hosts/z").status_code == 204  # revokes z's token
    assert client.get("/v1/hosts/z", headers=host_z).status_code == 401
    assert client.get("/v1/hosts/z", headers=host_z).status_code == 401
    refused(client.get("/v1/hosts/z", headers=host_z))
    assert client.get("/v1/hosts").status_code == 200  # the admin's is still good


# --- quotas -----------------------------------------------------------------------------------


def test_network_quota_is_403_naming_quota_and_limit(client: TestClient, context: Context) -> None:
    context.quotas = Quotas(networks=2, nodes=10)
    assert client.post("/v1/tenants", json={"name": "t"}).status_code == 201
    for i in range(2):
        body = {"tenant": "t", "name": f"n{i}", "cidrs": [f"10.{i}.0.0/24"]}
        assert client.post("/v1/networks", json=body).status_code == 201
    body = {"tenant": "t", "name": "n2", "cidrs": ["10.2.0.0/24"]}
    response = client.post("/v1/networks", json=body)
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert "networks" in error["message"] and "2" in error["message"] and "'t'" in error["message"]
    assert metric(context, "onm_manager_quota_refusals_total", quota="networks") == 1
    assert client.delete("/v1/networks/t/n0").status_code == 204
    assert client.post("/v1/networks", json=body).status_code == 201  # room again


def test_node_quota_counts_every_network_of_the_tenant(
    client: TestClient, context: Context, world: World
) -> None:
    context.quotas = Quotas(networks=10, nodes=3)  # tenant a holds a1 and a2 already
    node = {"name": "new", "network": "a/empty", "host": "x", "ip": "10.0.1.5"}
    network = {"tenant": "a", "name": "c", "cidrs": ["10.9.0.0/24"]}
    assert client.post("/v1/networks", json=network).status_code == 201
    made = client.post("/v1/nodes", json={**node, "network": "a/c", "ip": "10.9.0.5"})
    assert made.status_code == 201, made.text
    response = client.post("/v1/nodes", json={**node, "network": "a/c", "ip": "10.9.0.6"})
    assert response.status_code == 403 and response.json()["error"]["code"] == "quota_exceeded"
    assert "3 nodes" in response.json()["error"]["message"]
    other = {"name": "new", "network": "b/nb", "host": "y", "ip": "10.0.0.50"}
    assert client.post("/v1/nodes", json=other).status_code == 201  # tenant b has room


# --- metrics ----------------------------------------------------------------------------------


def test_metrics_count_answers_throttles_and_failures(
    client: TestClient, context: Context, world: World
) -> None:
    limited(context, read=Rate(1, 2), auth=Rate(0.1, 1))
    context.metrics.watch(context.store, context.limiter.limits)
    for _ in range(3):
        client.get("/v1/networks")
    client.get("/v1/networks", headers=bearer("garbage"))
    client.get("/v1/networks", headers=bearer("garbage"))
    route = {"route": "/v1/networks", "method": "GET"}
    assert metric(context, "onm_manager_requests_total", **route, status="200") == 2
    assert metric(context, "onm_manager_requests_total", **route, status="429") == 2
    assert metric(context, "onm_manager_requests_total", **route, status="401") == 1
    assert metric(context, "onm_manager_throttled_total", **{"class": "read"}) == 1
    assert metric(context, "onm_manager_throttled_total", **{"class": "auth"}) == 1
    assert metric(context, "onm_manager_auth_failures_total") == 1
    assert metric(context, "onm_manager_rate_limit", **{"class": "read", "what": "burst"}) == 2
    assert metric(context, "onm_manager_tenant_objects", tenant="a", kind="networks") == 2
    assert metric(context, "onm_manager_tenant_objects", tenant="a", kind="nodes") == 2
    assert metric(context, "onm_manager_tenant_objects", tenant="spare", kind="nodes") == 0


# --- a real manager: the issue's figures, the defaults, the metrics listener -------------------


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """A real `onm manager serve` with its default limits and a metrics port."""
    metrics = f"127.0.0.1:{free_port()}"
    running = start_manager(tmp_path / "state", extra=["--metrics", metrics])
    try:
        yield running.url, running.admin_token, f"http://{metrics}/metrics"
    finally:
        running.stop()


def test_issue_burst_and_bad_tokens_are_throttled_by_default(
    manager: tuple[str, str, str],
) -> None:
    """Issue #7: 2,000 authenticated requests in 4.5 s and 500 bad tokens in 0.9 s, all answered."""
    url, token, metrics = manager
    read = Limits().rates[OperationClass.READ]
    with httpx.Client(base_url=url, headers=bearer(token), timeout=10) as http:
        # As fast as one client goes, until the first 429 (a loaded machine is slower: then it
        # takes longer, since the bucket refills meanwhile).
        started, answers = time.monotonic(), [http.get("/v1/tenants")]
        while answers[-1].status_code != 429 and len(answers) < 5000:
            answers.append(http.get("/v1/tenants"))
        elapsed = time.monotonic() - started
        assert refused(answers[-1]) >= 1, f"{len(answers)} requests in {elapsed:.1f} s"
        answered = [a.status_code for a in answers].count(200)
        assert answered == len(answers) - 1
        assert read.burst <= answered <= read.burst + read.per_second * elapsed + 1
        auth = Limits().rates[OperationClass.AUTH]
        started = time.monotonic()
        bad = [
            http.get("/v1/tenants", headers=bearer(f"onm_tenant_guess{i}")).status_code
            for i in range(100)
        ]
        elapsed = time.monotonic() - started
        assert bad[: auth.burst] == [401] * auth.burst
        assert bad.count(401) <= auth.burst + auth.per_second * elapsed + 1
        assert bad.count(429) == len(bad) - bad.count(401)  # the rest: 429, without a lookup
        text = httpx.get(metrics, timeout=10).text
    assert 'onm_manager_throttled_total{class="read"}' in text
    assert 'onm_manager_throttled_total{class="auth"}' in text
    assert "onm_manager_auth_failures_total" in text


def test_metrics_listener_needs_no_token(manager: tuple[str, str, str]) -> None:
    url, token, metrics = manager
    httpx.post(f"{url}/v1/tenants", json={"name": "m"}, headers=bearer(token)).raise_for_status()
    text = httpx.get(metrics, timeout=10).text
    assert 'onm_manager_tenant_objects{kind="networks",tenant="m"} 0.0' in text
    assert 'onm_manager_requests_total{method="POST",route="/v1/tenants",status="201"} 1.0' in text
