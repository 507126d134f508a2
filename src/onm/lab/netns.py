"""Idempotent network changes for the lab's plan, over netlink (`onm.netlink`).

Rules: every call names its own objects (a namespace, an interface in a namespace); none lists
and matches by pattern, so nothing that is not the lab's is ever touched. "Already exists" is
success; "ensure" operations first look, then create only what is missing, and settings
(MTU, MAC, addresses, routes, sysctls, delays) are written with replace semantics, so running a plan
twice changes nothing the second time. The process itself never changes namespace: a helper
child (`onm.netlink.helper`) enters each namespace and passes its netlink socket back, which
is kept (one per namespace, in this thread) until `close()` or the namespace's deletion.
"""

from __future__ import annotations

from typing import Final

from onm.lab.plan import Address, Bridge, Delays, End, MultipathRoute, Route, Veth
from onm.netlink import helper, kernel
from onm.netlink.errors import KernelError
from onm.netlink.kernel import Kernel, Link

MAIN_TABLE: Final = 254
"""The routing table `ip route` shows (RT_TABLE_MAIN, include/uapi/linux/rtnetlink.h)."""

_kernels: dict[str, Kernel] = {}
"""The open netlink view of each namespace this process has changed."""


def _kernel(namespace: str) -> Kernel:
    found = _kernels.get(namespace)
    if found is None:
        found = _kernels[namespace] = Kernel(namespace)
    return found


def _forget(namespace: str) -> None:
    """Close the namespace's socket: it would keep a deleted namespace alive."""
    found = _kernels.pop(namespace, None)
    if found is not None:
        found.close()


def close() -> None:
    """Close every namespace's socket (the next change opens it again)."""
    for namespace in list(_kernels):
        _forget(namespace)
    helper.close()


# --- namespaces ------------------------------------------------------------------------------
def namespaces() -> set[str]:
    """The names of every named network namespace (those `ip netns` lists)."""
    return kernel.namespaces()


def netns_exists(name: str) -> bool:
    return kernel.netns_exists(name)


def ensure_netns(name: str) -> bool:
    """Make the namespace `name` exist; True if this call created it."""
    return kernel.ensure_netns(name)


def delete_netns(name: str) -> bool:
    """Make the namespace `name` not exist; True if this call deleted it."""
    _forget(name)
    return kernel.delete_netns(name)


def set_sysctl(namespace: str, key: str, value: int) -> None:
    """Write `key` (`net.ipv6.conf.all.forwarding`) inside `namespace`."""
    kernel.ensure_sysctl(namespace, key, value)


def set_sysctls(namespace: str, settings: tuple[tuple[str, int], ...]) -> None:
    """Write each (key, value) inside `namespace`, in order, with one request."""
    kernel.ensure_sysctls(namespace, list(settings))


# --- links -----------------------------------------------------------------------------------
def link(namespace: str, name: str) -> Link | None:
    """The interface `name` in `namespace` (its index and kind), None if there is none."""
    return _kernel(namespace).link(name)


def ensure_bridge(bridge: Bridge) -> None:
    """The bridge exists, multicast snooping off (so neighbour discovery is flooded), up."""
    _kernel(bridge.namespace).ensure_bridge(bridge.name, bridge.mtu)


def ensure_veth(veth: Veth) -> None:
    """The pair exists with both ends named and in place, each configured as its `End` says.

    Both ends are made by one request, so a pair is never half made. If only one end is
    found (its peer was renamed or moved away by someone), the lab's end is deleted, which takes
    the peer with it, and the pair is made again.
    """
    a, b = veth.a, veth.b
    here, there = _kernel(a.namespace), _kernel(b.namespace)
    found_a, found_b = here.link(a.name), there.link(b.name)
    for end, found in ((a, found_a), (b, found_b)):
        if found is not None and found.kind != "veth":
            raise KernelError(
                f"interface {end.name}", end.namespace, f"is a {found.kind or 'device'}, not a veth"
            )
    if found_a is None or found_b is None:
        if found_a is not None:
            here.delete_link(a.name)
        if found_b is not None:
            there.delete_link(b.name)
        here.ensure_veth(a.name, b.name, b.namespace)
    configure(a)
    configure(b)


def configure(end: End) -> None:
    """Set the end's MTU, MAC and bridge, and bring it up."""
    _kernel(end.namespace).set_link(end.name, mtu=end.mtu, mac=end.mac, master=end.master)


def set_up(namespace: str, name: str) -> None:
    _kernel(namespace).set_link(name)


def delete_link(namespace: str, name: str) -> bool:
    """Make the interface `name` in `namespace` not exist; True if this call deleted it."""
    return _kernel(namespace).delete_link(name)


# --- addresses and routes --------------------------------------------------------------------
def ensure_address(address: Address) -> None:
    """The address is on the device (IPv6 ones skip duplicate address detection)."""
    _kernel(address.namespace).ensure_address(address.device, address.address)


def ensure_route(route: Route) -> None:
    """The route is in the namespace's main table: via its gateway, or on-link."""
    if route.via is None:
        _kernel(route.namespace).ensure_link_route(route.destination, route.device, MAIN_TABLE)
    else:
        _kernel(route.namespace).ensure_route(route.destination, route.via, route.device)


def ensure_multipath(route: MultipathRoute) -> None:
    """The route has one next hop per gateway host, of equal weight (ECMP)."""
    _kernel(route.namespace).ensure_multipath_route(route.destination, route.via, route.device)


# --- delays ----------------------------------------------------------------------------------
def ensure_delays(delays: Delays) -> None:
    """The device's qdisc tree delays each band's destinations by the band's delay."""
    bands = [(band.delay_us, band.destinations) for band in delays.bands]
    _kernel(delays.namespace).ensure_delays(delays.device, bands)
