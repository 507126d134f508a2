"""`onm node`: computing nodes, one virtual IP of one network on one host.

Refs: NAME (unambiguous, or with --network), NETWORK/NAME (where NETWORK may be TENANT/NAME),
or an id.

`onm node public-ip add a --edge-pool egress --ip 30.0.100.50` gives node a an address on the
pool's external network (1:1 NAT at the gateway that holds it; `list`, `remove --ip`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from onm.api.client import Client
from onm.api.schemas import NodeOut
from onm.cli import output as out
from onm.cli.edge import public_ips_table
from onm.cli.options import Json, Token, Url, session

app = typer.Typer(no_args_is_help=True, help="Computing nodes attached to networks on hosts.")
public_ip_app = typer.Typer(
    no_args_is_help=True, help="Nodes' public IPs on edge pools (inbound 1:1 NAT)."
)
app.add_typer(public_ip_app, name="public-ip")

Ref = Annotated[str, typer.Argument(help="Node name, NETWORK/NAME, or id.", show_default=False)]
InNetwork = Annotated[
    str | None, typer.Option("--network", help="The node's network (name, TENANT/NAME or id).")
]


class Names:
    """Network and host names for the ids in nodes (ids where the token may not list them)."""

    def __init__(self, client: Client) -> None:
        self.networks = out.names(client.list_networks)
        self.hosts = out.names(client.list_hosts)

    def network(self, node: NodeOut) -> str:
        return self.networks.get(node.network_id, node.network_id)

    def host(self, node: NodeOut) -> str:
        return self.hosts.get(node.host_id, node.host_id)


def fields(node: NodeOut, names: Names) -> list[tuple[str, object]]:
    return [
        ("name", node.name),
        ("id", node.id),
        ("network", names.network(node)),
        ("host", names.host(node)),
        ("ip", node.ip),
        ("mac", node.mac),
        ("slot", node.slot),
        ("interface", node.interface),
        ("created", out.when(node.created_at)),
    ]


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Node name (unique in its network).")],
    network: Annotated[
        str, typer.Option(help="Network (name, TENANT/NAME or id).", show_default=False)
    ],
    host: Annotated[str, typer.Option(help="Host that runs it (name or id).", show_default=False)],
    ip: Annotated[str, typer.Option(help="Its IPv4 address in the network.", show_default=False)],
    interface: Annotated[
        str | None, typer.Option(help="Host-side interface name (default: chosen by onm).")
    ] = None,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Create a node."""
    s = session(ctx, url, token, json)
    node = s.client.create_node(name, network, host, ip, interface)
    if s.json:
        out.print_json(node)
        return
    out.print_line(f"created node {node.name} ({node.id})")
    out.print_fields(fields(node, Names(s.client)))


@app.command("list")
def list_(
    ctx: typer.Context,
    network: InNetwork = None,
    host: Annotated[str | None, typer.Option(help="Only the nodes on this host.")] = None,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """List the nodes the token may see."""
    s = session(ctx, url, token, json)
    found = s.client.list_nodes(network, host)
    if s.json:
        out.print_json(found)
        return
    if not found:
        out.print_line("no nodes")
        return
    names = Names(s.client)
    grid = out.table("NAME", "NETWORK", "HOST", "IP", "MAC", "SLOT", "INTERFACE", "ID")
    for n in found:
        cells = [n.name, names.network(n), names.host(n), n.ip, n.mac, n.slot, n.interface, n.id]
        out.add_row(grid, cells)
    out.print_table(grid, "no nodes")


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Ref,
    network: InNetwork = None,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Show one node."""
    s = session(ctx, url, token, json)
    node = s.client.get_node(ref, network)
    if s.json:
        out.print_json(node)
        return
    out.print_fields(fields(node, Names(s.client)))


@app.command("delete")
def delete(
    ctx: typer.Context,
    ref: Ref,
    network: InNetwork = None,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Delete a node (prints nothing with --json)."""
    s = session(ctx, url, token, json)
    s.client.delete_node(ref, network)
    if not s.json:
        out.print_line(f"deleted node {ref}")


# --- public IPs (issue #10) -------------------------------------------------------------------

PublicIp = Annotated[str, typer.Option("--ip", help="The public IPv4 address.", show_default=False)]


@public_ip_app.command("add")
def public_ip_add(
    ctx: typer.Context,
    ref: Ref,
    edge_pool: Annotated[
        str, typer.Option(help="An edge pool of the node's network.", show_default=False)
    ],
    ip: PublicIp,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Give a node a public IP on an edge pool's external network."""
    s = session(ctx, url, token, json)
    made = s.client.add_public_ip(ref, edge_pool, ip)
    if s.json:
        out.print_json(made)
        return
    held = f"held by gateway {made.gateway}" if made.gateway else "no active gateway holds it yet"
    out.print_line(f"node {made.node} has public IP {made.ip} on edge pool {made.pool} ({held})")


@public_ip_app.command("list")
def public_ip_list(
    ctx: typer.Context, ref: Ref, url: Url = None, token: Token = None, json: Json = False
) -> None:
    """List a node's public IPs."""
    s = session(ctx, url, token, json)
    found = s.client.list_public_ips(ref)
    if s.json:
        out.print_json(found)
        return
    public_ips_table(found)


@public_ip_app.command("remove")
def public_ip_remove(
    ctx: typer.Context,
    ref: Ref,
    ip: PublicIp,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Take a public IP from a node (prints nothing with --json)."""
    s = session(ctx, url, token, json)
    s.client.remove_public_ip(ref, ip)
    if not s.json:
        out.print_line(f"removed public IP {ip} from node {ref}")
