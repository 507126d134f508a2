"""Reading and changing an interface's offloads (GRO, GSO, TSO, checksums) with `ethtool`.

Exploration for the userspace datapath, kept small. `ethtool` is run in a helper child that has
entered the namespace (`onm.agent.io.netns`), so a name under /run/netns and a namespace path
both work; the Makefile installs the Debian package.

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

import functools
import shutil
import subprocess

from onm.agent.io.errors import OffloadError
from onm.agent.io.interfaces import check_ifname
from onm.agent.io.netns import run_in_netns_value

ETHTOOL_FEATURES = {
    "gro": "gro",
    "gso": "gso",
    "tso": "tso",
    "sg": "sg",
    "tx_checksumming": "tx",
    "rx_checksumming": "rx",
}
"""Our keyword -> the short name `ethtool -K` takes (ethtool(8), "Features")."""

ETHTOOL_TIMEOUT = 10.0
"""Seconds one ethtool run may take."""


def get_offloads(ifname: str, *, netns: str | None = None) -> dict[str, bool]:
    """Every feature `ethtool -k` lists for `ifname`, by its long name
    ("generic-receive-offload", "tcp-segmentation-offload", "tx-checksumming", ...)."""
    output = _ethtool(netns, ["-k", check_ifname(ifname)])
    return parse_features(output)


def set_offloads(
    ifname: str,
    *,
    netns: str | None = None,
    gro: bool | None = None,
    gso: bool | None = None,
    tso: bool | None = None,
    sg: bool | None = None,
    tx_checksumming: bool | None = None,
    rx_checksumming: bool | None = None,
) -> dict[str, bool]:
    """Turn the named offloads on (True) or off (False); None leaves one as it is.

    Returns the features afterwards, as `get_offloads`. OffloadError if ethtool refuses (a
    "[fixed]" feature, an unknown interface).
    """
    wanted = {
        "gro": gro,
        "gso": gso,
        "tso": tso,
        "sg": sg,
        "tx_checksumming": tx_checksumming,
        "rx_checksumming": rx_checksumming,
    }
    args = ["-K", check_ifname(ifname)]
    for key, value in wanted.items():
        if value is not None:
            args += [ETHTOOL_FEATURES[key], "on" if value else "off"]
    if len(args) > 2:
        _ethtool(netns, args)
    return get_offloads(ifname, netns=netns)


def parse_features(output: str) -> dict[str, bool]:
    """`ethtool -k` output ("name: on [fixed]" lines after a "Features for X:" title) as a dict."""
    features: dict[str, bool] = {}
    for line in output.splitlines():
        name, colon, state = line.strip().partition(":")
        words = state.split()
        if colon and words and words[0] in ("on", "off"):
            features[name] = words[0] == "on"
    return features


def _ethtool(netns: str | None, args: list[str]) -> str:
    binary = shutil.which("ethtool")
    if binary is None:
        raise OffloadError("ethtool is not installed (Debian package ethtool)")
    done = run_in_netns_value(
        netns, functools.partial(_run, [binary, *args]), timeout=ETHTOOL_TIMEOUT + 5
    )
    if done.returncode != 0:
        text = (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
        raise OffloadError(f"ethtool {' '.join(args)}: {text}")
    return done.stdout


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, timeout=ETHTOOL_TIMEOUT, check=False
    )
