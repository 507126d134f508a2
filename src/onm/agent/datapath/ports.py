"""When to try attaching a node's port again, and when to say so in the log: pure bookkeeping.

A port is a node's host-side interface that the tables name. The datapath attaches it (opens a
packet socket on it) when it can; an interface that does not exist yet (a VM not started, a
namespace being made) or that vanished under an open socket is tried again later. Rules:

- A port that cannot be attached is tried again after `FIRST_RETRY` s, then at doubling
  intervals up to `MAX_RETRY` s, so a port that comes back is attached within `MAX_RETRY` s,
  and a snapshot arriving ten times a second does not cost ten attempts a second.
- It is logged when it is first found missing, then at most once every `LOG_EVERY` s (with
  the number of attempts since), and once more when it is finally attached.
- A port that leaves the tables is forgotten: nothing is kept or logged about it afterwards.

Time is a monotonic number of seconds passed in by the caller (`now`); nothing here reads a
clock or touches a socket.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, replace
from typing import Final

FIRST_RETRY: Final = 0.1
"""Seconds before the first new attempt: a vanished interface is often back at once."""
MAX_RETRY: Final = 2.0
"""Longest wait between two attempts: a port that comes back is attached within this."""
LOG_EVERY: Final = 60.0
"""Seconds between two log lines about the same missing port."""


@dataclass(frozen=True, slots=True)
class Missing:
    """A port the tables want that has no socket."""

    since: float
    """When it was first found missing."""
    attempts: int
    """Attempts that failed since it went missing."""
    retry_at: float
    """When to try again."""
    logged_at: float
    """When it was last logged (`since`: at once)."""
    logged_attempts: int
    """`attempts` when it was last logged."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to say about a port after an attempt (None: nothing, the log is rate-limited)."""

    log: bool
    attempts: int
    """Failed attempts since the port went missing (or since it was last logged)."""
    missing_for: float
    """Seconds since it went missing."""


class PortRetries:
    """The missing ports, with when to try each again and when to log about it."""

    def __init__(self) -> None:
        self._missing: dict[str, Missing] = {}

    def due(self, interface: str, now: float) -> bool:
        """Should an attempt to attach `interface` be made now?"""
        missing = self._missing.get(interface)
        return missing is None or now >= missing.retry_at

    def failed(self, interface: str, now: float) -> Verdict:
        """An attempt failed: when to try again, and whether to log it."""
        missing = self._missing.get(interface)
        if missing is None:
            self._missing[interface] = Missing(now, 1, now + FIRST_RETRY, now, 1)
            return Verdict(True, 1, 0.0)
        attempts = missing.attempts + 1
        wait = min(MAX_RETRY, FIRST_RETRY * 2 ** (attempts - 1))
        log = now - missing.logged_at >= LOG_EVERY
        updated = replace(missing, attempts=attempts, retry_at=now + wait)
        if log:
            updated = replace(updated, logged_at=now, logged_attempts=attempts)
        self._missing[interface] = updated
        return Verdict(log, attempts - missing.logged_attempts, now - missing.since)

    def lost(self, interface: str, now: float) -> None:
        """Its socket failed (or its interface vanished): try again soon, log when it is back."""
        self._missing[interface] = Missing(now, 0, now + FIRST_RETRY, now, 0)

    def attached(self, interface: str, now: float) -> Verdict | None:
        """It is attached: what to say if it had been missing (None if it never was)."""
        missing = self._missing.pop(interface, None)
        if missing is None:
            return None
        return Verdict(True, missing.attempts, now - missing.since)

    def keep_only(self, wanted: Set[str]) -> None:
        """Forget every port the tables no longer name."""
        for interface in [i for i in self._missing if i not in wanted]:
            del self._missing[interface]

    def next_retry(self) -> float | None:
        """The earliest time an attempt is due (None if no port is missing)."""
        return min((m.retry_at for m in self._missing.values()), default=None)

    def __contains__(self, interface: object) -> bool:
        return interface in self._missing

    def __len__(self) -> int:
        return len(self._missing)
