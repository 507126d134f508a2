"""Errors of the agent's I/O adapters, on the one onm error tree (`onm.errors`).

    OnmError
     +-- NamespaceError           a network namespace could not be entered, or work done inside
     |                            one failed (the helper child's error text is in the message)
     +-- OffloadError             an interface's offloads could not be read or changed
     +-- NotFoundError
          +-- InterfaceNotFoundError   no interface of that name (in that namespace)

Per-packet outcomes (a full queue, no route) are never exceptions: the send and receive helpers
return them as values and count them.
"""

from __future__ import annotations

from onm.errors import NotFoundError, OnmError


class NamespaceError(OnmError):
    """A network namespace could not be entered, or the work done inside it failed.

    `netns` names the namespace. When the failure happened in the helper child, `remote_type`
    is the name of the exception class raised there and `__cause__` is that exception itself
    whenever it could be carried back (pickled) to the parent.
    """

    def __init__(self, netns: str, reason: str, *, remote_type: str | None = None) -> None:
        super().__init__(f"network namespace {netns!r}: {reason}")
        self.netns = netns
        self.reason = reason
        self.remote_type = remote_type

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_namespace_error, (self.netns, self.reason, self.remote_type))


def _rebuild_namespace_error(netns: str, reason: str, remote_type: str | None) -> NamespaceError:
    return NamespaceError(netns, reason, remote_type=remote_type)


class InterfaceNotFoundError(NotFoundError):
    """No network interface called `ifname` exists (in namespace `netns`, when one is given)."""

    def __init__(self, ifname: str, netns: str | None = None) -> None:
        where = "this network namespace" if netns is None else f"network namespace {netns!r}"
        super().__init__(f"no interface {ifname!r} in {where}")
        self.ifname = ifname
        self.netns = netns

    def __reduce__(self) -> tuple[object, ...]:
        return (InterfaceNotFoundError, (self.ifname, self.netns))


class OffloadError(OnmError):
    """The kernel refused to read or change an interface's offload settings."""
