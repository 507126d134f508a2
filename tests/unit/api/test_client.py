"""Tests for onm.api.client: the typed API client, against a real manager process.

Answers that a manager never gives (HTML from a proxy, a stream that ends, a timeout) come from
httpx's mock transport instead.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from onm.addressing import HostPrefix, Location
from onm.api import schemas as s
from onm.api.client import DEFAULT_URL, STREAM_IDLE, Client, dump
from onm.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    OnmError,
    RateLimitedError,
    UnauthorizedError,
    UnavailableError,
)
from support.manager import ManagerProcess, free_port, running_manager

SEQ = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(SEQ)}"


def new_location() -> Location:
    return Location(locale=1, area=0, rack=0, node=next(SEQ))


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagerProcess]:
    with running_manager(tmp_path_factory.mktemp("client") / "m") as process:
        yield process


@pytest.fixture
def admin(manager: ManagerProcess) -> Iterator[Client]:
    with Client(manager.url, manager.admin_token) as client:
        yield client


def mocked(handler: httpx.MockTransport) -> Client:
    return Client("http://manager.test", "onm_admin_x", transport=handler)


# --- configuration ---------------------------------------------------------------------------
@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("ONM_URL", "ONM_TOKEN", "ONM_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_from_env_defaults_to_the_local_manager_and_no_token(clean_env: pytest.MonkeyPatch) -> None:
    client = Client.from_env()
    assert (client.url, client.token) == (DEFAULT_URL, "")


def test_from_env_prefers_arguments_then_onm_token_then_the_token_file(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    clean_env.setenv("ONM_URL", "http://env:1")
    clean_env.setenv("ONM_TOKEN_FILE", str(token_file))
    assert Client.from_env().token == "from-file"
    clean_env.setenv("ONM_TOKEN", "from-env")
    assert (Client.from_env().url, Client.from_env().token) == ("http://env:1", "from-env")
    given = Client.from_env("http://given:2/", "given")
    assert (given.url, given.token) == ("http://given:2", "given")


def test_a_token_written_at_path_is_read_from_that_file(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    token_file = tmp_path / "admin.token"
    token_file.write_text("  onm_admin_abc \n")
    assert Client.from_env(token=f"@{token_file}").token == "onm_admin_abc"
    clean_env.setenv("ONM_TOKEN", f"@{token_file}")
    assert Client.from_env().token == "onm_admin_abc"


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "No such file or directory"), ("\n", "is empty")],
)
def test_an_unusable_token_file_is_an_invalid_input(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, content: str | None, reason: str
) -> None:
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_text(content)
    with pytest.raises(InvalidInputError, match=reason) as raised:
        Client.from_env(token=f"@{token_file}")
    assert raised.value.field == "token"
    assert str(token_file) in raised.value.message


@pytest.mark.parametrize(
    ("url", "token", "field"),
    [("localhost:7700", "", "url"), ("ftp://h/", "", "url"), (DEFAULT_URL, "a b", "token")],
)
def test_a_bad_url_or_token_is_refused_before_any_request(url: str, token: str, field: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        Client(url, token)
    assert raised.value.field == field


# --- the manager's routes --------------------------------------------------------------------
def test_tenants_networks_hosts_and_nodes_round_trip(admin: Client) -> None:
    created = admin.create_tenant(unique("t"))
    tenant = created.tenant
    assert created.token.startswith("onm_tenant_")
    assert admin.get_tenant(tenant.name).model_dump(exclude={"quotas"}) == tenant.model_dump()
    assert tenant in admin.list_tenants()

    network = admin.create_network(unique("n"), ["10.9.0.0/24"], tenant.name, "encap")
    assert (network.encoding, network.cidrs, network.tenant_id) == (
        "encap",
        ["10.9.0.0/24"],
        tenant.id,
    )
    for ref in (network.id, network.name, f"{tenant.name}/{network.name}"):
        assert admin.get_network(ref) == network
    assert admin.list_networks(tenant.name) == [network]

    location = new_location()
    host = admin.create_host(unique("h"), location=location).host
    assert host.prefix == str(HostPrefix(location))
    assert admin.get_host(host.name) == host

    node = admin.create_node("a", f"{tenant.name}/{network.name}", host.name, "10.9.0.10")
    for ref, in_network in [
        (node.id, None),
        ("a", network.id),
        (f"{network.name}/a", None),
        (f"{tenant.name}/{network.name}/a", None),
    ]:
        assert admin.get_node(ref, in_network) == node
    assert admin.list_nodes(network=network.id) == [node]
    assert admin.list_nodes(host=host.name) == [node]

    admin.delete_node(node.id)
    admin.delete_network(f"{tenant.name}/{network.name}")
    admin.delete_host(host.name)
    admin.delete_tenant(tenant.id)
    with pytest.raises(NotFoundError, match="no tenant"):
        admin.get_tenant(tenant.id)


def test_dump_gives_back_the_json_the_manager_sent(manager: ManagerProcess, admin: Client) -> None:
    admin.create_tenant(unique("t"))
    raw = httpx.get(
        f"{manager.url}/v1/tenants",
        headers={"Authorization": f"Bearer {manager.admin_token}"},
    ).json()
    assert dump(admin.list_tenants()) == raw
    one = httpx.get(
        f"{manager.url}/v1/tenants/{raw[0]['id']}",
        headers={"Authorization": f"Bearer {manager.admin_token}"},
    ).json()
    assert dump(admin.get_tenant(raw[0]["id"])) == one
    assert {k: v for k, v in one.items() if k != "quotas"} == raw[0]


def test_the_manager_s_errors_become_the_error_tree(manager: ManagerProcess, admin: Client) -> None:
    tenant = admin.create_tenant(unique("t"))
    with pytest.raises(InvalidInputError) as invalid:
        admin.create_network("n", ["10.0.0.0/33"], tenant.tenant.name)
    assert invalid.value.field == "cidrs"
    assert invalid.value.message.startswith("cidrs: '10.0.0.0/33' is not an IPv4 CIDR")
    with pytest.raises(ConflictError) as conflict:
        admin.create_tenant(tenant.tenant.name)
    assert (conflict.value.field, conflict.value.http_status) == ("name", 409)
    with pytest.raises(NotFoundError, match="no network 'nope'"):
        admin.get_network("nope")
    with Client(manager.url, tenant.token) as as_tenant, pytest.raises(ForbiddenError):
        as_tenant.create_host(unique("h"), location=new_location())
    with Client(manager.url, "onm_admin_wrong") as wrong, pytest.raises(UnauthorizedError):
        wrong.list_tenants()
    with Client(manager.url) as nobody, pytest.raises(UnauthorizedError, match="required"):
        nobody.list_tenants()


def test_requests_are_checked_with_the_api_s_own_models(admin: Client) -> None:
    with pytest.raises(InvalidInputError) as raised:
        admin.create_tenant("x" * 64)
    assert raised.value.field == "name"
    assert raised.value.message.startswith("name: String should have at most 63 characters")
    with pytest.raises(InvalidInputError, match="limit"):
        admin.events(limit=0)
    with pytest.raises(InvalidInputError, match="an id or a name is required"):
        admin.get_host("")


def test_an_unreachable_manager_is_unavailable_and_named() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, "t") as client, pytest.raises(UnavailableError) as raised:
        client.status()
    assert raised.value.message.startswith(f"the manager at {url} is unreachable")


def test_the_agent_s_side_snapshot_long_poll_report_resolve_verify(
    manager: ManagerProcess, admin: Client
) -> None:
    tenant = admin.create_tenant(unique("t")).tenant
    network = admin.create_network(unique("n"), ["10.8.0.0/24"], tenant.name)
    one = admin.create_host(unique("h"), location=new_location())
    two = admin.create_host(unique("h"), location=new_location())
    a = admin.create_node("a", network.id, one.host.name, "10.8.0.10")
    b = admin.create_node("b", network.id, two.host.name, "10.8.0.11")

    with Client(manager.url, one.token) as agent:
        snapshot = agent.snapshot(one.host.name)
        assert snapshot is not None
        assert [n.node for n in snapshot.nodes] == [a]
        assert agent.snapshot(one.host.name, after=snapshot.revision, wait=0) is None

        answer = agent.resolve(network.id, "a", "10.8.0.11")
        assert (answer.target_id, answer.mac) == (b.id, b.mac)
        assert agent.verify(network.id, "10.8.0.11", answer.substrate_address).valid
        wrong = agent.verify(network.id, "10.8.0.11", "fd00::1")
        assert (wrong.valid, wrong.expected) == (False, answer.substrate_address)

        status = agent.report(one.host.name, snapshot.revision)
        assert (status.host, status.applied_revision) == (one.host.name, snapshot.revision)

        # A long poll returns as soon as something changes for the host.
        later = threading.Timer(
            0.3, admin.create_node, ("c", network.id, one.host.name, "10.8.0.12")
        )
        started = time.monotonic()
        later.start()
        try:
            newer = agent.snapshot(one.host.name, after=snapshot.revision, wait=20)
        finally:
            later.join()
        assert newer is not None and newer.revision > snapshot.revision
        assert time.monotonic() - started < 10
        assert {n.node.name for n in newer.nodes} == {"a", "c"}

        with pytest.raises(ForbiddenError):
            agent.events()


def test_events_pages_and_the_live_stream(manager: ManagerProcess, admin: Client) -> None:
    first = admin.create_tenant(unique("t")).tenant
    latest = admin.events(limit=1)
    assert [(e.kind, e.object_id) for e in latest] == [("tenant.created", first.id)]
    seq = latest[0].seq
    assert admin.events(after=seq - 1, limit=5) == latest

    second = admin.create_tenant(unique("t")).tenant
    stream = admin.stream_events(after=seq)
    try:
        event = next(stream)
        assert (event.seq, event.kind, event.object_id) == (seq + 1, "tenant.created", second.id)
        threading.Timer(0.2, admin.create_tenant, (unique("t"),)).start()
        assert next(stream).seq == seq + 2
    finally:
        stream.close()

    with Client(manager.url, "onm_admin_wrong") as wrong, pytest.raises(UnauthorizedError):
        next(wrong.stream_events())


def test_the_snapshot_stream_opens_beats_and_brings_each_change(
    manager: ManagerProcess, admin: Client
) -> None:
    tenant = admin.create_tenant(unique("t")).tenant
    network = admin.create_network(unique("n"), ["10.8.1.0/24"], tenant.name)
    host = admin.create_host(unique("h"), location=new_location())
    with Client(manager.url, host.token) as agent:
        stream = agent.follow_snapshots(host.host.name)
        try:
            assert next(stream) is None  # open
            first = next(stream)
            assert first is not None and first.nodes == []
            # Nothing changes for a while: heartbeats, about one a second, keep it open.
            started = time.monotonic()
            beats = [next(stream) for _ in range(3)]
            assert beats == [None, None, None]
            assert 1.5 < time.monotonic() - started < 3 * STREAM_IDLE
            admin.create_node("a", network.id, host.host.name, "10.8.1.10")
            newer = next(item for item in stream if item is not None)
            assert newer.revision > first.revision
            assert [n.node.name for n in newer.nodes] == ["a"]
            # `after` skips what the follower has: only heartbeats until something changes.
            resumed = agent.follow_snapshots(host.host.name, after=newer.revision)
            try:
                assert [next(resumed), next(resumed)] == [None, None]
            finally:
                resumed.close()
            # The host, and with it its token, goes away: the stream ends with the 401.
            admin.delete_node("a", network.id)
            admin.delete_host(host.host.id)
            with pytest.raises(UnauthorizedError):
                for _ in stream:
                    pass
        finally:
            stream.close()


def test_the_snapshot_stream_refuses_a_wrong_token_before_it_opens(
    manager: ManagerProcess, admin: Client
) -> None:
    host = admin.create_host(unique("h"), location=new_location())
    with Client(manager.url, "onm_host_wrong") as wrong, pytest.raises(UnauthorizedError):
        next(wrong.follow_snapshots(host.host.name))


# --- answers only a broken or foreign server gives ---------------------------------------------
EVENT = s.EventOut.model_validate(
    {
        "seq": 1,
        "revision": 1,
        "at": "2030-01-01T00:00:00Z",
        "actor": "admin",
        "kind": "tenant.created",
        "object_id": "ten-1",
        "tenant_id": "ten-1",
        "data": {"name": "x"},
    }
)


def test_a_stream_that_ends_is_unavailable_after_its_events() -> None:
    body = f": hi\n\nid: 1\nevent: tenant.created\ndata: {json.dumps(dump(EVENT))}\n\n"
    client = mocked(httpx.MockTransport(lambda request: httpx.Response(200, text=body)))
    stream = client.stream_events()
    assert next(stream) == EVENT
    with pytest.raises(UnavailableError, match="closed the stream /v1/events/stream"):
        next(stream)


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        ('{"status": 401, "message": "token revoked"}', UnauthorizedError, "token revoked"),
        ('{"status": 404, "message": "no host h"}', NotFoundError, "no host h"),
        ('{"status": 503, "message": "busy"}', UnavailableError, "busy"),
        ('{"nonsense": 1}', OnmError, "unexpected error event"),
    ],
)
def test_a_stream_s_error_event_is_raised_as_its_error(
    data: str, error: type[OnmError], message: str
) -> None:
    body = f": heartbeat\n\nevent: error\ndata: {data}\n\n"
    client = mocked(httpx.MockTransport(lambda request: httpx.Response(200, text=body)))
    with pytest.raises(error, match=message) as raised:
        next(client.stream_events())
    assert type(raised.value) is error


def test_heartbeats_alone_keep_a_snapshot_follower_told_that_the_manager_is_there() -> None:
    body = ": heartbeat\n\n: heartbeat\n\n"
    client = mocked(httpx.MockTransport(lambda request: httpx.Response(200, text=body)))
    stream = client.follow_snapshots("h")
    assert [next(stream) for _ in range(3)] == [None, None, None]  # open, then two beats
    with pytest.raises(UnavailableError, match="closed the stream /v1/hosts/h/snapshot/stream"):
        next(stream)


@pytest.mark.parametrize(
    ("response", "status", "message"),
    [
        (httpx.Response(502, text="<html>bad gateway</html>"), 502, "unexpected answer"),
        (httpx.Response(200, text="<html>hello</html>"), 502, "is it an onm manager"),
        (httpx.Response(200, json={"revision": "x"}), 502, "unexpected answer"),
        (
            httpx.Response(
                500,
                json={"error": {"status": 500, "code": "internal", "message": "internal error"}},
            ),
            500,
            "internal error",
        ),
        (
            httpx.Response(
                405,
                json={"error": {"status": 405, "code": "http_error", "message": "Not Allowed"}},
            ),
            405,
            "Not Allowed (GET /v1/status)",
        ),
    ],
)
def test_answers_that_are_not_the_api_s_are_plain_onm_errors(
    response: httpx.Response, status: int, message: str
) -> None:
    client = mocked(httpx.MockTransport(lambda request: response))
    with pytest.raises(OnmError, match=message.replace("(", r"\(").replace(")", r"\)")) as raised:
        client.status()
    assert type(raised.value) is OnmError
    assert raised.value.http_status == status


def test_a_manager_that_does_not_answer_in_time_is_unavailable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(UnavailableError, match=r"is not answering \(no answer within 5 s\)"):
        mocked(httpx.MockTransport(handler)).list_hosts()


# --- rate limits -----------------------------------------------------------------------------
def _throttling(refusals: int) -> tuple[httpx.MockTransport, list[float]]:
    """A manager answering 429 (`Retry-After: 1`) `refusals` times, then 200; when it was asked."""
    asked: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(time.monotonic())
        if len(asked) <= refusals:
            error = {"status": 429, "code": "rate_limited", "message": "too many", "field": None}
            return httpx.Response(429, json={"error": error}, headers={"Retry-After": "1"})
        return httpx.Response(200, json=[])

    return httpx.MockTransport(handler), asked


def test_a_429_is_raised_at_once_without_patience() -> None:
    transport, asked = _throttling(1)
    client = Client("http://manager.test", "onm_admin_x", transport=transport)
    with pytest.raises(RateLimitedError) as raised:
        client.list_tenants()
    assert (raised.value.retry_after, len(asked)) == (1, 1)


def test_patience_waits_out_retry_after_then_succeeds() -> None:
    transport, asked = _throttling(1)
    client = Client("http://manager.test", "onm_admin_x", transport=transport, patience=5)
    assert client.list_tenants() == []
    assert len(asked) == 2 and asked[1] - asked[0] >= 0.95  # waited the second it was told


def test_patience_is_a_budget_not_a_promise_to_wait_forever() -> None:
    transport, asked = _throttling(10)
    client = Client("http://manager.test", "onm_admin_x", transport=transport, patience=2)
    with pytest.raises(RateLimitedError):
        client.list_tenants()
    assert len(asked) == 3  # two waits of 1 s fit the budget, a third does not


def test_a_gateway_report_returns_the_managers_loads() -> None:
    asked: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(200, json={"accepted": 1, "loads": [{"gateway": "g1", "flows": 4}]})

    client = mocked(httpx.MockTransport(answer))
    found = client.report_gateways("h1", [{"gateway": "g1", "alive": True, "pinned": 2}])
    assert found == s.GatewayReportOut(accepted=1, loads=[s.GatewayLoadOut(gateway="g1", flows=4)])
    [request] = asked
    assert (request.method, request.url.path) == ("POST", "/v1/hosts/h1/gateways")
    assert json.loads(request.content)["gateways"][0]["pinned"] == 2
