"""Reading and changing an interface's ethtool features (GRO, GSO, TSO, checksums).

The SIOCETHTOOL ioctl (pyroute2's `IoctlEthtool`) acts in the namespace of the socket it is
issued on, so `Features(netns)` opens one datagram socket inside the namespace
(`onm.netlink.helper`) and then costs no fork per interface. Names are ethtool's: the
legacy offload flags ("generic-receive-offload", "tcp-segmentation-offload", ...) and every
kernel feature string ("rx-gro-list", "tx-udp-segmentation", ...), as `ethtool -k` lists them.
"""

from __future__ import annotations

import socket
from typing import Any, Final

from pyroute2.ethtool.ioctl import EthtoolError, IoctlEthtool, NoSuchDevice

from onm.netlink import helper
from onm.netlink.errors import KernelError

LEGACY_FLAGS: Final = {
    "gro": "generic-receive-offload",
    "gso": "generic-segmentation-offload",
    "tso": "tcp-segmentation-offload",
    "sg": "scatter-gather",
    "tx_checksumming": "tx-checksumming",
    "rx_checksumming": "rx-checksumming",
}
"""Our keyword -> ethtool's long name of the offload flag (ethtool(8), "Features")."""


def legacy_changes(wanted: dict[str, bool | None]) -> dict[str, bool]:
    """The flags to write for keyword settings (None: leave as is); KeyError names a bad one."""
    return {LEGACY_FLAGS[key]: value for key, value in wanted.items() if value is not None}


class Features:
    """ethtool features of the interfaces of one namespace (None: the caller's own)."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self._ethtool: Any = None

    def close(self) -> None:
        if self._ethtool is not None:
            ethtool, self._ethtool = self._ethtool, None
            ethtool.close()

    def _open(self, ifname: str) -> Any:
        if self._ethtool is None:
            try:
                sock = helper.socket_in(
                    self.netns, socket.AF_INET, socket.SOCK_DGRAM, subject=f"features of {ifname}"
                )
            except OSError as error:
                raise KernelError(f"features of {ifname}", self.netns, _text(error)) from error
            ethtool = IoctlEthtool()
            ethtool.sock.close()
            ethtool.sock = sock
            self._ethtool = ethtool
        self._ethtool.change_ifname(ifname)
        return self._ethtool

    def get(self, ifname: str) -> dict[str, bool]:
        """Every feature of `ifname`, on (True) or off, by ethtool's name."""
        try:
            ethtool = self._open(ifname)
            found: dict[str, bool] = {
                str(name): bool(active) for name, active, *_rest in ethtool.get_features()
            }
            found.update((str(k), bool(v)) for k, v in ethtool.get_offload_flags().items())
        except (EthtoolError, OSError) as error:
            raise KernelError(f"features of {ifname}", self.netns, _text(error)) from error
        return found

    def set(self, ifname: str, changes: dict[str, bool]) -> dict[str, bool]:
        """Write the legacy offload flags in `changes`; the features afterwards (as `get`)."""
        try:
            ethtool = self._open(ifname)
            for name, value in changes.items():
                ethtool.set_offload_flag(name, int(value))
        except (EthtoolError, OSError, ValueError) as error:
            raise KernelError(f"features of {ifname}", self.netns, _text(error)) from error
        return self.get(ifname)


def _text(error: BaseException) -> str:
    if isinstance(error, NoSuchDevice):
        return "no such device"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return f"{type(error).__name__} {error}".replace("\0", "").strip()
