"""The one error this package raises, on the onm error tree (`onm.errors`).

OnmError
 +-- KernelError    a netlink request (or a namespace, sysctl or ethtool change) failed;
                    names the object, the namespace and the kernel's reason
"""

from __future__ import annotations

from onm.errors import OnmError


def where(netns: str | None) -> str:
    """How a namespace is named in messages."""
    return "this network namespace" if netns is None else f"network namespace {netns!r}"


class KernelError(OnmError):
    """The kernel refused, or could not be asked, to read or change `subject` in `netns`.

    `errno` is the kernel's error number when it gave one (ENODEV, EEXIST, ...).
    """

    def __init__(
        self, subject: str, netns: str | None, reason: str, *, errno: int | None = None
    ) -> None:
        super().__init__(f"{subject} in {where(netns)}: {reason}")
        self.subject = subject
        self.netns = netns
        self.reason = reason
        self.errno = errno

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (self.subject, self.netns, self.reason, self.errno))


def _rebuild(subject: str, netns: str | None, reason: str, errno: int | None) -> KernelError:
    return KernelError(subject, netns, reason, errno=errno)
