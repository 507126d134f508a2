"""`onm host`: the machines that run agents, each owning a /64 of the substrate.

Admins manage them; a tenant token lists and shows them without their substrate details (no
/64), which the tables below then leave out.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from onm.addressing import Location
from onm.api.schemas import HostOut, HostView
from onm.cli import output as out
from onm.cli.options import Json, Token, Url, session

app = typer.Typer(no_args_is_help=True, help="Hosts: machines running an agent.")

Ref = Annotated[str, typer.Argument(help="Host name or id.", show_default=False)]
LOCATION = "Location (instead of --prefix)"


def location(host: HostView) -> str:
    loc = host.location
    return f"{loc.locale}/{loc.area}/{loc.rack}/{loc.node}"


def fields(host: HostView) -> list[tuple[str, object]]:
    prefix = [("prefix", host.prefix)] if isinstance(host, HostOut) else []
    return [
        ("name", host.name),
        ("id", host.id),
        *prefix,
        ("location", f"{location(host)} (locale/area/rack/node)"),
        ("created", out.when(host.created_at)),
    ]


def _location(
    locale: int | None, area: int | None, rack: int | None, node: int | None
) -> Location | None:
    parts = (locale, area, rack, node)
    if all(p is None for p in parts):
        return None
    if locale is None or area is None or rack is None or node is None:
        raise typer.BadParameter(
            "give all four of --locale, --area, --rack and --node, or none of them",
            param_hint="'--locale/--area/--rack/--node'",
        )
    return Location(locale, area, rack, node)


def _part(help_text: str) -> Any:
    return typer.Option(help=help_text, rich_help_panel=LOCATION, show_default=False)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Host name.", show_default=False)],
    prefix: Annotated[
        str | None, typer.Option(help="The host's /64, e.g. fd00:0:102:304::/64.")
    ] = None,
    locale: Annotated[int | None, _part("Locale, 0..63.")] = None,
    area: Annotated[int | None, _part("Area in the locale, 0..255.")] = None,
    rack: Annotated[int | None, _part("Rack in the area, 0..255.")] = None,
    node: Annotated[int | None, _part("Host in the rack, 0..255.")] = None,
    role: Annotated[
        str, typer.Option(help="node (runs tenant nodes) | edge (a gateway to an external network)")
    ] = "node",
    external: Annotated[
        str | None, typer.Option(help="An edge host's external network (onm external create).")
    ] = None,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Create a host by /64 prefix or location, and print its agent's token (shown once)."""
    where = _location(locale, area, rack, node)
    s = session(ctx, url, token, json)
    created = s.client.create_host(name, prefix, where, role, external)
    if s.json:
        out.print_json(created)
        return
    out.print_line(f"created host {created.host.name} ({created.host.id}): {created.host.prefix}")
    out.print_line(f"token: {created.token}")
    out.print_line("the token is shown only this once: give it to the host's agent now")


@app.command("list")
def list_(ctx: typer.Context, url: Url = None, token: Token = None, json: Json = False) -> None:
    """List the hosts (without their /64 for a tenant token)."""
    s = session(ctx, url, token, json)
    found = s.client.list_hosts()
    if s.json:
        out.print_json(found)
        return
    full = all(isinstance(host, HostOut) for host in found)  # tenants see no prefixes
    grid = out.table("NAME", *(["PREFIX"] if full else []), "LOCATION", "ID")
    for host in found:
        prefix = [host.prefix] if isinstance(host, HostOut) and full else []
        out.add_row(grid, [host.name, *prefix, location(host), host.id])
    out.print_table(grid, "no hosts")


@app.command("show")
def show(
    ctx: typer.Context, ref: Ref, url: Url = None, token: Token = None, json: Json = False
) -> None:
    """Show one host (without its /64 for a tenant token)."""
    s = session(ctx, url, token, json)
    host = s.client.get_host(ref)
    if s.json:
        out.print_json(host)
        return
    out.print_fields(fields(host))


@app.command("delete")
def delete(
    ctx: typer.Context, ref: Ref, url: Url = None, token: Token = None, json: Json = False
) -> None:
    """Delete a host that runs no nodes, and revoke its token (prints nothing with --json)."""
    s = session(ctx, url, token, json)
    s.client.delete_host(ref)
    if not s.json:
        out.print_line(f"deleted host {ref}")
