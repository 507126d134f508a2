"""The link-layer address of the next hop toward a substrate destination, as the kernel knows it.

The userspace datapath sends substrate packets through a packet socket, behind an Ethernet
header it writes: a TCP super-frame can leave no other way (a raw IPv6 socket knows no GSO), and
the kernel then neither routes nor filters each packet again. So the agent asks the kernel of
the host's namespace where a destination goes (`ip -6 route get`) and what MAC that next hop has
(`ip -6 neigh show`). Only a usable entry counts (not INCOMPLETE, FAILED, NONE); without one the
datapath sends through its raw socket (`onm.agent.io.raw6`), whose traffic makes the kernel
resolve the neighbour for the next time. The parsers are pure; `next_hop_mac` runs `ip` (in the
namespace by name, or through `nsenter` for a namespace path), never the agent itself.
`NextHops` keeps the answers per destination /64 and asks again in a thread of its own, so the
datapath never waits for `ip`: until an answer is there, it sends the slow way.
"""

from __future__ import annotations

import ipaddress
import json
import queue
import subprocess
import threading
import time
from typing import Final

from onm.packet.ethernet import parse_mac

TIMEOUT: Final = 2.0
"""Seconds one `ip` command may take."""
KEEP_FOR: Final = 10.0
"""Seconds a next hop's MAC is used before the kernel is asked again (meanwhile still used)."""
RETRY_AFTER: Final = 1.0
"""Seconds before the kernel is asked again about a next hop it did not know."""
USABLE_STATES: Final = frozenset({"REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT", "NOARP"})
"""Neighbour states whose link-layer address the kernel itself would send to (ip-neighbour(8))."""


def ip_argv(netns: str | None) -> list[str]:
    """`ip` run inside `netns`: a name under /run/netns, or a namespace file's path."""
    if netns is None:
        return ["ip"]
    if "/" in netns:
        return ["nsenter", f"--net={netns}", "ip"]
    return ["ip", "-n", netns]


def parse_route(output: str, interface: str) -> str | None:
    """The next hop in `ip -j -6 route get` output: its gateway, or the destination itself when
    on-link; None unless the route is a plain unicast one out of `interface`."""
    try:
        routes = json.loads(output)
        route = routes[0]
    except (ValueError, LookupError, TypeError):
        return None
    if not isinstance(route, dict) or route.get("dev") != interface:
        return None
    if route.get("type", "unicast") != "unicast":
        return None
    hop = route.get("gateway", route.get("dst"))
    return hop if isinstance(hop, str) else None


def parse_neighbour(output: str) -> bytes | None:
    """The MAC in `ip -j -6 neigh show` output, if its state is a usable one."""
    try:
        entries = json.loads(output)
    except ValueError:
        return None
    for entry in entries if isinstance(entries, list) else []:
        state = entry.get("state", []) if isinstance(entry, dict) else []
        lladdr = entry.get("lladdr") if isinstance(entry, dict) else None
        if isinstance(lladdr, str) and USABLE_STATES.intersection(state):
            try:
                return parse_mac(lladdr)
            except ValueError:
                return None
    return None


def next_hop_mac(destination: bytes, interface: str, netns: str | None) -> bytes | None:
    """The MAC the kernel of `netns` would send an IPv6 packet for `destination` to, out of
    `interface`; None when it has none (yet), or sends it elsewhere."""
    ip = ip_argv(netns)
    address = str(ipaddress.IPv6Address(destination))
    route = _run([*ip, "-j", "-6", "route", "get", address])
    hop = None if route is None else parse_route(route, interface)
    if hop is None:
        return None
    neighbour = _run([*ip, "-j", "-6", "neigh", "show", "to", hop, "dev", interface])
    return None if neighbour is None else parse_neighbour(neighbour)


def _run(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


class NextHops:
    """Ethernet headers toward substrate destinations, by /64 (every substrate route is a host's
    /64), looked up in the background: `ethernet_to` never blocks."""

    def __init__(self, interface: str, netns: str | None, source_mac: bytes) -> None:
        self.interface = interface
        self.netns = netns
        self._tail = source_mac + b"\x86\xdd"  # our MAC, then EtherType IPv6
        self._known: dict[bytes, tuple[bytes | None, float]] = {}
        self._asked: set[bytes] = set()
        self._wanted: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._work, name="onm-next-hops", daemon=True)
        self._worker.start()

    def ethernet_to(self, destination: bytes) -> bytes | None:
        """The Ethernet header for an IPv6 packet to `destination`, if known (a stale one is
        used while it is asked again); None: not known yet, asked for."""
        key = destination[:8]
        known = self._known.get(key)
        if (known is None or known[1] <= time.monotonic()) and key not in self._asked:
            self._asked.add(key)
            self._wanted.put(destination)
        return None if known is None else known[0]

    def close(self) -> None:
        self._wanted.put(None)

    def _work(self) -> None:
        while (destination := self._wanted.get()) is not None:
            mac = next_hop_mac(destination, self.interface, self.netns)
            header = None if mac is None else mac + self._tail
            refresh = time.monotonic() + (RETRY_AFTER if mac is None else KEEP_FOR)
            self._known[destination[:8]] = (header, refresh)
            self._asked.discard(destination[:8])
