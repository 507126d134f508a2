"""`onm tenant`: create, list, show and delete tenants (admin token; a tenant sees itself)."""

from __future__ import annotations

from typing import Annotated

import typer

from onm.cli import output as out
from onm.cli.options import Json, Token, Url, session
from onm.manager.api.schemas import TenantOut

app = typer.Typer(no_args_is_help=True, help="Tenants: who owns networks.")

Ref = Annotated[str, typer.Argument(help="Tenant name or id.", show_default=False)]


def fields(tenant: TenantOut) -> list[tuple[str, object]]:
    return [("name", tenant.name), ("id", tenant.id), ("created", out.when(tenant.created_at))]


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Tenant name.", show_default=False)],
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Create a tenant and print its token (shown this once only)."""
    s = session(ctx, url, token, json)
    created = s.client.create_tenant(name)
    if s.json:
        out.print_json(created)
        return
    out.print_line(f"created tenant {created.tenant.name} ({created.tenant.id})")
    out.print_line(f"token: {created.token}")
    out.print_line("the token is shown only this once: store it now (e.g. a 0600 file for @FILE)")


@app.command("list")
def list_(ctx: typer.Context, url: Url = None, token: Token = None, json: Json = False) -> None:
    """List the tenants the token may see."""
    s = session(ctx, url, token, json)
    found = s.client.list_tenants()
    if s.json:
        out.print_json(found)
        return
    grid = out.table("NAME", "ID", "CREATED")
    for tenant in found:
        out.add_row(grid, [tenant.name, tenant.id, out.when(tenant.created_at)])
    out.print_table(grid, "no tenants")


@app.command("show")
def show(
    ctx: typer.Context, ref: Ref, url: Url = None, token: Token = None, json: Json = False
) -> None:
    """Show one tenant."""
    s = session(ctx, url, token, json)
    tenant = s.client.get_tenant(ref)
    if s.json:
        out.print_json(tenant)
        return
    out.print_fields(fields(tenant))


@app.command("delete")
def delete(
    ctx: typer.Context, ref: Ref, url: Url = None, token: Token = None, json: Json = False
) -> None:
    """Delete a tenant without networks, and revoke its tokens (prints nothing with --json)."""
    s = session(ctx, url, token, json)
    s.client.delete_tenant(ref)
    if not s.json:
        out.print_line(f"deleted tenant {ref}")
