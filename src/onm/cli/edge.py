"""`onm external`, `onm edge-pool` and `onm route` (issue #10; seed 1): a network's ways out.

- `onm external create internet --cidr 30.0.0.0/16`: a network outside the overlay (admin).
- `onm edge-pool create egress --network znet --nat snat --hash src,dst`: a network's pool of
  gateways; `onm edge-pool gateway add egress e1 --host gw1 --external-ip 30.0.100.1` (admin;
  gw1 is a host in edge role on that external network).
- `onm route add --network znet 0.0.0.0/0 --edge-pool egress`: external traffic goes through it.
- `onm edge-pool show egress` also lists the pool's firewall rules (`onm rule`) in order, with
  the packets each matched and what the default verdicts took (summed over the gateways), and
  its public IPs (`onm node public-ip`) with the gateway holding each.
- `onm edge-pool show egress`: the pool, and each gateway's health (why, since when) and the
  flows, packets and bytes the sending agents report through it; `onm edge-pool rebalance
  egress` moves existing flows on purpose.

Refs: NAME (unambiguous, or with --network), NETWORK/NAME, or an id.
"""

from __future__ import annotations

import json as jsonlib
from typing import Annotated

import typer

from onm.api.client import Client, dump
from onm.api.schemas import EdgePoolDetail, GatewayHealthOut, PublicIpDetailOut
from onm.cli import output as out
from onm.cli.options import Json, Token, Url, session
from onm.cli.rule import defaults_table, rules_table
from onm.errors import ForbiddenError

external_app = typer.Typer(no_args_is_help=True, help="Networks outside the overlay.")
app = typer.Typer(
    no_args_is_help=True, help="Edge pools: a network's gateways to external networks."
)
gateway_app = typer.Typer(no_args_is_help=True, help="An edge pool's gateways (admin).")
app.add_typer(gateway_app, name="gateway")
route_app = typer.Typer(no_args_is_help=True, help="A network's routes to edge pools.")

Ref = Annotated[
    str, typer.Argument(help="Edge pool name, NETWORK/NAME, or id.", show_default=False)
]
Name = Annotated[str, typer.Argument(help="Name.", show_default=False)]
InNetwork = Annotated[str, typer.Option("--network", help="The network (name, TENANT/NAME or id).")]
Nat = Annotated[str | None, typer.Option(help="snat | none [new: snat]")]
HashOption = Annotated[
    str | None,
    typer.Option(
        "--hash", help="Fields a flow's gateway is hashed on: src,dst[,proto,sport,dport]"
    ),
]
Choice = Annotated[str | None, typer.Option(help="hash | random | least-loaded [new: hash]")]
Mode = Annotated[str | None, typer.Option(help="direct | anycast [new: direct]")]
SplitAbove = Annotated[
    float | None, typer.Option(help="nat none: spread a pair faster than this (bits/s)")
]
ProbeInterval = Annotated[
    float | None, typer.Option(help="Seconds between probes of each gateway [new: 1]")
]


def _settings(
    nat: str | None,
    hash_: str | None,
    choice: str | None,
    mode: str | None,
    split_above: float | None,
    probe_interval: float | None,
) -> dict[str, object]:
    given: dict[str, object] = {
        "nat": nat,
        "hash": None if hash_ is None else [f.strip() for f in hash_.split(",")],
        "choice": choice,
        "mode": mode,
        "split_above": split_above,
        "probe_interval": probe_interval,
    }
    return {k: v for k, v in given.items() if v is not None}


def show_pool(pool: EdgePoolDetail) -> None:
    out.print_fields(
        [
            ("name", pool.name),
            ("id", pool.id),
            ("network", pool.network),
            ("nat", pool.nat),
            ("hash", ",".join(pool.hash_fields)),
            ("choice", pool.choice),
            ("mode", pool.mode),
            *([("anycast /64", pool.anycast)] if pool.anycast else []),  # admins only
            ("split above", "-" if pool.split_above is None else f"{pool.split_above:g} bit/s"),
            ("probe interval", f"{pool.probe_interval:g} s"),
        ]
    )
    grid = out.table("GATEWAY", "EXTERNAL IP", "STATE", "HOST", "ID")
    for g in pool.gateways:
        out.add_row(grid, [g.name, g.external_ip, g.state, g.host_id, g.id])
    out.print_table(grid, "no gateways")
    rules_table(pool.rules)
    defaults_table(pool.defaults)
    public_ips_table(pool.public_ips)


def public_ips_table(found: list[PublicIpDetailOut]) -> None:
    grid = out.table("PUBLIC IP", "NODE", "NODE IP", "EDGE POOL", "GATEWAY", "ID")
    for p in found:
        out.add_row(grid, [p.ip, p.node, p.node_ip, p.pool, p.gateway or "-", p.id])
    out.print_table(grid, "no public IPs")


