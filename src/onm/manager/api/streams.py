"""The manager's long-lived answers: the host snapshot stream and the event stream, as SSE.

Theory of operation (issue #7: a frozen manager must be noticed within seconds, and a manager
told to stop must stop at once):

- A follower must tell "nothing happened" from "the manager is frozen" (SIGSTOP, a stuck
  disk, a dead host behind a live TCP stack). Every stream therefore writes a heartbeat, the SSE
  comment line `: heartbeat`, whenever HEARTBEAT seconds pass with nothing else written. A
  client reads with a short read timeout of a few heartbeats (`onm.api.client.STREAM_IDLE`)
  and takes silence past it for a manager that is gone.
- Why agents follow a snapshot *stream* and not a long poll with keep-alive bytes: a long poll's
  outcome (200 with a snapshot, 204 with none, or an error such as 404 when the host is deleted
  while it waits) is only known when it ends, and HTTP sends the status first, so bytes sent
  while waiting would have to be a body written before its status is decided. The stream
  answers 200 as soon as the caller is authenticated, then sends one `snapshot` event (`id:` its
  revision) each time the host's state changes past `after`, heartbeats in between, and an
  `error` event (status and message) when the host or the token goes away. The long poll
  (`GET /v1/hosts/{ref}/snapshot?after=N&wait=S`) stays for simple clients; it cannot carry a
  heartbeat, so its client waits `wait` plus its usual read timeout.
- Shutdown: once `stopping` is set (SIGTERM, SIGINT), streams end within one poll interval and
  long polls answer 204 ("nothing changed"), so the server's graceful shutdown finds no request
  left to cancel: no traceback, and the process exits in well under a second.

SSE framing follows the WHATWG HTML standard, "Server-sent events":
https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
(the writer and the reader are `onm.api.sse`).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable

from onm.api.sse import HEARTBEAT, HEARTBEAT_LINE, error_event
from onm.errors import OnmError

Poll = Callable[[], Awaitable[list[bytes]]]
"""One look at the database: the encoded events that are new since the last look."""


async def follow(
    poll: Poll,
    stopping: threading.Event,
    interval: float,
    heartbeat: float = HEARTBEAT,
) -> AsyncIterator[bytes]:
    """Poll every `interval` s and yield what is new; a heartbeat after `heartbeat` s of quiet.

    Ends with an error event when a poll fails (token revoked, host deleted), and without one
    when the manager is stopping (the client sees the stream close and reconnects elsewhere or
    later).
    """
    clock = asyncio.get_running_loop().time
    quiet_since = clock()
    while not stopping.is_set():
        try:
            chunks = await poll()
        except OnmError as error:
            yield error_event(error)
            return
        for chunk in chunks:
            yield chunk
        if chunks:
            quiet_since = clock()
            continue  # there may be more: look again at once
        if clock() - quiet_since >= heartbeat:
            yield HEARTBEAT_LINE
            quiet_since = clock()
        await asyncio.sleep(interval)
