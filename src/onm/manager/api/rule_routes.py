"""The routes of edge pools' firewall rules and nodes' public IPs (issue #10). Thin, like the
rest: `onm.manager.edge_rules` and `public_ips` decide.

Installed before the edge pool and node routes: those take `{ref:path}` (refs such as
`NETWORK/NAME`), which would otherwise swallow `.../rules` and `.../public-ips`.
"""

from __future__ import annotations

from fastapi import FastAPI, Response

from onm.api import codec
from onm.api import schemas as s
from onm.manager import edge_rules, public_ips
from onm.manager.api.context import Context, Token
from onm.manager.api.edge_routes import public_ip_out


def install(app: FastAPI, c: Context) -> None:
    @app.post(
        "/v1/edge-pools/{pool:path}/rules",
        status_code=201,
        response_model=s.EdgeRuleOut,
        tags=["edge"],
    )
    def add_rule(pool: str, body: s.EdgeRuleCreate, token: Token) -> s.EdgeRuleOut:
        made = c.write(
            token,
            lambda tx: edge_rules.add(
                tx,
                pool,
                body.direction,
                body.action,
                body.proto,
                body.ports,
                body.remote,
                body.position,
            ),
        )
        return codec.encode(s.EdgeRuleOut, made)

    @app.get(
        "/v1/edge-pools/{pool:path}/rules",
        response_model=list[s.EdgeRuleCountedOut],
        tags=["edge"],
    )
    def list_rules(pool: str, token: Token) -> list[s.EdgeRuleCountedOut]:
        """The pool's rules in order, each with the packets it matched over the gateways."""
        found = c.read(token, lambda tx: edge_rules.list_all(tx, pool))
        return [codec.encode(s.EdgeRuleCountedOut, r) for r in found]

    @app.delete("/v1/edge-pools/{pool:path}/rules/{rule}", status_code=204, tags=["edge"])
    def delete_rule(pool: str, rule: str, token: Token) -> Response:
        c.write(token, lambda tx: edge_rules.remove(tx, pool, rule))
        return Response(status_code=204)

    @app.post(
        "/v1/nodes/{node:path}/public-ips",
        status_code=201,
        response_model=s.PublicIpDetailOut,
        tags=["edge"],
    )
    def add_public_ip(node: str, body: s.PublicIpCreate, token: Token) -> s.PublicIpDetailOut:
        made = c.write(token, lambda tx: public_ips.add(tx, node, body.edge_pool, body.ip))
        return public_ip_out(made)

    @app.get(
        "/v1/nodes/{node:path}/public-ips",
        response_model=list[s.PublicIpDetailOut],
        tags=["edge"],
    )
    def list_public_ips(node: str, token: Token) -> list[s.PublicIpDetailOut]:
        found = c.read(token, lambda tx: public_ips.list_of_node(tx, node))
        return [public_ip_out(p) for p in found]

    @app.delete("/v1/nodes/{node:path}/public-ips/{ip}", status_code=204, tags=["edge"])
    def remove_public_ip(node: str, ip: str, token: Token) -> Response:
        c.write(token, lambda tx: public_ips.remove(tx, node, ip))
        return Response(status_code=204)