def gateway_health(client: Client, pool: EdgePoolDetail) -> list[GatewayHealthOut] | None:
    """The pool's gateways with their health and traffic; None for a token that may not read
    them (a host's)."""
    try:
        return client.gateway_health(pool.id)
    except ForbiddenError:
        return None


def show_health(found: list[GatewayHealthOut]) -> None:
    grid = out.table(
        "GATEWAY", "STATE", "HEALTH", "SINCE", "WHY", "FLOWS", "NEW FLOWS", "PACKETS", "BYTES"
    )
    for g in found:
        since = out.when(g.since)
        cells = [g.name, g.state, g.health, since, g.why, g.pinned, g.flows, g.packets, g.bytes]
        out.add_row(grid, cells)
    out.print_table(grid, "no gateways")


def print_show_json(pool: EdgePoolDetail, health: list[GatewayHealthOut] | None) -> None:
    """`show --json`: the pool as the API gives it, with `gateway_health` (null: not readable)."""
    data = dump(pool) | {"gateway_health": None if health is None else dump(health)}
    typer.echo(jsonlib.dumps(data, indent=2, ensure_ascii=False))


# --- external networks -----------------------------------------------------------------------


@external_app.command("create")
def external_create(
    ctx: typer.Context,
    name: Name,
    cidr: Annotated[str, typer.Option(help="Its IPv4 CIDR, e.g. 30.0.0.0/16.", show_default=False)],
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Create an external network (admin)."""
    s = session(ctx, url, token, json)
    made = s.client.create_external(name, cidr)
    if s.json:
        out.print_json(made)
        return
    out.print_line(f"created external network {made.name} ({made.id}): {made.cidr}")


@external_app.command("list")
def external_list(
    ctx: typer.Context, url: Url = None, token: Token = None, json: Json = False
) -> None:
    """List the external networks."""
    s = session(ctx, url, token, json)
    found = s.client.list_externals()
    if s.json:
        out.print_json(found)
        return
    grid = out.table("NAME", "CIDR", "ID")
    for x in found:
        out.add_row(grid, [x.name, x.cidr, x.id])
    out.print_table(grid, "no external networks")


@external_app.command("delete")
def external_delete(
    ctx: typer.Context, name: Name, url: Url = None, token: Token = None, json: Json = False
) -> None:
    """Delete an external network no host is on (admin)."""
    s = session(ctx, url, token, json)
    s.client.delete_external(name)
    if not s.json:
        out.print_line(f"deleted external network {name}")


# --- edge pools ------------------------------------------------------------------------------


@app.command("create")
def create(
    ctx: typer.Context,
    name: Name,
    network: InNetwork,
    nat: Nat = None,
    hash_: HashOption = None,
    choice: Choice = None,
    mode: Mode = None,
    split_above: SplitAbove = None,
    probe_interval: ProbeInterval = None,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Create an edge pool in a network."""
    s = session(ctx, url, token, json)
    given = _settings(nat, hash_, choice, mode, split_above, probe_interval)
    made = s.client.create_edge_pool(name, network, given)
    if s.json:
        out.print_json(made)
        return
    out.print_line(f"created edge pool {made.name} ({made.id}) in network {made.network}")
    show_pool(made)


@app.command("set")
def set_(
    ctx: typer.Context,
    ref: Ref,
    nat: Nat = None,
    hash_: HashOption = None,
    choice: Choice = None,
    mode: Mode = None,
    split_above: SplitAbove = None,
    probe_interval: ProbeInterval = None,
    rebalance: Annotated[
        bool, typer.Option("--rebalance", help="Also move existing flows (see `rebalance`).")
    ] = False,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Change an edge pool's settings (the ones given; the rest stay)."""
    s = session(ctx, url, token, json)
    given = _settings(nat, hash_, choice, mode, split_above, probe_interval)
    if given or not rebalance:
        found = s.client.update_edge_pool(ref, given)
    if rebalance:
        found = s.client.rebalance_edge_pool(ref)
    if s.json:
        out.print_json(found)
        return
    show_pool(found)


@app.command("list")
def list_(
    ctx: typer.Context,
    network: Annotated[str | None, typer.Option(help="Only this network's.")] = None,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """List the edge pools the token may see."""
    s = session(ctx, url, token, json)
    found = s.client.list_edge_pools(network)
    if s.json:
        out.print_json(found)
        return
    grid = out.table("NAME", "NETWORK", "NAT", "HASH", "GATEWAYS", "ID")
    for p in found:
        out.add_row(
            grid, [p.name, p.network, p.nat, ",".join(p.hash_fields), len(p.gateways), p.id]
        )
    out.print_table(grid, "no edge pools")


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Ref,
    network: Annotated[str | None, typer.Option(help="The pool's network.")] = None,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Show an edge pool, its gateways and their health and traffic."""
    s = session(ctx, url, token, json)
    found = s.client.get_edge_pool(ref, network)
    health = gateway_health(s.client, found)
    if s.json:
        print_show_json(found, health)
        return
    show_pool(found)
    if health is not None:
        show_health(health)


@app.command("rebalance")
def rebalance(
    ctx: typer.Context, ref: Ref, url: Url = None, token: Token = None, json: Json = False
) -> None:
    """Move existing flows on purpose: every sending agent drops the pool's pins once, so each
    flow takes its place in the gateway table again (a moved NAT flow loses its connection)."""
    s = session(ctx, url, token, json)
    found = s.client.rebalance_edge_pool(ref)
    if s.json:
        out.print_json(found)
        return
    out.print_line(f"edge pool {found.name}: rebalance {found.rebalance}")


@app.command("delete")
def delete(
    ctx: typer.Context, ref: Ref, url: Url = None, token: Token = None, json: Json = False
) -> None:
    """Delete an edge pool no route uses (prints nothing with --json)."""
    s = session(ctx, url, token, json)
    s.client.delete_edge_pool(ref)
    if not s.json:
        out.print_line(f"deleted edge pool {ref}")


@gateway_app.command("add")
def gateway_add(
    ctx: typer.Context,
    pool: Ref,
    name: Name,
    host: Annotated[str, typer.Option(help="A host in edge role.", show_default=False)],
    external_ip: Annotated[
        str, typer.Option(help="Its address on the host's external network.", show_default=False)
    ],
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Add a gateway to an edge pool (admin)."""
    s = session(ctx, url, token, json)
    found = s.client.add_gateway(pool, name, host, external_ip)
    if s.json:
        out.print_json(found)
        return
    out.print_line(f"added gateway {name} to edge pool {found.name}")
    show_pool(found)


@gateway_app.command("set")
def gateway_set(
    ctx: typer.Context,
    pool: Ref,
    name: Name,
    state: Annotated[
        str | None, typer.Option(help="active | draining (no new flows; its flows finish)")
    ] = None,
    external_ip: Annotated[str | None, typer.Option(help="A new external address.")] = None,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Drain a gateway, make it active again, or move its external address (admin)."""
    s = session(ctx, url, token, json)
    found = s.client.update_gateway(pool, name, state, external_ip)
    if s.json:
        out.print_json(found)
        return
    show_pool(found)


@gateway_app.command("remove")
def gateway_remove(
    ctx: typer.Context,
    pool: Ref,
    name: Name,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Remove a gateway (its flows move to the others) (admin)."""
    s = session(ctx, url, token, json)
    found = s.client.remove_gateway(pool, name)
    if s.json:
        out.print_json(found)
        return
    out.print_line(f"removed gateway {name} from edge pool {found.name}")


# --- routes ------------------------------------------------------------------------------------


@route_app.command("add")
def route_add(
    ctx: typer.Context,
    prefix: Annotated[str, typer.Argument(help="An external IPv4 prefix, e.g. 0.0.0.0/0.")],
    network: InNetwork,
    edge_pool: Annotated[str, typer.Option(help="The network's edge pool it goes through.")],
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Send a network's traffic to an external prefix through one of its edge pools."""
    s = session(ctx, url, token, json)
    made = s.client.add_route(network, prefix, edge_pool)
    if s.json:
        out.print_json(made)
        return
    out.print_line(f"route {made.prefix} via edge pool {edge_pool} ({made.id})")


@route_app.command("list")
def route_list(
    ctx: typer.Context, network: InNetwork, url: Url = None, token: Token = None, json: Json = False
) -> None:
    """List a network's routes."""
    s = session(ctx, url, token, json)
    found = s.client.list_routes(network)
    if s.json:
        out.print_json(found)
        return
    names = {p.id: p.name for p in s.client.list_edge_pools(network)} if found else {}
    grid = out.table("PREFIX", "EDGE POOL", "ID")
    for r in found:
        out.add_row(grid, [r.prefix, names.get(r.edge_pool_id, r.edge_pool_id), r.id])
    out.print_table(grid, "no routes")


@route_app.command("delete")
def route_delete(
    ctx: typer.Context,
    prefix: Annotated[str, typer.Argument(help="The route's prefix.")],
    network: InNetwork,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Delete a network's route."""
    s = session(ctx, url, token, json)
    s.client.delete_route(network, prefix)
    if not s.json:
        out.print_line(f"deleted route {prefix}")
