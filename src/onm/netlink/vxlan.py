"""A point-to-point VXLAN tunnel (RFC 7348) as data, and its netlink attributes.

What `Kernel.ensure_vxlan` makes: frames sent into the device leave as UDP datagrams from
`local` to `remote` (IPv6 or IPv4, both the same) over `device`, VNI `vni`; what arrives from
`remote` with that VNI comes out of it. The kernel's defaults are kept for the rest (learning,
UDP checksums over IPv6 on): it is the tunnel an operator gets from `ip link add ... type
vxlan` without options, the peer onm's datapaths are measured against (`make bench-datapath`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Final

from onm.errors import InvalidInputError

PORT: Final = 4789
"""The IANA-assigned VXLAN UDP port (RFC 7348 section 5)."""
VNI_BITS: Final = 24
"""Width of the VXLAN Network Identifier (RFC 7348 section 5)."""
OVERHEAD: Final = {4: 14 + 8 + 8 + 20, 6: 14 + 8 + 8 + 40}
"""Octets a tunnel adds to each inner IP packet, by outer IP version: the inner Ethernet
header, the VXLAN header, UDP and the outer IP header (RFC 7348 section 5)."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Vxlan:
    """One tunnel's settings; bad ones raise InvalidInputError naming the field."""

    vni: int
    local: IPAddress
    """This end's address (on `device` or another interface of the namespace)."""
    remote: IPAddress
    """The other end's address: every frame goes there (no multicast group)."""
    device: str
    """The interface the outer datagrams leave by."""
    port: int = PORT

    def __post_init__(self) -> None:
        if not 0 <= self.vni < 1 << VNI_BITS:
            raise InvalidInputError("vni", f"{self.vni} is not in 0..{(1 << VNI_BITS) - 1}")
        if not 0 < self.port < 1 << 16:
            raise InvalidInputError("port", f"{self.port} is not a UDP port (1..65535)")
        if self.local.version != self.remote.version:
            raise InvalidInputError(
                "remote", f"{self.remote} is IPv{self.remote.version}, local {self.local} is not"
            )
        if not self.device:
            raise InvalidInputError("device", "is empty")

    @property
    def overhead(self) -> int:
        """Octets the tunnel adds to each inner packet: inner MTU = device MTU - this."""
        return OVERHEAD[self.local.version]

    def attributes(self, link: int) -> dict[str, Any]:
        """pyroute2's IFLA_VXLAN_* keywords, `link` being `device`'s index."""
        family = "6" if self.local.version == 6 else ""
        return {
            "vxlan_id": self.vni,
            f"vxlan_local{family}": str(self.local),
            f"vxlan_group{family}": str(self.remote),
            "vxlan_link": link,
            "vxlan_port": self.port,
        }


def differences(have: Any, want: dict[str, Any]) -> list[str]:
    """The settings (`id`, `group6`, ...) in which the kernel's IFLA_INFO_DATA `have` differs
    from `want` (`Vxlan.attributes`); addresses are compared as addresses, not spellings."""

    def same(found: Any, value: Any) -> bool:
        if found is None:
            return False
        if isinstance(value, str):
            return bool(ipaddress.ip_address(found) == ipaddress.ip_address(value))
        return bool(found == value)

    return [
        key.removeprefix("vxlan_")
        for key, value in want.items()
        if not same(have.get_attr(f"IFLA_{key.upper()}"), value)
    ]
