"""`onm tenant`: create, list, show and delete tenants, and set their quotas (admin token; a
tenant sees itself, with its quotas and what it holds against them)."""

from __future__ import annotations

from typing import Annotated

import typer

from onm.api.schemas import TenantDetail, TenantOut
from onm.cli import output as out
from onm.cli.options import Json, Token, Url, session
from onm.errors import InvalidInputError
from onm.model.tenant import MAX_QUOTA, QuotaKind, check_quota

app = typer.Typer(no_args_is_help=True, help="Tenants: who owns networks.")

Ref = Annotated[str, typer.Argument(help="Tenant name or id.", show_default=False)]
DEFAULT = "default"
"""What `--max-networks` / `--max-nodes` take to put a quota back on the manager's default."""
LIMIT_HELP = f"0 to {MAX_QUOTA}, or `{DEFAULT}` for the manager's default (--quota-{{}})."


def fields(tenant: TenantOut) -> list[tuple[str, object]]:
    return [("name", tenant.name), ("id", tenant.id), ("created", out.when(tenant.created_at))]


def limit_of(option: str, text: str) -> int | None:
    """A `--max-*` value: a limit, or None for `default`; else the error naming the option."""
    if text.strip().lower() == DEFAULT:
        return None
    try:
        value = int(text.strip(), 10)
    except ValueError:
        value = -1
    try:
        return check_quota(option, value)
    except InvalidInputError:
        reason = f"must be a whole number from 0 to {MAX_QUOTA}, or `{DEFAULT}`: not {text!r}"
        raise InvalidInputError(option, reason) from None


def print_detail(tenant: TenantDetail) -> None:
    """The tenant's fields, a table of its quotas, and a line for each quota it is over."""
    out.print_fields(fields(tenant))
    out.print_line("")
    grid = out.table("QUOTA", "LIMIT", "SOURCE", "USED")
    for name, use in tenant.quotas.items():
        out.add_row(grid, [name, use.limit, use.source, use.used])
    out.print_table(grid, "no quotas")
    for name, use in tenant.quotas.items():
        if use.over:
            out.print_line(
                f"note: tenant {tenant.name} holds {use.used} {name}, over its limit of "
                f"{use.limit}: they stay, but no new {name} are accepted until it is under"
            )


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
    print_detail(tenant)


@app.command("set")
def set_(
    ctx: typer.Context,
    ref: Ref,
    max_networks: Annotated[
        str | None,
        typer.Option(
            "--max-networks",
            metavar="N|default",
            help="Networks it may hold: " + LIMIT_HELP.format("networks"),
        ),
    ] = None,
    max_nodes: Annotated[
        str | None,
        typer.Option(
            "--max-nodes",
            metavar="N|default",
            help="Nodes it may hold: " + LIMIT_HELP.format("nodes"),
        ),
    ] = None,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Set a tenant's own quotas (admin token); quotas not given keep theirs.

    A limit below what the tenant holds is accepted: its objects stay, new ones are refused.
    """
    given = {QuotaKind.NETWORKS: max_networks, QuotaKind.NODES: max_nodes}
    changes = {
        kind.value: limit_of(f"--max-{kind}", text)
        for kind, text in given.items()
        if text is not None
    }
    if not changes:
        raise InvalidInputError("quotas", "nothing to set: give --max-networks and/or --max-nodes")
    s = session(ctx, url, token, json)
    tenant = s.client.set_tenant_quotas(ref, changes)
    if s.json:
        out.print_json(tenant)
        return
    out.print_line(f"set quotas of tenant {tenant.name}")
    print_detail(tenant)


@app.command("delete")
def delete(
    ctx: typer.Context, ref: Ref, url: Url = None, token: Token = None, json: Json = False
) -> None:
    """Delete a tenant without networks, and revoke its tokens (prints nothing with --json)."""
    s = session(ctx, url, token, json)
    s.client.delete_tenant(ref)
    if not s.json:
        out.print_line(f"deleted tenant {ref}")
