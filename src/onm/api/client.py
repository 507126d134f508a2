"""A typed client of the manager's REST API, used by the `onm` command and by the agents.

One method per route. Answers are the API's own response models (`onm.api.schemas`) and
request bodies are built from its request models, so no JSON shape is written twice. Every
failure is raised from the `onm.errors` tree, ready to print:

    OnmError                      any other answer (its `http_status` is the answer's status)
     +-- InvalidInputError (400)  `field` names the bad value, as the manager said
     |    +-- UnprocessableError (422)  ... a well-formed value the manager's rules refuse
     +-- UnauthorizedError (401)  no token, or a token the manager does not know
     +-- ForbiddenError (403)
     +-- NotFoundError (404)
     +-- ConflictError (409)
     +-- UnavailableError (503)   the manager is unreachable, not answering, or cut the stream
          +-- RateLimitedError (429)  too many requests: `retry_after` seconds (Retry-After)

The URL and token are the caller's; `Client.from_env` fills in what the caller leaves out from
ONM_URL, ONM_TOKEN and ONM_TOKEN_FILE. A token written `@PATH` is read from the file PATH.

A manager that is frozen (SIGSTOP, a stuck disk) still has its connections accepted by the
kernel, so only a read timeout can notice it: ordinary calls give up after READ_TIMEOUT, and
streams, whose manager writes a heartbeat every second (`onm.api.sse.HEARTBEAT`), after
STREAM_IDLE seconds of silence; both as "the manager at URL is not answering".
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from onm.addressing import Location
from onm.api import schemas as s
from onm.api.sse import ERROR_EVENT, HEARTBEAT, SNAPSHOT_EVENT, Comment, ServerSentEvent, SseDecoder
from onm.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    OnmError,
    RateLimitedError,
    UnauthorizedError,
    UnavailableError,
    UnprocessableError,
)

DEFAULT_URL = "http://127.0.0.1:7700"
CONNECT_TIMEOUT = 3.0
"""Seconds to open a connection. A refused one fails at once; this bounds a lost SYN (a host
that is down, a listen backlog that is full), with room for one SYN retransmission (1 s)."""
TIMEOUT = 5.0
"""Seconds to wait for an answer, or for each part of one (long polls add their own wait). The
manager answers in milliseconds; a write queued behind others on a loaded 2-core machine has
been seen near a second, so 5 s does not fail a slow manager, yet names a frozen one (whose
kernel still accepts the connection) in 5 s instead of hanging."""
STREAM_IDLE = 3 * HEARTBEAT
"""Seconds of silence after which a stream counts as dead: three missed heartbeats (1 s each)."""

M = TypeVar("M", bound=BaseModel)
X = TypeVar("X")
_HOST_VIEW: TypeAdapter[s.HostView] = TypeAdapter(s.HostView)
_HOST_VIEWS: TypeAdapter[list[s.HostView]] = TypeAdapter(list[s.HostView])

# The manager's error status -> the error raised here; derived from the tree, not retyped.
_FIELD_ERRORS: dict[int, Callable[[str, str], OnmError]] = {
    cls.http_status: cls for cls in (InvalidInputError, UnprocessableError, ConflictError)
}
_MESSAGE_ERRORS: dict[int, Callable[[str], OnmError]] = {
    cls.http_status: cls for cls in (UnauthorizedError, ForbiddenError, NotFoundError)
}


def read_token(value: str) -> str:
    """A token as given (`--token`, ONM_TOKEN): itself, or the content of PATH for `@PATH`."""
    return read_token_file(Path(value[1:])) if value.startswith("@") else value.strip()


def read_token_file(path: Path) -> str:
    try:
        token = path.expanduser().read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidInputError("token", f"cannot read token file {path}: {reason}") from None
    if not token:
        raise InvalidInputError("token", f"token file {path} is empty")
    return token


def token_from(given: str | None, env: Mapping[str, str]) -> str:
    """The token to use: `given`, else ONM_TOKEN, else ONM_TOKEN_FILE's content, else none ("")."""
    if given:
        return read_token(given)
    if env.get("ONM_TOKEN"):
        return read_token(env["ONM_TOKEN"])
    if env.get("ONM_TOKEN_FILE"):
        return read_token_file(Path(env["ONM_TOKEN_FILE"]))
    return ""


