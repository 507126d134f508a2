"""Server-sent events (the manager's event and snapshot streams): the writer and a sans-IO reader.

The manager writes with `encode`; clients read with `SseDecoder`. Lines go in (without their
line terminator), complete events and comments come out. The rules are those of the WHATWG HTML
standard, "Interpreting an event stream":
https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

- a blank line dispatches the event gathered so far; nothing is dispatched if it has no data;
- a line starting with `:` is a comment; the manager's heartbeats are comments
  (`HEARTBEAT_LINE`), so the decoder hands them out as `Comment` for a reader that
  wants to know the stream is alive;
- `field: value` (one space after the colon is dropped) sets `event` or `id`, or appends a line
  to `data`; a line without a colon is a field with an empty value; other fields are ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from onm.errors import OnmError

DEFAULT_EVENT = "message"
HEARTBEAT = 1.0
"""Seconds a stream may stay silent before the manager writes a heartbeat comment."""
HEARTBEAT_LINE = b": heartbeat\n\n"
ERROR_EVENT = "error"
"""The event a stream ends with when it cannot go on; data: {"status": ..., "message": ...}."""
SNAPSHOT_EVENT = "snapshot"
"""One host snapshot (data: the SnapshotOut JSON; id: its revision)."""


def encode(event: str, data: str, id: int | None = None) -> bytes:
    """One server-sent event; `data` must be a single line (JSON is)."""
    head = "" if id is None else f"id: {id}\n"
    return f"{head}event: {event}\ndata: {data}\n\n".encode()


def error_event(error: OnmError) -> bytes:
    """The `error` event a stream ends with; the client raises it again from its status."""
    return encode(ERROR_EVENT, json.dumps({"status": error.http_status, "message": error.message}))


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    event: str
    """The `event:` field, or "message" when the event had none."""
    data: str
    """The `data:` lines joined by newlines."""
    id: str | None
    """The last `id:` seen on the stream so far (it carries over between events)."""


@dataclass(frozen=True, slots=True)
class Comment:
    text: str
    """What follows the `:` (one leading space dropped), e.g. "heartbeat"."""


class SseDecoder:
    """Feed it lines; it answers a blank line with the event it completes, a comment with itself."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._last_id: str | None = None

    def feed(self, line: str) -> ServerSentEvent | Comment | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return Comment(line[1:].removeprefix(" "))
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return ServerSentEvent(event or DEFAULT_EVENT, "\n".join(data), self._last_id)
