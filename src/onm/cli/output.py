"""How commands print: rich tables for people, the API's JSON for scripts.

Tables go to stdout through rich, which leaves colours out when stdout is not a terminal; there
they are also laid out wide so that ids and addresses never wrap. Cell text is never read as
rich markup. `--json` prints exactly the API's answer, indented, and nothing else.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import typer
from pydantic import BaseModel
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from onm.api.client import dump
from onm.errors import OnmError

WIDE = 240
"""Columns to lay tables out in when stdout is not a terminal (and COLUMNS is not set)."""


def console() -> Console:
    out = Console(highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = Console(highlight=False, width=WIDE)
    return out


def print_json(value: BaseModel | Sequence[BaseModel]) -> None:
    typer.echo(json.dumps(dump(value), indent=2, ensure_ascii=False))


def print_line(text: str) -> None:
    """A plain line on stdout (never read as markup)."""
    typer.echo(text)


def table(*columns: str) -> Table:
    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold", pad_edge=False)
    for column in columns:
        grid.add_column(column, overflow="fold")
    return grid


def add_row(grid: Table, cells: Iterable[object], style: str | None = None) -> None:
    grid.add_row(*(Text(str(cell)) for cell in cells), style=style)


def print_table(grid: Table, empty: str) -> None:
    """The table, or the line `empty` when it has no rows."""
    if grid.row_count:
        console().print(grid)
    else:
        print_line(empty)


def print_fields(pairs: Sequence[tuple[str, object]]) -> None:
    """One object as `key  value` lines."""
    grid = Table(box=None, show_header=False, pad_edge=False)
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for key, value in pairs:
        grid.add_row(Text(key), Text(str(value)))
    console().print(grid)


def when(value: dt.datetime | None) -> str:
    """A time in UTC to the second, or "never"."""
    if value is None:
        return "never"
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def details(data: Mapping[str, Any]) -> str:
    """An event's data as `key=value` words (lists joined by commas)."""
    words = []
    for key, value in data.items():
        if isinstance(value, list):
            text = ",".join(str(v) for v in value)
        elif isinstance(value, str):
            text = value
        else:
            text = json.dumps(value)
        words.append(f"{key}={text}")
    return " ".join(words)


class Named(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...


def names(fetch: Callable[[], Sequence[Named]]) -> dict[str, str]:
    """id -> name of what `fetch` lists, to show names instead of ids; {} if it may not list."""
    try:
        return {item.id: item.name for item in fetch()}
    except OnmError:
        return {}