@contextmanager
def _checked_request() -> Iterator[None]:
    """Request bodies are validated here by the API's own models, with the manager's wording."""
    try:
        yield
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "request"
        raise InvalidInputError(field, first["msg"]) from None


class Client:
    """A session with one manager; close it (or use it as a context manager) when done."""

    def __init__(
        self,
        url: str,
        token: str = "",
        *,
        timeout: float = TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        patience: float = 0.0,
    ) -> None:
        """`patience`: seconds a call may spend waiting out 429s (per its `Retry-After`) before
        the `RateLimitedError` is raised; 0 (the CLI's choice) raises at once. The lab, which
        provisions whole topologies flat out, waits."""
        self.url = url.rstrip("/")
        self.patience = patience
        self.token = token
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        try:
            parsed = httpx.URL(self.url)
        except httpx.InvalidURL:
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise InvalidInputError("url", f"{url!r} is not an http:// or https:// URL")
        if token and not (token.isascii() and token.isprintable() and " " not in token):
            raise InvalidInputError("token", "contains characters no onm token has")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=self._timeout(timeout),
            transport=transport,
        )

    @classmethod
    def from_env(cls, url: str | None = None, token: str | None = None) -> Client:
        """A client for `url` and `token`, or ONM_URL (default DEFAULT_URL) and ONM_TOKEN(_FILE)."""
        env = os.environ
        return cls(url or env.get("ONM_URL") or DEFAULT_URL, token_from(token, env))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- tenants -----------------------------------------------------------------------------
    def create_tenant(self, name: str) -> s.TenantCreated:
        """A new tenant and its token (the only time the token is shown)."""
        with _checked_request():
            body = s.TenantCreate(name=name)
        return self._parse(s.TenantCreated, self._send("POST", "/v1/tenants", body=body))

    def list_tenants(self) -> list[s.TenantOut]:
        return self._parse_list(s.TenantOut, self._send("GET", "/v1/tenants"))

    def get_tenant(self, ref: str) -> s.TenantDetail:
        """The tenant with its quotas: each one's limit, source and use."""
        return self._parse(s.TenantDetail, self._send("GET", _path("/v1/tenants", ref)))

    def set_tenant_quotas(self, ref: str, changes: Mapping[str, int | None]) -> s.TenantDetail:
        """Set the tenant's own limits (admins): quota name -> limit, or None for the default;
        quotas not named keep theirs."""
        with _checked_request():
            body = s.TenantUpdate(quotas=s.QuotaUpdate(**changes))
        response = self._send("PATCH", _path("/v1/tenants", ref), body=body, exclude_unset=True)
        return self._parse(s.TenantDetail, response)

    def delete_tenant(self, ref: str) -> None:
        self._send("DELETE", _path("/v1/tenants", ref))

    # --- networks ----------------------------------------------------------------------------
    def create_network(
        self,
        name: str,
        cidrs: list[str],
        tenant: str | None = None,
        encoding: str = "siit",
        auto_pools: str = "propose",
    ) -> s.NetworkOut:
        with _checked_request():
            body = s.NetworkCreate(
                name=name, tenant=tenant, cidrs=cidrs, encoding=encoding, auto_pools=auto_pools
            )
        return self._parse(s.NetworkOut, self._send("POST", "/v1/networks", body=body))

    def update_network(self, ref: str, auto_pools: str | None = None) -> s.NetworkOut:
        with _checked_request():
            body = s.NetworkUpdate(auto_pools=auto_pools)
        path = _path("/v1/networks", ref, "/")
        response = self._send("PATCH", path, body=body, exclude_unset=True)
        return self._parse(s.NetworkOut, response)

    def list_networks(self, tenant: str | None = None) -> list[s.NetworkOut]:
        response = self._send("GET", "/v1/networks", params={"tenant": tenant})
        return self._parse_list(s.NetworkOut, response)

    def get_network(self, ref: str) -> s.NetworkOut:
        """By id, by name, or as `tenant/name`."""
        return self._parse(s.NetworkOut, self._send("GET", _path("/v1/networks", ref, "/")))

    def delete_network(self, ref: str) -> None:
        self._send("DELETE", _path("/v1/networks", ref, "/"))

    # --- hosts -------------------------------------------------------------------------------
    def create_host(
        self,
        name: str,
        prefix: str | None = None,
        location: Location | None = None,
        role: str = "node",
        external: str | None = None,
    ) -> s.HostCreated:
        """A new host, by /64 prefix or location (or both, if they agree), and its agent's token."""
        with _checked_request():
            where = None
            if location is not None:
                where = s.LocationIn(
                    locale=location.locale,
                    area=location.area,
                    rack=location.rack,
                    node=location.node,
                )
            body = s.HostCreate(
                name=name, prefix=prefix, location=where, role=role, external=external
            )
        return self._parse(s.HostCreated, self._send("POST", "/v1/hosts", body=body))

    def list_hosts(self) -> list[s.HostView]:
        """`HostOut`s (with the /64) for admin and host tokens, `HostPublic`s for tenants."""
        return self._parse_as(_HOST_VIEWS, self._send("GET", "/v1/hosts"))

    def get_host(self, ref: str) -> s.HostView:
        return self._parse_as(_HOST_VIEW, self._send("GET", _path("/v1/hosts", ref)))

    def delete_host(self, ref: str) -> None:
        self._send("DELETE", _path("/v1/hosts", ref))

    def snapshot(
        self, host: str, after: int | None = None, wait: float = 0
    ) -> s.SnapshotOut | None:
        """The host's compiled state; with `after`, wait up to `wait` s for a newer revision.

        None means nothing changed past `after` within `wait` seconds (the manager answered 204).
        """
        params = {"after": after, "wait": wait if after is not None else None}
        path = _path("/v1/hosts", host) + "/snapshot"
        response = self._send("GET", path, params=params, timeout=self.timeout + wait)
        if response.status_code == 204:
            return None
        return self._parse(s.SnapshotOut, response)

    def follow_snapshots(
        self, host: str, after: int | None = None
    ) -> Generator[s.SnapshotOut | None, None, None]:
        """The host's snapshot now (or once newer than `after`), then each newer one.

        None comes when the stream opens and at each heartbeat: the manager is there, nothing
        changed. Like `stream_events`, it runs until the caller stops, and raises
        `UnavailableError` when the stream ends or stays silent for STREAM_IDLE seconds.
        """
        path = _path("/v1/hosts", host) + "/snapshot/stream"
        response = self._open(path, {"after": after})
        try:
            yield None  # open: authenticated and answered
            for item in self._items(path, response):
                if isinstance(item, Comment):
                    yield None
                elif item.event == SNAPSHOT_EVENT:
                    yield self._validate(s.SnapshotOut, item.data)
        finally:
            response.close()

    def report(self, host: str, applied_revision: int) -> s.HostStatusOut:
        """Tell the manager which revision the host's agent has applied."""
        with _checked_request():
            body = s.ReportIn(applied_revision=applied_revision)
        path = _path("/v1/hosts", host) + "/report"
        return self._parse(s.HostStatusOut, self._send("POST", path, body=body))

    def report_health(self, host: str, members: list[dict[str, object]]) -> None:
        """Tell the manager the health of the pool members this host's agent checks."""
        with _checked_request():
            body = s.HealthReportIn.model_validate({"members": members})
        self._send("POST", _path("/v1/hosts", host) + "/health", body=body)

    def report_gateways(self, host: str, gateways: list[dict[str, object]]) -> s.GatewayReportOut:
        """Tell the manager how this host's agent sees the edge gateways it probes or serves;
        its answer carries the other senders' load on least-loaded pools' gateways."""
        with _checked_request():
            body = s.GatewayReportIn.model_validate({"gateways": gateways})
        response = self._send("POST", _path("/v1/hosts", host) + "/gateways", body=body)
        return self._parse(s.GatewayReportOut, response)

    def report_claims(self, host: str, claims: list[dict[str, str]]) -> list[s.ClaimOut]:
        """Tell the manager the addresses this host's nodes use that are not their own."""
        with _checked_request():
            body = s.ClaimsReportIn.model_validate({"claims": claims})
        response = self._send("POST", _path("/v1/hosts", host) + "/claims", body=body)
        return self._parse_list(s.ClaimOut, response)

    # --- nodes -------------------------------------------------------------------------------
    def create_node(
        self, name: str, network: str, host: str, ip: str, interface: str | None = None
    ) -> s.NodeOut:
        with _checked_request():
            body = s.NodeCreate(name=name, network=network, host=host, ip=ip, interface=interface)
        return self._parse(s.NodeOut, self._send("POST", "/v1/nodes", body=body))

    def list_nodes(self, network: str | None = None, host: str | None = None) -> list[s.NodeOut]:
        response = self._send("GET", "/v1/nodes", params={"network": network, "host": host})
        return self._parse_list(s.NodeOut, response)

    def get_node(self, ref: str, network: str | None = None) -> s.NodeOut:
        """By id, by name (in `network`, or unambiguous), or as `network/name`."""
        path = _path("/v1/nodes", ref, "/")
        return self._parse(s.NodeOut, self._send("GET", path, params={"network": network}))

    def delete_node(self, ref: str, network: str | None = None) -> None:
        self._send("DELETE", _path("/v1/nodes", ref, "/"), params={"network": network})

    # --- pools -------------------------------------------------------------------------------
    def create_pool(
        self,
        name: str,
        network: str,
        ip: str,
        settings: dict[str, object] | None = None,
        members: list[str] | None = None,
    ) -> s.PoolDetail:
        """A pool on `ip`; `settings` as `PoolSettings` takes them (policy, check, ...)."""
        with _checked_request():
            body = s.PoolCreate.model_validate(
                {"name": name, "network": network, "ip": ip, "members": members or []}
                | (settings or {})
            )
        return self._parse(s.PoolDetail, self._send("POST", "/v1/pools", body=body))

    def list_pools(self, network: str | None = None) -> list[s.PoolDetail]:
        response = self._send("GET", "/v1/pools", params={"network": network})
        return self._parse_list(s.PoolDetail, response)

    def get_pool(self, ref: str, network: str | None = None) -> s.PoolDetail:
        """By id, by name (in `network`, or unambiguous), or as `network/name`."""
        path = _path("/v1/pools", ref, "/")
        return self._parse(s.PoolDetail, self._send("GET", path, params={"network": network}))

    def update_pool(self, ref: str, settings: dict[str, object]) -> s.PoolDetail:
        with _checked_request():
            body = s.PoolSettings.model_validate(settings)
        path = _path("/v1/pools", ref, "/")
        response = self._send("PATCH", path, body=body, exclude_unset=True)
        return self._parse(s.PoolDetail, response)

    def delete_pool(self, ref: str) -> None:
        self._send("DELETE", _path("/v1/pools", ref, "/"))

    def accept_pool(self, ref: str) -> s.PoolDetail:
        """A proposed (detected) pool goes live."""
        response = self._send("POST", _path("/v1/pools", ref, "/") + "/accept")
        return self._parse(s.PoolDetail, response)

    def reject_pool(self, ref: str) -> s.PoolDetail:
        response = self._send("POST", _path("/v1/pools", ref, "/") + "/reject")
        return self._parse(s.PoolDetail, response)

    # --- edge pools ----------------------------------------------------------------------
    def create_external(self, name: str, cidr: str) -> s.ExternalOut:
        with _checked_request():
            body = s.ExternalCreate(name=name, cidr=cidr)
        return self._parse(s.ExternalOut, self._send("POST", "/v1/externals", body=body))

    def list_externals(self) -> list[s.ExternalOut]:
        return self._parse_list(s.ExternalOut, self._send("GET", "/v1/externals"))

    def delete_external(self, ref: str) -> None:
        self._send("DELETE", _path("/v1/externals", ref))

    def create_edge_pool(
        self, name: str, network: str, settings: dict[str, object]
    ) -> s.EdgePoolDetail:
        with _checked_request():
            body = s.EdgePoolCreate.model_validate({"name": name, "network": network, **settings})
        response = self._send("POST", "/v1/edge-pools", body=body, exclude_unset=True)
        return self._parse(s.EdgePoolDetail, response)

    def list_edge_pools(self, network: str | None = None) -> list[s.EdgePoolDetail]:
        response = self._send("GET", "/v1/edge-pools", params={"network": network})
        return self._parse_list(s.EdgePoolDetail, response)

    def get_edge_pool(self, ref: str, network: str | None = None) -> s.EdgePoolDetail:
        path = _path("/v1/edge-pools", ref, "/")
        return self._parse(s.EdgePoolDetail, self._send("GET", path, params={"network": network}))

    def update_edge_pool(self, ref: str, settings: dict[str, object]) -> s.EdgePoolDetail:
        with _checked_request():
            body = s.EdgePoolSettings.model_validate(settings)
        path = _path("/v1/edge-pools", ref, "/")
        response = self._send("PATCH", path, body=body, exclude_unset=True)
        return self._parse(s.EdgePoolDetail, response)

    def delete_edge_pool(self, ref: str) -> None:
        self._send("DELETE", _path("/v1/edge-pools", ref, "/"))

    def rebalance_edge_pool(self, ref: str) -> s.EdgePoolDetail:
        path = _path("/v1/edge-pools", ref, "/") + "/rebalance"
        return self._parse(s.EdgePoolDetail, self._send("POST", path))

    def gateway_health(self, pool: str, network: str | None = None) -> list[s.GatewayHealthOut]:
        params = {"pool": pool, "network": network}
        response = self._send("GET", "/v1/edge-gateways", params=params)
        return self._parse_list(s.GatewayHealthOut, response)

    def add_gateway(self, pool: str, name: str, host: str, external_ip: str) -> s.EdgePoolDetail:
        with _checked_request():
            body = s.GatewayAdd(name=name, host=host, external_ip=external_ip)
        response = self._send("POST", "/v1/edge-gateways", body=body, params={"pool": pool})
        return self._parse(s.EdgePoolDetail, response)

    def update_gateway(
        self, pool: str, name: str, state: str | None = None, external_ip: str | None = None
    ) -> s.EdgePoolDetail:
        with _checked_request():
            body = s.GatewayUpdate(state=state, external_ip=external_ip)
        path = _path("/v1/edge-gateways", name)
        response = self._send("PATCH", path, body=body, params={"pool": pool})
        return self._parse(s.EdgePoolDetail, response)

    def remove_gateway(self, pool: str, name: str) -> s.EdgePoolDetail:
        path = _path("/v1/edge-gateways", name)
        return self._parse(s.EdgePoolDetail, self._send("DELETE", path, params={"pool": pool}))

    def add_rule(
        self,
        pool: str,
        direction: str,
        action: str,
        proto: str = "any",
        ports: str | None = None,
        remote: str | None = None,
        position: int | None = None,
    ) -> s.EdgeRuleOut:
        with _checked_request():
            body = s.EdgeRuleCreate(
                direction=direction,
                action=action,
                proto=proto,
                ports=ports,
                remote=remote,
                position=position,
            )
        path = _path("/v1/edge-pools", pool, "/") + "/rules"
        return self._parse(s.EdgeRuleOut, self._send("POST", path, body=body))

    def list_rules(self, pool: str) -> list[s.EdgeRuleCountedOut]:
        path = _path("/v1/edge-pools", pool, "/") + "/rules"
        return self._parse_list(s.EdgeRuleCountedOut, self._send("GET", path))

    def delete_rule(self, pool: str, rule_id: str) -> None:
        self._send("DELETE", _path(_path("/v1/edge-pools", pool, "/") + "/rules", rule_id))

    def add_public_ip(self, node: str, edge_pool: str, ip: str) -> s.PublicIpDetailOut:
        with _checked_request():
            body = s.PublicIpCreate(edge_pool=edge_pool, ip=ip)
        path = _path("/v1/nodes", node, "/") + "/public-ips"
        return self._parse(s.PublicIpDetailOut, self._send("POST", path, body=body))

    def list_public_ips(self, node: str) -> list[s.PublicIpDetailOut]:
        path = _path("/v1/nodes", node, "/") + "/public-ips"
        return self._parse_list(s.PublicIpDetailOut, self._send("GET", path))

    def remove_public_ip(self, node: str, ip: str) -> None:
        self._send("DELETE", _path(_path("/v1/nodes", node, "/") + "/public-ips", ip))

    def add_route(self, network: str, prefix: str, edge_pool: str) -> s.RouteOut:
        with _checked_request():
            body = s.RouteCreate(network=network, prefix=prefix, edge_pool=edge_pool)
        return self._parse(s.RouteOut, self._send("POST", "/v1/routes", body=body))

    def list_routes(self, network: str) -> list[s.RouteOut]:
        response = self._send("GET", "/v1/routes", params={"network": network})
        return self._parse_list(s.RouteOut, response)

    def delete_route(self, network: str, prefix: str) -> None:
        self._send("DELETE", "/v1/routes", params={"network": network, "prefix": prefix})

    def add_member(self, pool: str, node: str, rank: int | None = None) -> s.PoolDetail:
        with _checked_request():
            body = s.MemberAdd(node=node, rank=rank)
        response = self._send("POST", "/v1/pool-members", body=body, params={"pool": pool})
        return self._parse(s.PoolDetail, response)

    def remove_member(self, pool: str, node: str) -> s.PoolDetail:
        path = _path("/v1/pool-members", node, "/")
        return self._parse(s.PoolDetail, self._send("DELETE", path, params={"pool": pool}))

    # --- resolution --------------------------------------------------------------------------
    def resolve(self, network: str, requester: str, ip: str) -> s.ResolutionOut:
        """Where `ip` lives, asked on behalf of the node `requester` (what an agent does on ARP)."""
        with _checked_request():
            body = s.ResolveRequest(network=network, requester=requester, ip=ip)
        return self._parse(s.ResolutionOut, self._send("POST", "/v1/resolve", body=body))

    def verify(self, network: str, ip: str, substrate_source: str) -> s.VerdictOut:
        """Does (network, ip) really live at `substrate_source`? (a receiving agent's check)"""
        with _checked_request():
            body = s.VerifyRequest(network=network, ip=ip, substrate_source=substrate_source)
        return self._parse(s.VerdictOut, self._send("POST", "/v1/verify", body=body))

    # --- status and events -------------------------------------------------------------------
    def status(self) -> s.StatusOut:
        return self._parse(s.StatusOut, self._send("GET", "/v1/status"))

    def events(self, after: int | None = None, limit: int = 100) -> list[s.EventOut]:
        """Events after `after` (oldest first), or the latest `limit` when `after` is None."""
        response = self._send("GET", "/v1/events", params={"after": after, "limit": limit})
        return self._parse_list(s.EventOut, response)

    def stream_events(self, after: int = 0) -> Generator[s.EventOut, None, None]:
        """Every visible event after `after`, as it happens; runs until the caller stops.

        The manager never ends the stream: a stream that ends, or stays silent for STREAM_IDLE
        seconds, raises `UnavailableError`. Resume with the `seq` of the last event received.
        """
        path = "/v1/events/stream"
        for item in self._items(path, self._open(path, {"after": after})):
            if isinstance(item, ServerSentEvent):
                yield self._validate(s.EventOut, item.data)

    # --- plumbing ----------------------------------------------------------------------------
    def _timeout(self, read: float) -> httpx.Timeout:
        return httpx.Timeout(read, connect=self.connect_timeout)

    def _open(self, path: str, params: Mapping[str, int | None]) -> httpx.Response:
        """An SSE stream whose answer has come in (status and headers), or its error."""
        query = {k: v for k, v in params.items() if v is not None}
        request = self._http.build_request(
            "GET", path, params=query, timeout=self._timeout(STREAM_IDLE)
        )
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise self._unavailable(exc) from None
        if response.is_error:
            try:
                response.read()
            finally:
                response.close()
            raise self._error(request, response)
        return response

    def _items(
        self, path: str, response: httpx.Response
    ) -> Generator[ServerSentEvent | Comment, None, None]:
        """The events and comments of an open SSE stream (an `error` event raised as its error)."""
        try:
            decoder = SseDecoder()
            for line in response.iter_lines():
                item = decoder.feed(line)
                if isinstance(item, ServerSentEvent) and item.event == ERROR_EVENT:
                    raise self._stream_error(item.data)
                if item is not None:
                    yield item
        except httpx.ReadTimeout:
            raise UnavailableError(
                f"the manager at {self.url} is not answering (its stream {path} was silent "
                f"for {STREAM_IDLE:g} s)"
            ) from None
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise UnavailableError(
                f"the manager at {self.url} cut the stream {path} ({reason})"
            ) from None
        finally:
            response.close()
        raise UnavailableError(f"the manager at {self.url} closed the stream {path}")

    def _stream_error(self, data: str) -> OnmError:
        """A stream's closing `error` event (e.g. the token was revoked) as its error."""
        try:
            fields = json.loads(data)
            status, message = int(fields["status"]), str(fields["message"])
        except (ValueError, TypeError, KeyError):
            return OnmError(f"unexpected error event from {self.url}: {data[:200]!r}")
        found = _MESSAGE_ERRORS.get(status, UnavailableError if status == 503 else OnmError)
        error = found(message)
        error.http_status = status
        return error

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | float | None] | None = None,
        body: BaseModel | None = None,
        timeout: float | None = None,
        exclude_unset: bool = False,
    ) -> httpx.Response:
        """`exclude_unset`: send what the body was given, nulls included (a PATCH's null
        means "back to the default"); else every field but the null ones."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if body is None:
            content = None
        elif exclude_unset:
            content = body.model_dump(mode="json", exclude_unset=True)
        else:
            content = body.model_dump(mode="json", exclude_none=True)
        request = self._http.build_request(
            method, path, params=query, json=content, timeout=self._timeout(timeout or self.timeout)
        )
        waited = 0.0
        while True:
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                raise self._unavailable(exc) from None
            if not response.is_error:
                return response
            error = self._error(request, response)
            if isinstance(error, RateLimitedError) and waited + error.retry_after <= self.patience:
                time.sleep(error.retry_after)
                waited += error.retry_after
                continue
            raise error

    def _unavailable(self, exc: httpx.TransportError) -> UnavailableError:
        if isinstance(exc, httpx.ConnectTimeout):
            return UnavailableError(
                f"the manager at {self.url} is not answering "
                f"(no connection within {self.connect_timeout:g} s)"
            )
        if isinstance(exc, httpx.TimeoutException):
            read = exc.request.extensions.get("timeout", {}).get("read", self.timeout)
            return UnavailableError(
                f"the manager at {self.url} is not answering (no answer within {read:g} s)"
            )
        reason = str(exc) or type(exc).__name__
        return UnavailableError(f"the manager at {self.url} is unreachable ({reason})")

    def _error(self, request: httpx.Request, response: httpx.Response) -> OnmError:
        """The manager's `{"error": {...}}` answer as the matching error of the tree."""
        try:
            error = s.ErrorOut.model_validate_json(response.content).error
        except ValidationError:
            return self._unexpected(request, response)
        if error.status in _FIELD_ERRORS:
            field = error.field or "request"
            reason = error.message.removeprefix(f"{field}: ")
            return _FIELD_ERRORS[error.status](field, reason)
        message = error.message
        if error.status == RateLimitedError.http_status:  # the message says when to retry
            retry = response.headers.get("Retry-After", "")
            return RateLimitedError(message, int(retry) if retry.isdigit() else 1)
        if error.code == "http_error":  # not one of the manager's own errors: say what was asked
            message = f"{message} ({request.method} {request.url.path})"
        found = _MESSAGE_ERRORS.get(error.status, OnmError)(message)
        found.http_status = error.status
        return found

    def _unexpected(self, request: httpx.Request, response: httpx.Response) -> OnmError:
        error = OnmError(
            f"unexpected answer from {self.url} to {request.method} {request.url.path}: "
            f"HTTP {response.status_code} {response.reason_phrase} (is it an onm manager?)"
        )
        error.http_status = response.status_code if response.is_error else 502
        return error

    def _parse(self, model: type[M], response: httpx.Response) -> M:
        try:
            return model.model_validate_json(response.content)
        except ValidationError:
            raise self._unexpected(response.request, response) from None

    def _parse_as(self, adapter: TypeAdapter[X], response: httpx.Response) -> X:
        try:
            return adapter.validate_json(response.content)
        except ValidationError:
            raise self._unexpected(response.request, response) from None

    def _parse_list(self, model: type[M], response: httpx.Response) -> list[M]:
        try:
            items = json.loads(response.content)
            if not isinstance(items, list):
                raise ValueError("not a list")
            return [model.model_validate(item) for item in items]
        except ValueError:  # JSON or validation error
            raise self._unexpected(response.request, response) from None

    def _validate(self, model: type[M], data: str) -> M:
        try:
            return model.model_validate_json(data)
        except ValidationError:
            raise OnmError(f"unexpected event from {self.url}: {data[:200]!r}") from None


def _path(collection: str, ref: str, safe: str = "") -> str:
    """`collection/ref`, with `ref` quoted (keeping `/` for the routes that take `a/b` refs)."""
    if not ref:
        raise InvalidInputError("ref", "an id or a name is required")
    return f"{collection}/{quote(ref, safe=safe)}"


def dump(value: BaseModel | Sequence[BaseModel]) -> Any:
    """An answer back as the JSON data the manager sent (for `--json` and logs)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return [item.model_dump(mode="json") for item in value]
