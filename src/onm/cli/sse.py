"""A sans-IO decoder of server-sent events (the manager's `/v1/events/stream`).

Lines go in (without their line terminator), complete events come out. The rules are those of
the WHATWG HTML standard, "Interpreting an event stream":
https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation

- a blank line dispatches the event gathered so far; nothing is dispatched if it has no data;
- a line starting with `:` is a comment (the manager's keep-alives);
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


class SseDecoder:
    """Feed it lines; it answers each blank line with the event it completes, if any."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._last_id: str | None = None

    def feed(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
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
