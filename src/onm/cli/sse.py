"""A sans-IO decoder of server-sent events (the manager's event and snapshot streams).

Lines go in (without their line terminator), complete events and comments come out. The rules
are those of the WHATWG HTML standard, "Interpreting an event stream":
https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

- a blank line dispatches the event gathered so far; nothing is dispatched if it has no data;
- a line starting with `:` is a comment; the manager's heartbeats are comments
  (`onm.manager.api.streams`), so the decoder hands them out as `Comment` for a reader that
  wants to know the stream is alive;
- `field: value` (one space after the colon is dropped) sets `event` or `id`, or appends a line
  to `data`; a line without a colon is a field with an empty value; other fields are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_EVENT = "message"


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
