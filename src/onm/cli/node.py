"""`onm node`: computing nodes, one virtual IP of one network on one host.

Refs: NAME (unambiguous, or with --network), NETWORK/NAME (where NETWORK may be TENANT/NAME),
or an id.
"""

from __future__ import annotations

from typing import Annotated

import typer

from onm.api.client import Client
from onm.api.schemas import NodeOut
from onm.cli import output as out
from onm.cli.options import Json, Token, Url, session

app = typer.Typer(no_args_is_help=True, help="Computing nodes attached to networks on hosts.")

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
