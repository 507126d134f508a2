"""`onm resolve`, `onm status` and `onm events`: asking and watching the control plane."""

from __future__ import annotations

import json as jsonlib
from typing import Annotated

import typer

from onm.api.client import dump
from onm.api.schemas import EventOut, HostStatusOut
from onm.cli import output as out
from onm.cli.options import Json, Token, Url, session


def resolve(
    ctx: typer.Context,
    ip: Annotated[str, typer.Argument(help="The IPv4 address to resolve.", show_default=False)],
    network: Annotated[
        str, typer.Option(help="Network (name, TENANT/NAME or id).", show_default=False)
    ],
    requester: Annotated[
        str,
        typer.Option(
            "--from", help="The node asking (name or id, in --network).", show_default=False
        ),
    ],
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Resolve IP in a network on behalf of a node, as its agent does when the node ARPs."""
    s = session(ctx, url, token, json)
    answer = s.client.resolve(network, requester, ip)
    if s.json:
        out.print_json(answer)
        return
    out.print_fields(
        [
            ("ip", answer.target_ip),
            ("node", answer.target_id),
            ("substrate address", answer.substrate_address),
            ("mac", answer.mac),
            ("expires", out.when(answer.expires_at)),
            ("network", answer.network_id),
            ("requester", answer.requester_id),
        ]
    )


def _state(host: HostStatusOut) -> tuple[str, str | None]:
    """Words and style for a host's row: silent is worse than lagging."""
    words = [w for w, on in (("lagging", host.lagging), ("silent", host.silent)) if on]
    style = "red" if host.silent else "yellow" if host.lagging else None
    return ", ".join(words) or "ok", style


def status(ctx: typer.Context, url: Url = None, token: Token = None, json: Json = False) -> None:
    """Show the current revision and how far each host has applied it (admin token).

    Hosts that lag behind the revision meant for them, or that have not reported lately, are
    highlighted. The exit code is 0 either way: this shows, it does not judge.
    """
    s = session(ctx, url, token, json)
    current = s.client.status()
    if s.json:
        out.print_json(current)
        return
    out.print_line(f"revision {current.revision}")
    if not current.hosts:
        out.print_line("no hosts")
        return
    grid = out.table("HOST", "DESIRED", "APPLIED", "STATE", "LAST REPORT")
    for host in current.hosts:
        state, style = _state(host)
        cells = [host.host, host.desired_revision, host.applied_revision, state]
        out.add_row(grid, [*cells, out.when(host.last_report_at)], style)
    out.print_table(grid, "no hosts")
    behind = sum(1 for h in current.hosts if h.lagging or h.silent)
    total = len(current.hosts)
    if behind:
        out.print_line(f"{behind} of {total} hosts lag or are silent")
    else:
        out.print_line(f"all {total} hosts are up to date")


def _line(event: EventOut, as_json: bool) -> str:
    if as_json:
        return jsonlib.dumps(dump(event), ensure_ascii=False)
    return "  ".join(
        [
            f"{event.seq:>6}",
            out.when(event.at),
            event.actor,
            event.kind,
            event.object_id,
            out.details(event.data),
        ]
    )


def events(
    ctx: typer.Context,
    limit: Annotated[
        int, typer.Option("--limit", "-n", help="How many events (the latest, unless --after).")
    ] = 20,
    after: Annotated[
        int | None, typer.Option(help="Only events after this sequence number, oldest first.")
    ] = None,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Then print new events as they happen, until Ctrl-C."),
    ] = False,
    url: Url = None,
    token: Token = None,
    json: Json = False,
) -> None:
    """Show events: every change, who made it and at which revision.

    With --follow, events are printed one per line (with --json: one JSON object per line) and
    new ones follow as they happen; Ctrl-C ends it.
    """
    s = session(ctx, url, token, json)
    if not follow:
        found = s.client.events(after, limit)
        if s.json:
            out.print_json(found)
            return
        grid = out.table("SEQ", "REV", "AT", "ACTOR", "KIND", "OBJECT", "DETAILS")
        for e in found:
            cells = [e.seq, e.revision, out.when(e.at), e.actor, e.kind, e.object_id]
            out.add_row(grid, [*cells, out.details(e.data)])
        out.print_table(grid, "no events")
        return
    try:
        start = after
        if start is None:  # the latest few first, then what comes after them
            backlog = s.client.events(None, limit)
            for event in backlog:
                out.print_line(_line(event, s.json))
            start = backlog[-1].seq if backlog else 0
        for event in s.client.stream_events(start):
            out.print_line(_line(event, s.json))
    except KeyboardInterrupt:
        return
