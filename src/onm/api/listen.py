"""Where a server listens, as the operator writes it: `HOST:PORT` or `[V6]:PORT`.

Shared by the manager's API and metrics servers and the agent's metrics server, so it sits here
and not in the manager: an agent that parses its `--metrics` option loads no web server.
"""

from __future__ import annotations

from onm.errors import InvalidInputError

DEFAULT_HOST = "127.0.0.1"
"""The host of a listen address written `:PORT`: loopback, never every interface by default."""


def parse_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT` or `[V6]:PORT` -> (host, port); anything else is an InvalidInputError."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInputError("listen", f"{listen!r} is not HOST:PORT")
    return host.strip("[]") or DEFAULT_HOST, int(port)
