"""Reading and changing an interface's offloads (GRO, GSO, TSO, checksums).

Over the SIOCETHTOOL ioctl (`onm.netlink.features`), issued on a socket opened inside the
namespace, so a name under /run/netns and a namespace path both work. `Offloads(netns)` keeps
that socket: turning GRO on for each port the datapath attaches costs no fork.

Where this is going: with PACKET_VNET_HDR (SOL_PACKET option 15, packet(7); set before bind)
every frame read from or written to a packet socket is preceded by a 10-byte
struct virtio_net_hdr (include/uapi/linux/virtio_net.h, native byte order):

    u8 flags         VIRTIO_NET_HDR_F_NEEDS_CSUM (1): checksum from csum_start still to do
    u8 gso_type      NONE 0, TCPV4 1, UDP 3, TCPV6 4, | ECN 0x80
    u16 hdr_len      bytes of headers (Ethernet + IP + TCP) in front of the payload
    u16 gso_size     payload bytes per segment (the MSS)
    u16 csum_start   where checksumming starts, from the start of the frame
    u16 csum_offset  where the checksum goes, from csum_start

Received, a GRO-built frame (up to 64 KiB) arrives whole with gso_type/gso_size saying how it
was merged; sent, such a frame is cut into segments by the kernel (software GSO, or TSO on the
device), so Python handles one header per 64 KiB instead of per 1.5 KiB. That needs GRO on the
receiving interface (veth has it off by default), a large `bufsize` in `recv_batch`, and the
datapath translating headers once per super-frame while keeping gso_type consistent with the
new IP version (TCPV4 <-> TCPV6).
"""

from __future__ import annotations

from onm.agent.io.errors import OffloadError
from onm.agent.io.interfaces import check_ifname
from onm.netlink.errors import KernelError
from onm.netlink.features import Features, legacy_changes


class Offloads:
    """The offloads of one namespace's interfaces (None: the agent's own namespace)."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self._features = Features(netns)

    def close(self) -> None:
        self._features.close()

    def get(self, ifname: str) -> dict[str, bool]:
        """Every feature `ethtool -k` lists for `ifname`, by its long name
        ("generic-receive-offload", "tcp-segmentation-offload", "tx-checksumming", ...)."""
        try:
            return self._features.get(check_ifname(ifname))
        except KernelError as error:
            raise OffloadError(str(error)) from error

    def set(
        self,
        ifname: str,
        *,
        gro: bool | None = None,
        gso: bool | None = None,
        tso: bool | None = None,
        sg: bool | None = None,
        tx_checksumming: bool | None = None,
        rx_checksumming: bool | None = None,
    ) -> dict[str, bool]:
        """Turn the named offloads on (True) or off (False); None leaves one as it is.

        Returns the features afterwards, as `get`. OffloadError if the kernel refuses (a
        "[fixed]" feature, an unknown interface), naming the interface and namespace.
        """
        changes = legacy_changes(
            {
                "gro": gro,
                "gso": gso,
                "tso": tso,
                "sg": sg,
                "tx_checksumming": tx_checksumming,
                "rx_checksumming": rx_checksumming,
            }
        )
        try:
            return self._features.set(check_ifname(ifname), changes)
        except KernelError as error:
            raise OffloadError(str(error)) from error


def get_offloads(ifname: str, *, netns: str | None = None) -> dict[str, bool]:
    """`Offloads(netns).get(ifname)`, for one look."""
    offloads = Offloads(netns)
    try:
        return offloads.get(ifname)
    finally:
        offloads.close()


def set_offloads(
    ifname: str, *, netns: str | None = None, gro: bool | None = None
) -> dict[str, bool]:
    """`Offloads(netns).set(ifname, gro=...)`, for one change."""
    offloads = Offloads(netns)
    try:
        return offloads.set(ifname, gro=gro)
    finally:
        offloads.close()
