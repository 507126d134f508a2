"""The edge pool routes (issue #10): external networks, edge pools, their gateways, and routes.
Thin, like the rest: `onm.manager.externals`, `edge_pools` and `routes` decide."""

from __future__ import annotations

from fastapi import FastAPI, Response

from onm.api import codec
from onm.api import schemas as s
from onm.manager import edge_pools, edge_rows, externals, routes
from onm.manager.api.context import Context, Token


def public_ip_out(found: edge_rows.PublicIpDetail) -> s.PublicIpDetailOut:
    public = codec.encode(s.PublicIpOut, found.public_ip)
    owner = found.owner
    return s.PublicIpDetailOut(
        **dict(public),
        node=found.node.name,
        node_ip=str(found.node.ip),
        pool=found.pool_name,
        gateway=None if owner is None else owner.name,
        gateway_id=None if owner is None else owner.id,
    )


def detail_out(found: edge_pools.EdgePoolDetail) -> s.EdgePoolDetail:
    pool = codec.encode(s.EdgePoolOut, found.pool)
    gateways = [codec.encode(s.GatewayOut, g) for g in found.gateways]
    anycast = None if found.anycast is None else str(found.anycast)
    return s.EdgePoolDetail(
        **dict(pool),
        network=found.network.name,
        gateways=gateways,
        rules=[codec.encode(s.EdgeRuleCountedOut, r) for r in found.rules],
        defaults=[codec.encode(s.DefaultCountOut, d) for d in found.defaults],
        public_ips=[public_ip_out(p) for p in found.public_ips],
        anycast=anycast,
    )


def install(app: FastAPI, c: Context) -> None:
    @app.post("/v1/externals", status_code=201, response_model=s.ExternalOut, tags=["edge"])
    def create_external(body: s.ExternalCreate, token: Token) -> s.ExternalOut:
        made = c.write(token, lambda tx: externals.create(tx, body.name, body.cidr))
        return codec.encode(s.ExternalOut, made)

    @app.get("/v1/externals", response_model=list[s.ExternalOut], tags=["edge"])
    def list_externals(token: Token) -> list[s.ExternalOut]:
        return [codec.encode(s.ExternalOut, x) for x in c.read(token, externals.list_all)]

    @app.delete("/v1/externals/{ref}", status_code=204, tags=["edge"])
    def delete_external(ref: str, token: Token) -> Response:
        c.write(token, lambda tx: externals.delete_external(tx, ref))
        return Response(status_code=204)

    @app.post("/v1/edge-pools", status_code=201, response_model=s.EdgePoolDetail, tags=["edge"])
    def create_edge_pool(body: s.EdgePoolCreate, token: Token) -> s.EdgePoolDetail:
        given = {k: v for k, v in body.given().items() if k in s.EdgePoolSettings.model_fields}
        found = c.write(token, lambda tx: edge_pools.create(tx, body.name, body.network, given))
        return detail_out(found)

    @app.get("/v1/edge-pools", response_model=list[s.EdgePoolDetail], tags=["edge"])
    def list_edge_pools(token: Token, network: str | None = None) -> list[s.EdgePoolDetail]:
        found = c.read(token, lambda tx: edge_pools.list_all(tx, network))
        return [detail_out(d) for d in found]

    @app.get("/v1/edge-pools/{ref:path}", response_model=s.EdgePoolDetail, tags=["edge"])
    def get_edge_pool(ref: str, token: Token, network: str | None = None) -> s.EdgePoolDetail:
        return detail_out(c.read(token, lambda tx: edge_pools.detail(tx, ref, network)))

    @app.patch("/v1/edge-pools/{ref:path}", response_model=s.EdgePoolDetail, tags=["edge"])
    def update_edge_pool(ref: str, body: s.EdgePoolSettings, token: Token) -> s.EdgePoolDetail:
        return detail_out(c.write(token, lambda tx: edge_pools.update_pool(tx, ref, body.given())))

    @app.delete("/v1/edge-pools/{ref:path}", status_code=204, tags=["edge"])
    def delete_edge_pool(ref: str, token: Token) -> Response:
        c.write(token, lambda tx: edge_pools.delete_pool(tx, ref))
        return Response(status_code=204)

    @app.post("/v1/edge-gateways", status_code=201, response_model=s.EdgePoolDetail, tags=["edge"])
    def add_gateway(body: s.GatewayAdd, token: Token, pool: str) -> s.EdgePoolDetail:
        found = c.write(
            token,
            lambda tx: edge_pools.add_gateway(tx, pool, body.name, body.host, body.external_ip),
        )
        return detail_out(found)

    @app.patch("/v1/edge-gateways/{ref}", response_model=s.EdgePoolDetail, tags=["edge"])
    def update_gateway(
        ref: str, body: s.GatewayUpdate, token: Token, pool: str
    ) -> s.EdgePoolDetail:
        found = c.write(
            token,
            lambda tx: edge_pools.update_gateway(tx, pool, ref, body.state, body.external_ip),
        )
        return detail_out(found)

    @app.delete("/v1/edge-gateways/{ref}", response_model=s.EdgePoolDetail, tags=["edge"])
    def remove_gateway(ref: str, token: Token, pool: str) -> s.EdgePoolDetail:
        return detail_out(c.write(token, lambda tx: edge_pools.remove_gateway(tx, pool, ref)))

    @app.post("/v1/routes", status_code=201, response_model=s.RouteOut, tags=["edge"])
    def add_route(body: s.RouteCreate, token: Token) -> s.RouteOut:
        made = c.write(token, lambda tx: routes.add(tx, body.network, body.prefix, body.edge_pool))
        return codec.encode(s.RouteOut, made)

    @app.get("/v1/routes", response_model=list[s.RouteOut], tags=["edge"])
    def list_routes(token: Token, network: str) -> list[s.RouteOut]:
        found = c.read(token, lambda tx: routes.list_all(tx, network))
        return [codec.encode(s.RouteOut, r) for r in found]

    @app.delete("/v1/routes", status_code=204, tags=["edge"])
    def delete_route(token: Token, network: str, prefix: str) -> Response:
        c.write(token, lambda tx: routes.remove(tx, network, prefix))
        return Response(status_code=204)
