"""The `onm` command: one sub-command per noun of the system, over the typed API client.

API commands take --url, --token and --json before or after the sub-command (see
`onm.cli.options`); errors are one `error: ...` line on stderr and exit 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from onm.cli import agent, edge, host, lab, network, node, observe, pool, rule, tenant
from onm.cli.options import Globals, Json, OnmGroup, Token, Url
from onm.model import resolution
from onm.model.resolution import MAX_TTL, MIN_TTL, RESOLUTION_TTL

app = typer.Typer(
    cls=OnmGroup,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold tokens
)


@app.callback()
def main(ctx: typer.Context, url: Url = None, token: Token = None, json: Json = False) -> None:
    """onm, the overlay network manager: tenant IPv4 networks over an IPv6 substrate."""
    ctx.obj = Globals(url, token, json)


OBJECTS, WATCH, SERVICES = "Objects", "Control plane", "Services"
app.add_typer(tenant.app, name="tenant", rich_help_panel=OBJECTS)
app.add_typer(network.app, name="network", rich_help_panel=OBJECTS)
app.add_typer(host.app, name="host", rich_help_panel=OBJECTS)
app.add_typer(node.app, name="node", rich_help_panel=OBJECTS)
app.add_typer(pool.app, name="pool", rich_help_panel=OBJECTS)
app.add_typer(edge.external_app, name="external", rich_help_panel=OBJECTS)
app.add_typer(edge.app, name="edge-pool", rich_help_panel=OBJECTS)
app.add_typer(edge.route_app, name="route", rich_help_panel=OBJECTS)
app.add_typer(rule.app, name="rule", rich_help_panel=OBJECTS)
app.command("resolve", rich_help_panel=WATCH)(observe.resolve)
app.command("status", rich_help_panel=WATCH)(observe.status)
app.command("events", rich_help_panel=WATCH)(observe.events)

manager_app = typer.Typer(no_args_is_help=True, help="Run the system manager.")
app.add_typer(manager_app, name="manager", rich_help_panel=SERVICES)
app.add_typer(lab.app, name="lab", rich_help_panel=SERVICES)
app.add_typer(agent.app, name="agent", rich_help_panel=SERVICES)


@app.command("demo", rich_help_panel=SERVICES)
def demo(
    keep: Annotated[
        bool, typer.Option("--keep", envvar="KEEP", help="Leave the lab up afterwards")
    ] = False,
    name: Annotated[
        str, typer.Option("--name", help="The lab's name (two demos at once need two names)")
    ] = "demo",
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="Where the lab keeps its state")
    ] = None,
) -> None:
    """Bring up the seed's FIG. 2A in the lab, send real traffic, and narrate it (as root)."""
    from onm.lab.demo import main as run_demo

    run_demo(keep, name, state_dir)


@manager_app.command("serve")
def manager_serve(
    db: Annotated[
        str | None, typer.Option(help="Database URL (default: SQLite file in the state dir)")
    ] = None,
    listen: Annotated[str, typer.Option(help="HOST:PORT to listen on")] = "127.0.0.1:7700",
    state_dir: Annotated[Path, typer.Option(help="Where the database and admin token live")] = Path(
        "/var/lib/onm/manager"
    ),
    accept_data_loss: Annotated[
        bool,
        typer.Option(
            help="Start even though the SQLite database lost acknowledged writes (a truncated"
            " write-ahead log); the loss is logged and recorded as an event"
        ),
    ] = False,
    rate: Annotated[
        list[str] | None,
        typer.Option(
            help="CLASS=PER_SECOND:BURST, a token bucket per token (read, write, resolve, sync)"
            " or per client address for failed authentications (auth); repeatable. Defaults:"
            " read=50:500 write=20:200 resolve=500:2000 sync=50:500 auth=0.333:20"
        ),
    ] = None,
    quota_networks: Annotated[int, typer.Option(help="Networks a tenant may hold")] = 100,
    quota_nodes: Annotated[int, typer.Option(help="Nodes a tenant may hold")] = 1000,
    metrics: Annotated[
        str | None, typer.Option(help="HOST:PORT to serve Prometheus metrics on (no auth)")
    ] = None,
    resolution_ttl: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            help="How long an answer to a resolution lives; agents ask again in its last"
            f" quarter ({MIN_TTL.total_seconds():g} to {MAX_TTL.total_seconds():g})",
        ),
    ] = RESOLUTION_TTL.total_seconds(),
) -> None:
    """Serve the REST API (and create the admin token on first start)."""
    from onm.manager.quota import Quotas
    from onm.manager.ratelimit import Limits, parse_rate
    from onm.manager.serve import serve

    ttl = resolution.ttl("--resolution-ttl", resolution_ttl)
    limits = Limits().with_rates(dict(parse_rate(r) for r in rate or ()))
    quotas = Quotas(networks=quota_networks, nodes=quota_nodes)
    serve(
        db,
        listen,
        state_dir,
        accept_data_loss,
        limits=limits,
        quotas=quotas,
        metrics_listen=metrics,
        resolution_ttl=ttl,
    )
