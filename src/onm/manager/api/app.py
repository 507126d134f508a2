"""The FastAPI application: authentication, one transaction per request, the routes.

Every route under /v1 needs `Authorization: Bearer <token>`; the use cases decide what the
principal may do. Routes are thin: parse, call one use case inside one transaction, convert.
The OpenAPI document is served at /openapi.json.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from onm import __version__
from onm.addressing import Location
from onm.api import codec, sse
from onm.api import schemas as s
from onm.errors import AddressingError, InvalidInputError
from onm.manager import (
    events,
    hosts,
    networks,
    nodes,
    reads,
    resolution,
    tenants,
)
from onm.manager.api import (
    edge_routes,
    errors,
    gateway_routes,
    pool_routes,
    rule_routes,
    streams,
    throttle,
)
from onm.manager.api.context import Context as Context  # re-exported: serve and tests build one
from onm.manager.api.context import Token
from onm.manager.api.limits import BodyLimit
from onm.manager.store import Tx
from onm.model import Host

ERRORS: dict[int, dict[str, object]] = {
    code: {"model": s.ErrorOut} for code in (400, 401, 403, 404, 409, 413, 422)
}
ERRORS[429] = throttle.RESPONSE


def _no_nul(request: Request) -> None:
    """Path and query values follow the rule body text does (`schemas.NO_NUL`)."""
    for name, value in (*request.path_params.items(), *request.query_params.multi_items()):
        if s.NUL in value:
            raise InvalidInputError(name, s.NO_NUL)


def create_app(context: Context) -> FastAPI:
    app = FastAPI(
        title="onm manager",
        version=__version__,
        description="Tenants, networks, hosts, nodes and address resolution for onm.",
        responses=ERRORS,  # type: ignore[arg-type]
        dependencies=[Depends(_no_nul)],
    )
    c = context
    errors.install(app, lambda error: c.metrics.error(error))
    app.add_middleware(BodyLimit)
    app.add_middleware(
        throttle.Throttle,
        limiter=lambda: c.limiter,
        metrics=lambda: c.metrics,
        clock=lambda: c.clock(),
        routes=app.router.routes,
    )

    # --- tenants -----------------------------------------------------------------------------
    @app.post("/v1/tenants", status_code=201, response_model=s.TenantCreated, tags=["tenants"])
    def create_tenant(body: s.TenantCreate, token: Token) -> s.TenantCreated:
        tenant, secret = c.write(token, lambda tx: tenants.create(tx, body.name))
        return s.TenantCreated(tenant=codec.encode(s.TenantOut, tenant), token=secret)

    @app.get("/v1/tenants", response_model=list[s.TenantOut], tags=["tenants"])
    def list_tenants(token: Token) -> list[s.TenantOut]:
        return [codec.encode(s.TenantOut, t) for t in c.read(token, tenants.list_all)]

    @app.get("/v1/tenants/{ref}", response_model=s.TenantDetail, tags=["tenants"])
    def get_tenant(ref: str, token: Token) -> s.TenantDetail:
        """The tenant with each quota's limit, its source and the use."""
        return codec.tenant_detail(c.read(token, lambda tx: tenants.usage(tx, ref, c.quotas)))

    @app.patch("/v1/tenants/{ref}", response_model=s.TenantDetail, tags=["tenants"])
    def update_tenant(ref: str, body: s.TenantUpdate, token: Token) -> s.TenantDetail:
        """Set the tenant's own quota limits (admins only); null: back to the default. A limit
        below the use is accepted (`over` says so): existing objects stay, new ones are refused."""
        changes = body.quotas.changes()
        usage = c.write(token, lambda tx: tenants.set_quotas(tx, ref, changes, c.quotas))
        return codec.tenant_detail(usage)

    @app.delete("/v1/tenants/{ref}", status_code=204, tags=["tenants"])
    def delete_tenant(ref: str, token: Token) -> Response:
        c.write(token, lambda tx: tenants.delete_tenant(tx, ref))
        return Response(status_code=204)

    # --- networks ----------------------------------------------------------------------------
    @app.post("/v1/networks", status_code=201, response_model=s.NetworkOut, tags=["networks"])
    def create_network(body: s.NetworkCreate, token: Token) -> s.NetworkOut:
        network = c.write(
            token,
            lambda tx: networks.create(
                tx, body.tenant, body.name, body.cidrs, body.encoding, c.quotas, body.auto_pools
            ),
        )
        return codec.encode(s.NetworkOut, network)

    @app.patch("/v1/networks/{ref:path}", response_model=s.NetworkOut, tags=["networks"])
    def update_network(ref: str, body: s.NetworkUpdate, token: Token) -> s.NetworkOut:
        changed = c.write(token, lambda tx: networks.update(tx, ref, body.auto_pools))
        return codec.encode(s.NetworkOut, changed)

    @app.get("/v1/networks", response_model=list[s.NetworkOut], tags=["networks"])
    def list_networks(token: Token, tenant: str | None = None) -> list[s.NetworkOut]:
        return [
            codec.encode(s.NetworkOut, n)
            for n in c.read(token, lambda tx: networks.list_all(tx, tenant))
        ]

    @app.get("/v1/networks/{ref:path}", response_model=s.NetworkOut, tags=["networks"])
    def get_network(ref: str, token: Token) -> s.NetworkOut:
        return codec.encode(s.NetworkOut, c.read(token, lambda tx: networks.get(tx, ref)))

    @app.delete("/v1/networks/{ref:path}", status_code=204, tags=["networks"])
    def delete_network(ref: str, token: Token) -> Response:
        c.write(token, lambda tx: networks.delete_network(tx, ref))
        return Response(status_code=204)

    # --- hosts -------------------------------------------------------------------------------
    @app.post("/v1/hosts", status_code=201, response_model=s.HostCreated, tags=["hosts"])
    def create_host(body: s.HostCreate, token: Token) -> s.HostCreated:
        def work(tx: Tx) -> tuple[Host, str]:
            loc = body.location
            try:
                location = (
                    None if loc is None else Location(loc.locale, loc.area, loc.rack, loc.node)
                )
            except AddressingError as error:  # name the field as the body spells it
                raise InvalidInputError(f"location.{error.field}", error.reason) from None
            return hosts.create(tx, body.name, body.prefix, location, body.role, body.external)

        host, secret = c.write(token, work)
        return s.HostCreated(host=codec.encode(s.HostOut, host), token=secret)

    @app.get("/v1/hosts", response_model=list[s.HostView], tags=["hosts"])
    def list_hosts(token: Token) -> list[s.HostView]:
        """Every host the token may see; tenants get no substrate details (`HostPublic`)."""
        found, full = c.read(token, lambda tx: (hosts.list_all(tx), hosts.shows_substrate(tx)))
        return [codec.host_view(h, full) for h in found]

    @app.get("/v1/hosts/{ref}", response_model=s.HostView, tags=["hosts"])
    def get_host(ref: str, token: Token) -> s.HostView:
        """One host; tenants get no substrate details (`HostPublic`)."""
        found, full = c.read(token, lambda tx: (hosts.get(tx, ref), hosts.shows_substrate(tx)))
        return codec.host_view(found, full)

    @app.delete("/v1/hosts/{ref}", status_code=204, tags=["hosts"])
    def delete_host(ref: str, token: Token) -> Response:
        c.write(token, lambda tx: hosts.delete_host(tx, ref))
        return Response(status_code=204)

    @app.get(
        "/v1/hosts/{ref}/snapshot",
        response_model=s.SnapshotOut,
        responses={204: {"description": "nothing changed after `after` within `wait` seconds"}},
        tags=["agents"],
    )
    async def host_snapshot(
        ref: str,
        token: Token,
        after: Annotated[int | None, Query(ge=0, le=s.MAX_INT64)] = None,
        wait: Annotated[float, Query(ge=0, le=60)] = 0,
    ) -> s.SnapshotOut | Response:
        """The host's compiled state; with `after`, a long poll until it changes past `after`."""
        deadline = asyncio.get_running_loop().time() + wait
        while after is not None and not c.stopping.is_set():
            desired = await run_in_threadpool(
                c.read, token, lambda tx: reads.desired_revision(tx, ref)
            )
            if desired > after:
                break
            if asyncio.get_running_loop().time() >= deadline:
                return Response(status_code=204)
            await asyncio.sleep(c.poll_interval)
        if c.stopping.is_set():
            return Response(status_code=204)
        snapshot = await run_in_threadpool(c.read, token, lambda tx: reads.snapshot(tx, ref))
        return codec.encode(s.SnapshotOut, snapshot)

    @app.get("/v1/hosts/{ref}/snapshot/stream", tags=["agents"], response_class=StreamingResponse)
    async def host_snapshot_stream(
        ref: str,
        token: Token,
        after: Annotated[int | None, Query(ge=0, le=s.MAX_INT64)] = None,
    ) -> StreamingResponse:
        """Server-sent `snapshot` events: now (or once past `after`), then at every change.

        A `: heartbeat` comment comes every second or so while nothing changes (see
        `onm.manager.api.streams`).
        """
        # Authenticate (and find the host) before answering 200, so errors keep their status.
        await run_in_threadpool(c.read, token, lambda tx: reads.desired_revision(tx, ref))
        last = -1 if after is None else after

        async def poll() -> list[bytes]:
            nonlocal last
            desired = await run_in_threadpool(
                c.read, token, lambda tx: reads.desired_revision(tx, ref)
            )
            if desired <= last:
                return []
            snapshot = await run_in_threadpool(c.read, token, lambda tx: reads.snapshot(tx, ref))
            last = snapshot.revision
            data = codec.encode(s.SnapshotOut, snapshot).model_dump_json()
            return [sse.encode(sse.SNAPSHOT_EVENT, data, id=snapshot.revision)]

        feed = streams.follow(poll, c.stopping, c.poll_interval)
        return StreamingResponse(feed, media_type="text/event-stream")

    @app.post("/v1/hosts/{ref}/report", response_model=s.HostStatusOut, tags=["agents"])
    def report(ref: str, body: s.ReportIn, token: Token) -> s.HostStatusOut:
        status = c.write(token, lambda tx: hosts.report(tx, ref, body.applied_revision))
        return codec.host_status(status, c.clock(), c.silence)

    rule_routes.install(app, c)  # before the node and edge pool routes (its docstring says why)

    # --- nodes -------------------------------------------------------------------------------
    @app.post("/v1/nodes", status_code=201, response_model=s.NodeOut, tags=["nodes"])
    def create_node(body: s.NodeCreate, token: Token) -> s.NodeOut:
        node = c.write(
            token,
            lambda tx: nodes.create(
                tx, body.name, body.network, body.host, body.ip, body.interface, c.quotas
            ),
        )
        return codec.encode(s.NodeOut, node)

    @app.get("/v1/nodes", response_model=list[s.NodeOut], tags=["nodes"])
    def list_nodes(
        token: Token, network: str | None = None, host: str | None = None
    ) -> list[s.NodeOut]:
        found = c.read(token, lambda tx: nodes.list_all(tx, network, host))
        return [codec.encode(s.NodeOut, n) for n in found]

    @app.get("/v1/nodes/{ref:path}", response_model=s.NodeOut, tags=["nodes"])
    def get_node(ref: str, token: Token, network: str | None = None) -> s.NodeOut:
        return codec.encode(s.NodeOut, c.read(token, lambda tx: nodes.get(tx, ref, network)))

    @app.delete("/v1/nodes/{ref:path}", status_code=204, tags=["nodes"])
    def delete_node(ref: str, token: Token, network: str | None = None) -> Response:
        c.write(token, lambda tx: nodes.delete_node(tx, ref, network))
        return Response(status_code=204)

    pool_routes.install(app, c)
    edge_routes.install(app, c)
    gateway_routes.install(app, c)

    # --- resolution --------------------------------------------------------------------------
    @app.post("/v1/resolve", response_model=s.ResolutionOut, tags=["resolution"])
    def resolve(body: s.ResolveRequest, token: Token) -> s.ResolutionOut:
        """Where `ip` lives for `requester`; agents re-asking within a grant need no write."""
        args = (body.network, body.requester, body.ip, c.resolution_ttl)
        answer = c.read(token, lambda tx: resolution.resolve_from_grant(tx, *args))
        if answer is None:
            answer = c.write(token, lambda tx: resolution.resolve(tx, *args))
        return codec.encode(s.ResolutionOut, answer)

    @app.post("/v1/verify", response_model=s.VerdictOut, tags=["resolution"])
    def verify(body: s.VerifyRequest, token: Token) -> s.VerdictOut:
        verdict = c.read(
            token,
            lambda tx: resolution.verify(tx, body.network, body.ip, body.substrate_source),
        )
        return codec.encode(s.VerdictOut, verdict)

    # --- status and events -------------------------------------------------------------------
    @app.get("/v1/status", response_model=s.StatusOut, tags=["status"])
    def status(token: Token) -> s.StatusOut:
        def work(tx: Tx) -> s.StatusOut:
            now = tx.now
            rows = [codec.host_status(h, now, c.silence) for h in hosts.statuses(tx)]
            return s.StatusOut(revision=tx.current_revision(), hosts=rows)

        return c.read(token, work)

    @app.get("/v1/events", response_model=list[s.EventOut], tags=["events"])
    def list_events(
        token: Token,
        after: Annotated[int | None, Query(ge=0, le=s.MAX_INT64)] = None,
        limit: Annotated[int, Query(ge=1, le=events.MAX_PAGE)] = 100,
    ) -> list[s.EventOut]:
        if after is None:
            found = c.read(token, lambda tx: events.latest(tx, limit))
        else:
            found = c.read(token, lambda tx: events.list_since(tx, after, limit))
        return [codec.encode(s.EventOut, e) for e in found]

    @app.get("/v1/events/stream", tags=["events"], response_class=StreamingResponse)
    async def stream_events(
        token: Token, after: Annotated[int, Query(ge=0, le=s.MAX_INT64)] = 0
    ) -> StreamingResponse:
        """Server-sent events: every visible event after `after`, as it happens."""
        # Authenticate before answering 200, so a bad token gets its 401.
        await run_in_threadpool(c.read, token, lambda tx: events.list_since(tx, after, 1))
        last = after

        async def poll() -> list[bytes]:
            nonlocal last
            batch = await run_in_threadpool(
                c.read, token, lambda tx, since=last: events.list_since(tx, since, 100)
            )
            chunks = []
            for event in batch:
                last = event.seq
                data = codec.encode(s.EventOut, event).model_dump_json()
                chunks.append(sse.encode(event.kind, data, id=event.seq))
            return chunks

        feed = streams.follow(poll, c.stopping, max(c.poll_interval, 0.5))
        return StreamingResponse(feed, media_type="text/event-stream")

    return app
