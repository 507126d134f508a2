"""Edge gateway health (issue #10): agents' reports in, each pool's gateways with their health
and traffic out, and a pool's rebalance. Thin: `onm.manager.gateway_health` and `edge_pools`
decide."""

from __future__ import annotations

from fastapi import FastAPI

from onm.api import schemas as s
from onm.manager import edge_pools, gateway_health
from onm.manager.api.context import Context, Token
from onm.manager.api.edge_routes import detail_out


def health_out(found: gateway_health.GatewayHealth) -> s.GatewayHealthOut:
    g = found.gateway
    return s.GatewayHealthOut(
        id=g.id,
        name=g.name,
        host=found.host,
        external_ip=str(g.external_ip),
        state=g.state.value,
        health=found.health.value,
        since=found.since,
        why=found.why,
        pinned=found.pinned,
        flows=found.flows,
        packets=found.packets,
        bytes=found.bytes,
        heard=[
            s.GatewayHeardOut(
                host=h.host,
                alive=h.figures.alive,
                pinned=h.figures.pinned,
                flows=h.figures.flows,
                packets=h.figures.packets,
                bytes=h.figures.bytes,
                reported_at=h.reported_at,
            )
            for h in found.heard
        ],
    )


def install(app: FastAPI, c: Context) -> None:
    @app.post("/v1/hosts/{ref}/gateways", response_model=s.GatewayReportOut, tags=["agents"])
    def report_gateways(ref: str, body: s.GatewayReportIn, token: Token) -> s.GatewayReportOut:
        """The edge gateways the host's agent probes or serves, as it sees them; answered with
        the other senders' load on each gateway of the least-loaded pools among them."""
        figures = [
            gateway_health.GatewayFigures(
                g.gateway,
                g.alive,
                g.pinned,
                g.flows,
                g.packets,
                g.bytes,
                tuple((r.rule, r.packets) for r in g.rules),
                tuple((d.verdict, d.packets) for d in g.defaults),
            )
            for g in body.gateways
        ]
        answer = c.write(token, lambda tx: gateway_health.report(tx, ref, figures))
        loads = [s.GatewayLoadOut(gateway=g, flows=n) for g, n in answer.loads.items()]
        return s.GatewayReportOut(accepted=answer.accepted, loads=loads)

    @app.get("/v1/edge-gateways", response_model=list[s.GatewayHealthOut], tags=["edge"])
    def list_gateways(
        token: Token, pool: str, network: str | None = None
    ) -> list[s.GatewayHealthOut]:
        """An edge pool's gateways: state, health (why, since when), flows, packets, bytes."""
        found = c.read(token, lambda tx: gateway_health.view(tx, pool, network))
        return [health_out(g) for g in found]

    @app.post("/v1/edge-pools/{ref:path}/rebalance", response_model=s.EdgePoolDetail, tags=["edge"])
    def rebalance_edge_pool(ref: str, token: Token) -> s.EdgePoolDetail:
        """Move existing flows on purpose: every sending agent drops the pool's pins once."""
        return detail_out(c.write(token, lambda tx: edge_pools.rebalance(tx, ref)))
