"""How long the agent waits before it tries the manager again: capped, jittered, reset on success.

Pure: the caller counts failures in a row (0 after a success) and passes a random number in
[0, 1), so the schedule is tested without a clock or a random generator.

- The wait doubles from FIRST up to CAP; issue #7 asks that an agent reconnect within 2 s of
  the manager's return, so CAP is 1 s (plus the time to connect and receive a snapshot). A
  refused connection costs the manager nothing (the kernel answers it), and one attempt per
  second per agent is little even for a manager that is coming back.
- Jitter takes a random share of up to JITTER off each wait, so agents that lost the manager
  together do not all come back in the same instant.
"""

from __future__ import annotations

from dataclasses import dataclass

FIRST = 0.25
CAP = 1.0
JITTER = 0.5
_MAX_DOUBLINGS = 32  # 2**32 * FIRST is far past any cap; keeps the power finite


@dataclass(frozen=True, slots=True)
class Backoff:
    first: float = FIRST
    """The wait after the first failure (before jitter)."""
    cap: float = CAP
    """The longest wait (before jitter)."""
    jitter: float = JITTER
    """The largest share of a wait that jitter takes off (0: none, 1: all of it)."""

    def delay(self, failures: int, rand: float) -> float:
        """The wait after `failures` failures in a row (1, 2, ...); `rand` is in [0, 1)."""
        doublings = min(max(failures - 1, 0), _MAX_DOUBLINGS)
        wait: float = min(self.cap, self.first * 2.0**doublings)
        return wait * (1 - self.jitter * rand)
