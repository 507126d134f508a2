"""onm.netlink: neighbour, route and event messages decoded (bytes made by pyroute2's own
encoder, parsed by its rtnetlink marshal, as they come off a netlink socket; no kernel here)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from pyroute2.netlink.rtnl.marshal import MarshalRtnl
from pyroute2.netlink.rtnl.ndmsg import ndmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from onm.netlink.errors import KernelError
from onm.netlink.kernel import Neighbour, parse_neighbour, route_next_hop
from onm.netlink.neighbours import RoutesChanged, parse_events

RTM_NEWROUTE, RTM_DELROUTE, RTM_NEWNEIGH, RTM_DELNEIGH = 24, 25, 28, 29
"""include/uapi/linux/rtnetlink.h"""
REACHABLE, STALE, INCOMPLETE, FAILED = 0x02, 0x04, 0x01, 0x20
"""include/uapi/linux/neighbour.h"""
MAC = "92:c9:88:27:37:1f"
HOP = ipaddress.IPv6Address("fd00:ffff::2")


def _neigh(kind: int, state: int, lladdr: str | None = MAC, ifindex: int = 3) -> bytes:
    message = ndmsg()
    message["family"] = 10
    message["ifindex"] = ifindex
    message["state"] = state
    message["attrs"] = [("NDA_DST", str(HOP))] + ([("NDA_LLADDR", lladdr)] if lladdr else [])
    message["header"]["type"] = kind
    message.encode()
    return bytes(message.data)


def _route(kind: int, route_type: int = 1, oif: int = 3, gateway: str | None = None) -> bytes:
    message = rtmsg()
    message["family"] = 10
    message["type"] = route_type
    message["dst_len"] = 128
    message["attrs"] = [("RTA_DST", "fd00:b::9"), ("RTA_OIF", oif)] + (
        [("RTA_GATEWAY", gateway)] if gateway else []
    )
    message["header"]["type"] = kind
    message.encode()
    return bytes(message.data)


def _parse(data: bytes) -> list[Any]:
    return list(MarshalRtnl().parse(data))


@pytest.mark.parametrize(
    ("state", "lladdr", "mac"),
    [
        (REACHABLE, MAC, bytes.fromhex("92c98827371f")),
        (STALE, MAC, bytes.fromhex("92c98827371f")),
        (INCOMPLETE, None, None),
        (FAILED, MAC, None),
    ],
)
def test_neighbour_entry(state: int, lladdr: str | None, mac: bytes | None) -> None:
    [message] = _parse(_neigh(RTM_NEWNEIGH, state, lladdr))
    assert parse_neighbour(message) == Neighbour(3, HOP, mac)


def test_events_in_order_and_route_changes_once() -> None:
    data = (
        _neigh(RTM_NEWNEIGH, REACHABLE)
        + _route(RTM_NEWROUTE)
        + _route(RTM_DELROUTE)
        + _neigh(RTM_DELNEIGH, REACHABLE)
    )
    assert parse_events(_parse(data)) == [
        Neighbour(3, HOP, bytes.fromhex("92c98827371f")),
        RoutesChanged(),
        Neighbour(3, HOP, None),  # deleted: not usable whatever its state said
    ]


@pytest.mark.parametrize(
    ("data", "hop"),
    [
        (_route(RTM_NEWROUTE, gateway="fd00:ffff::2"), HOP),
        (_route(RTM_NEWROUTE), ipaddress.IPv6Address("fd00:b::9")),  # on-link
        (_route(RTM_NEWROUTE, oif=7), None),  # out of another interface: not ours to write
        (_route(RTM_NEWROUTE, route_type=6), None),  # blackhole
    ],
)
def test_route_next_hop(data: bytes, hop: ipaddress.IPv6Address | None) -> None:
    [message] = _parse(data)
    assert route_next_hop(message, 3, ipaddress.IPv6Address("fd00:b::9")) == hop


def test_errors_name_the_object_and_namespace_and_survive_pickling() -> None:
    import pickle

    error = KernelError("interface eth9", "onm-x-h-a", "no such device", errno=19)
    assert str(error) == "interface eth9 in network namespace 'onm-x-h-a': no such device"
    again = pickle.loads(pickle.dumps(error))
    assert (again.subject, again.netns, again.errno) == ("interface eth9", "onm-x-h-a", 19)
    assert "this network namespace" in str(KernelError("route", None, "x"))
