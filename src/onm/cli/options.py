"""What every API command shares: the --url/--token/--json options, the client, error handling.

The three options are accepted both before the sub-command (`onm --json tenant list`, stored by
the root callback) and after it (`onm tenant list --json`); the one after wins. What neither
gives comes from the environment (`Client.from_env`). Every `OnmError` that escapes a command
is printed as one `error: ...` line on stderr and exits 1; usage errors keep typer's exit 2.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from onm.api.client import DEFAULT_URL, Client
from onm.errors import OnmError, UnauthorizedError

PANEL = "Connection and output"

Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        help=f"Manager URL (env ONM_URL, default {DEFAULT_URL}).",
        rich_help_panel=PANEL,
        show_default=False,
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="API token, or @FILE to read it from FILE (env ONM_TOKEN or ONM_TOKEN_FILE).",
        rich_help_panel=PANEL,
        show_default=False,
    ),
]
Json = Annotated[
    bool,
    typer.Option("--json", help="Print the API's JSON instead of tables.", rich_help_panel=PANEL),
]


@dataclass(frozen=True, slots=True)
class Globals:
    """The options given before the sub-command."""

    url: str | None = None
    token: str | None = None
    json: bool = False


@dataclass(frozen=True, slots=True)
class Session:
    client: Client
    json: bool
    """Print the API's JSON (True) or tables for people (False)."""


def session(ctx: typer.Context, url: str | None, token: str | None, json: bool) -> Session:
    """The client and output mode for one command, closed when the command ends."""
    root = ctx.find_object(Globals) or Globals()
    client = Client.from_env(url or root.url, token or root.token)
    ctx.call_on_close(client.close)
    if not client.token:
        raise UnauthorizedError(
            "no token: give --token TOKEN or --token @FILE, or set ONM_TOKEN or ONM_TOKEN_FILE"
        )
    return Session(client, json or root.json)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `error: message` as one line on stderr; raise the returned Exit."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    return typer.Exit(code)


class OnmGroup(TyperGroup):
    """The root command: turns the errors a user can act on into one line and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except OnmError as error:
            raise fail(error.message) from None
        except BrokenPipeError:  # the reader went away (`onm events -f | head`): stop quietly
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(1) from None
