"""`onm rule`: an edge pool's firewall rules (issue #10; seed 1).

- `onm rule add --edge-pool egress --direction egress --proto tcp --port 25 --action deny`
  (also `--remote CIDR`, `--port 1000-2000`, `--position N`: 1 is evaluated first; default last).
- `onm rule list --edge-pool egress`; `onm rule delete --edge-pool egress RULE_ID`.

A pool's rules are evaluated in order, the first match wins; no match: egress allowed, ingress
dropped unless it is to a public IP. What each rule matched is counted on every gateway (the
agent's metric `onm_agent_gateway_rule_packets_total{rule=RULE_ID}`); `list` shows the sum over
the pool's gateways (PACKETS: packets of the new connections it matched).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer

from onm.api.schemas import DefaultCountOut, EdgeRuleCountedOut
from onm.cli import output as out
from onm.cli.options import Json, Token, Url, session

app = typer.Typer(no_args_is_help=True, help="Firewall rules of edge pools.")

Pool = Annotated[
    str,
    typer.Option("--edge-pool", help="Edge pool name, NETWORK/NAME, or id.", show_default=False),
]


def ports_text(ports: Sequence[int] | None) -> str:
    if not ports:
        return "any"
    low, high = ports
    return str(low) if low == high else f"{low}-{high}"


def rules_table(rules: Sequence[EdgeRuleCountedOut]) -> None:
    grid = out.table("#", "DIRECTION", "PROTO", "PORTS", "REMOTE", "ACTION", "PACKETS", "ID")
    for r in rules:
        cells = [r.position, r.direction, r.proto, ports_text(r.ports), r.remote or "any"]
        out.add_row(grid, [*cells, r.action, r.packets, r.id])
    out.print_table(grid, "no rules (egress allowed, unsolicited ingress dropped)")


def defaults_table(defaults: Sequence[DefaultCountOut]) -> None:
    """What no rule matched, per default verdict (or drop), summed over the gateways."""
    grid = out.table("DEFAULT", "PACKETS")
    for d in defaults:
        out.add_row(grid, [d.verdict, d.packets])
    out.print_table(grid, "no default verdicts counted yet")


@app.command("add")
def add(
    ctx: typer.Context,
    pool: Pool,
    direction: Annotated[
        str, typer.Option(help="egress | ingress: who opens the connection.", show_default=False)
    ],
    action: Annotated[str, typer.Option(help="allow | deny", show_default=False)],
    proto: Annotated[str, typer.Option(help="any | tcp | udp | icmp")] = "any",
    port: Annotated[
        str | None,
        typer.Option(help="Destination port or LOW-HIGH (tcp and udp only) [any]."),
    ] = None,
    remote: Annotated[str | None, typer.Option(help="The external side's IPv4 CIDR [any].")] = None,
    position: Annotated[
        int | None, typer.Option(help="Where it goes: 1 is evaluated first [last].")
    ] = None,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Add a firewall rule to an edge pool."""
    s = session(ctx, url, token, json)
    made = s.client.add_rule(pool, direction, action, proto, port, remote, position)
    if s.json:
        out.print_json(made)
        return
    out.print_line(f"added rule {made.id} at position {made.position} of edge pool {pool}")
    rules_table(s.client.list_rules(pool))


@app.command("list")
def list_(
    ctx: typer.Context, pool: Pool, url: Url = None, token: Token = None, json: Json = False
) -> None:
    """List an edge pool's rules in evaluation order."""
    s = session(ctx, url, token, json)
    found = s.client.list_rules(pool)
    if s.json:
        out.print_json(found)
        return
    rules_table(found)


@app.command("delete")
def delete(
    ctx: typer.Context,
    rule_id: Annotated[str, typer.Argument(help="The rule's id.", show_default=False)],
    pool: Pool,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Delete a rule (the ones after it move up; prints nothing with --json)."""
    s = session(ctx, url, token, json)
    s.client.delete_rule(pool, rule_id)
    if not s.json:
        out.print_line(f"deleted rule {rule_id}")
