"""The `onm` command: one sub-command per noun of the system."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="onm: overlay network manager")
manager_app = typer.Typer(no_args_is_help=True, help="Run the system manager.")
app.add_typer(manager_app, name="manager")


@manager_app.command("serve")
def manager_serve(
    db: Annotated[
        str | None, typer.Option(help="Database URL (default: SQLite file in the state dir)")
    ] = None,
    listen: Annotated[str, typer.Option(help="HOST:PORT to listen on")] = "127.0.0.1:7700",
    state_dir: Annotated[Path, typer.Option(help="Where the database and admin token live")] = Path(
        "/var/lib/onm/manager"
    ),
) -> None:
    """Serve the REST API (and create the admin token on first start)."""
    from onm.manager.serve import serve

    serve(db, listen, state_dir)
