"""`onm network`: a tenant's virtual IPv4 networks. Refs: NAME, TENANT/NAME or an id."""

from __future__ import annotations

from typing import Annotated

import typer

from onm.api.schemas import NetworkOut
from onm.cli import output as out
from onm.cli.options import Json, Token, Url, session
from onm.model import Encoding
from onm.model.network import AutoPools

app = typer.Typer(no_args_is_help=True, help="Virtual IPv4 networks of tenants.")

Ref = Annotated[str, typer.Argument(help="Network name, TENANT/NAME, or id.", show_default=False)]
AUTO_POOLS_HELP = (
    "What two nodes claiming one address become: off (nothing), propose (a proposed pool, "
    "for onm pool accept/reject) or accept (a live pool at once)."
)
AutoPoolsOption = Annotated[AutoPools, typer.Option(help=AUTO_POOLS_HELP)]


def fields(network: NetworkOut, tenant_names: dict[str, str]) -> list[tuple[str, object]]:
    return [
        ("name", network.name),
        ("id", network.id),
        ("tenant", tenant_names.get(network.tenant_id, network.tenant_id)),
        ("vni", network.vni),
        ("cidrs", ", ".join(network.cidrs)),
        ("encoding", network.encoding),
        ("gateway", network.gateway),
        ("auto pools", network.auto_pools),
        ("created", out.when(network.created_at)),
    ]


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Network name.", show_default=False)],
    cidr: Annotated[
        list[str],
        typer.Option(help="An IPv4 CIDR of the network (repeat for more).", show_default=False),
    ],
    tenant: Annotated[
        str | None,
        typer.Option(help="Owning tenant (name or id); a tenant token may leave it out."),
    ] = None,
    encoding: Annotated[
        Encoding, typer.Option(help="How packets cross the substrate.")
    ] = Encoding.SIIT,
    auto_pools: AutoPoolsOption = AutoPools.PROPOSE,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Create a network."""
    s = session(ctx, url, token, json)
    network = s.client.create_network(name, cidr, tenant, encoding.value, auto_pools.value)
    if s.json:
        out.print_json(network)
        return
    out.print_line(f"created network {network.name} ({network.id})")
    out.print_fields(fields(network, out.names(s.client.list_tenants)))


@app.command("set")
def set_(
    ctx: typer.Context,
    ref: Ref,
    auto_pools: Annotated[
        AutoPools | None, typer.Option(help=AUTO_POOLS_HELP, show_default=False)
    ] = None,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Change a network's settings."""
    s = session(ctx, url, token, json)
    network = s.client.update_network(ref, None if auto_pools is None else auto_pools.value)
    if s.json:
        out.print_json(network)
        return
    out.print_fields(fields(network, out.names(s.client.list_tenants)))


@app.command("list")
def list_(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's networks.")] = None,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """List the networks the token may see."""
    s = session(ctx, url, token, json)
    found = s.client.list_networks(tenant)
    if s.json:
        out.print_json(found)
        return
    tenant_names = out.names(s.client.list_tenants) if found else {}
    grid = out.table("NAME", "TENANT", "VNI", "CIDRS", "ENCODING", "GATEWAY", "ID")
    for n in found:
        owner = tenant_names.get(n.tenant_id, n.tenant_id)
        out.add_row(grid, [n.name, owner, n.vni, ",".join(n.cidrs), n.encoding, n.gateway, n.id])
    out.print_table(grid, "no networks")


@app.command("show")
def show(
    ctx: typer.Context, ref: Ref, url: Url = None, token: Token = None, json: Json = False
) -> None:
    """Show one network."""
    s = session(ctx, url, token, json)
    network = s.client.get_network(ref)
    if s.json:
        out.print_json(network)
        return
    out.print_fields(fields(network, out.names(s.client.list_tenants)))


@app.command("delete")
def delete(
    ctx: typer.Context, ref: Ref, url: Url = None, token: Token = None, json: Json = False
) -> None:
    """Delete a network without nodes (prints nothing with --json)."""
    s = session(ctx, url, token, json)
    s.client.delete_network(ref)
    if not s.json:
        out.print_line(f"deleted network {ref}")
