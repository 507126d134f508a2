"""The pool routes (`/v1/pools`): thin, like the rest; `onm.manager.pools` decides."""

from __future__ import annotations

from fastapi import FastAPI, Response

from onm.api import codec
from onm.api import schemas as s
from onm.errors import InvalidInputError
from onm.manager import detection, health, pools
from onm.manager.api.context import Context, Token
from onm.model.pool import Health


def detail_out(found: pools.PoolDetail) -> s.PoolDetail:
    members = [
        s.MemberOut(
            node_id=d.member.node_id,
            node=d.node.name,
            host_id=d.member.host_id,
            rank=d.member.rank,
            health=d.member.health.value,
            since=d.member.since,
            reported_at=d.member.reported_at,
            load=d.member.load,
            selections=d.selections,
        )
        for d in found.members
    ]
    pool = codec.encode(s.PoolOut, found.pool)
    actions = [
        s.ActionOut(on=str(a.on), kind=a.kind.value, target=a.target, signed=a.secret is not None)
        for a in found.pool.actions
    ]
    return s.PoolDetail(**dict(pool), network=found.network.name, members=members, actions=actions)


def _reports(body: s.HealthReportIn) -> list[health.MemberReport]:
    found = []
    for m in body.members:
        try:
            state = Health(m.health)
        except ValueError:
            raise InvalidInputError("health", f"{m.health!r}: report up or down") from None
        found.append(health.MemberReport(m.pool, m.node, state, m.load))
    return found


def install(app: FastAPI, c: Context) -> None:
    @app.post("/v1/hosts/{ref}/health", status_code=204, tags=["agents"])
    def report_health(ref: str, body: s.HealthReportIn, token: Token) -> Response:
        """The health of pool members the host's agent hosts (it may report no others)."""
        reports = _reports(body)
        c.write(token, lambda tx: health.report(tx, ref, reports))
        return Response(status_code=204)

    @app.post("/v1/hosts/{ref}/claims", response_model=list[s.ClaimOut], tags=["agents"])
    def report_claims(ref: str, body: s.ClaimsReportIn, token: Token) -> list[s.ClaimOut]:
        """Addresses the host's nodes were seen using that are not their own (detection)."""
        claims = [detection.ClaimReport(c.node, c.ip) for c in body.claims]
        found = c.write(token, lambda tx: detection.report(tx, ref, claims))
        return [s.ClaimOut(node=o.node, ip=o.ip, verdict=o.verdict) for o in found]

    @app.post("/v1/pools/{ref:path}/accept", response_model=s.PoolDetail, tags=["pools"])
    def accept_pool(ref: str, token: Token) -> s.PoolDetail:
        """A proposed (detected) pool goes live."""
        return detail_out(c.write(token, lambda tx: detection.accept(tx, ref)))

    @app.post("/v1/pools/{ref:path}/reject", response_model=s.PoolDetail, tags=["pools"])
    def reject_pool(ref: str, token: Token) -> s.PoolDetail:
        """A proposed (detected) pool is refused: its address stays spoofed."""
        return detail_out(c.write(token, lambda tx: detection.reject(tx, ref)))

    @app.post("/v1/pools", status_code=201, response_model=s.PoolDetail, tags=["pools"])
    def create_pool(body: s.PoolCreate, token: Token) -> s.PoolDetail:
        settings = s.PoolSettings.model_validate(
            body.model_dump(include=body.model_fields_set & set(s.PoolSettings.model_fields))
        )
        found = c.write(
            token,
            lambda tx: pools.create(
                tx, body.name, body.network, body.ip, settings.given(), body.members
            ),
        )
        return detail_out(found)

    @app.get("/v1/pools", response_model=list[s.PoolDetail], tags=["pools"])
    def list_pools(token: Token, network: str | None = None) -> list[s.PoolDetail]:
        return [detail_out(d) for d in c.read(token, lambda tx: pools.list_all(tx, network))]

    @app.get("/v1/pools/{ref:path}", response_model=s.PoolDetail, tags=["pools"])
    def get_pool(ref: str, token: Token, network: str | None = None) -> s.PoolDetail:
        return detail_out(c.read(token, lambda tx: pools.detail(tx, ref, network)))

    @app.patch("/v1/pools/{ref:path}", response_model=s.PoolDetail, tags=["pools"])
    def update_pool(ref: str, body: s.PoolSettings, token: Token) -> s.PoolDetail:
        return detail_out(c.write(token, lambda tx: pools.update_pool(tx, ref, body.given())))

    @app.delete("/v1/pools/{ref:path}", status_code=204, tags=["pools"])
    def delete_pool(ref: str, token: Token) -> Response:
        c.write(token, lambda tx: pools.delete_pool(tx, ref))
        return Response(status_code=204)

    @app.post("/v1/pool-members", status_code=201, response_model=s.PoolDetail, tags=["pools"])
    def add_member(body: s.MemberAdd, token: Token, pool: str) -> s.PoolDetail:
        return detail_out(
            c.write(token, lambda tx: pools.add_member(tx, pool, body.node, body.rank))
        )

    @app.delete("/v1/pool-members/{node:path}", response_model=s.PoolDetail, tags=["pools"])
    def remove_member(node: str, token: Token, pool: str) -> s.PoolDetail:
        return detail_out(c.write(token, lambda tx: pools.remove_member(tx, pool, node)))
