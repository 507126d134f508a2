"""Idempotent network changes over the `ip` command: each makes one named thing be so.

Rules: every call names its own objects (a namespace, an interface in a namespace); none lists
and matches by pattern, so nothing that is not the lab's is ever touched. "Already exists" is
success; "ensure" operations first look, then create only what is missing, and settings
(MTU, MAC, addresses, routes, sysctls) are written with `replace` semantics, so running a plan
twice changes nothing the second time. The process itself never changes namespace: `ip -n NS`
and `ip netns exec NS` do it in a child.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from typing import Any

from onm.errors import OnmError
from onm.lab.plan import Address, Bridge, End, Route, Veth

IP = "ip"
TIMEOUT = 30.0
"""Seconds any one `ip` command may take."""


class NetworkCommandError(OnmError):
    """An `ip` command failed for a reason other than "already so"."""


def _run(args: Sequence[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(args), input=stdin, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise NetworkCommandError(f"{args[0]}: command not found (install iproute2)") from None
    except subprocess.TimeoutExpired:
        raise NetworkCommandError(f"`{' '.join(args)}` took more than {TIMEOUT:g} s") from None


def _ip(namespace: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    prefix = [IP, "-n", namespace] if namespace else [IP]
    return _run([*prefix, *args])


def _check(result: subprocess.CompletedProcess[str]) -> str:
    if result.returncode != 0:
        reason = " ".join(result.stderr.split()) or f"exit status {result.returncode}"
        raise NetworkCommandError(f"`{' '.join(result.args)}` failed: {reason}")
    return result.stdout


# --- namespaces ------------------------------------------------------------------------------
def namespaces() -> set[str]:
    """The names of every network namespace `ip netns` knows."""
    out = _check(_ip(None, "-j", "netns", "list")).strip()
    return {entry["name"] for entry in json.loads(out)} if out else set()


def netns_exists(name: str) -> bool:
    return name in namespaces()


def ensure_netns(name: str) -> bool:
    """Make the namespace `name` exist; True if this call created it."""
    result = _ip(None, "netns", "add", name)
    if result.returncode != 0 and "File exists" in result.stderr:
        return False
    _check(result)
    return True


def delete_netns(name: str) -> bool:
    """Make the namespace `name` not exist; True if this call deleted it."""
    result = _ip(None, "netns", "delete", name)
    if result.returncode != 0 and "No such file" in result.stderr:
        return False
    _check(result)
    return True


def set_sysctl(namespace: str, key: str, value: int) -> None:
    """Write `key` (`net.ipv6.conf.all.forwarding`) inside `namespace`."""
    path = "/proc/sys/" + key.replace(".", "/")
    result = _run([IP, "netns", "exec", namespace, "tee", path], stdin=f"{value}\n")
    _check(result)


# --- links -----------------------------------------------------------------------------------
def link(namespace: str | None, name: str) -> dict[str, Any] | None:
    """`ip -d link show` of one interface as JSON, or None if there is none by that name."""
    result = _ip(namespace, "-j", "-d", "link", "show", "dev", name)
    if result.returncode != 0 and "does not exist" in result.stderr:
        return None
    found: list[dict[str, Any]] = json.loads(_check(result))
    return found[0] if found else None


def _kind(found: dict[str, Any]) -> str:
    return str(found.get("linkinfo", {}).get("info_kind", ""))


def _require_kind(namespace: str, name: str, found: dict[str, Any], kind: str) -> None:
    if _kind(found) != kind:
        raise NetworkCommandError(
            f"{name} in namespace {namespace} is a {_kind(found) or 'device'}, not a {kind}"
        )


def ensure_bridge(bridge: Bridge) -> None:
    """The bridge exists, multicast snooping off (so neighbour discovery is flooded), up."""
    found = link(bridge.namespace, bridge.name)
    if found is None:
        result = _ip(
            bridge.namespace,
            *("link", "add", bridge.name, "mtu", str(bridge.mtu)),
            *("type", "bridge", "mcast_snooping", "0"),
        )
        if not (result.returncode != 0 and "File exists" in result.stderr):
            _check(result)
    else:
        _require_kind(bridge.namespace, bridge.name, found, "bridge")
    _check(_ip(bridge.namespace, "link", "set", "dev", bridge.name, "mtu", str(bridge.mtu), "up"))


def ensure_veth(veth: Veth) -> None:
    """The pair exists with both ends named and in place, each configured as its `End` says.

    Both ends are made by one `ip link add`, so a pair is never half made. If only one end is
    found (its peer was renamed or moved away by someone), the lab's end is deleted, which takes
    the peer with it, and the pair is made again.
    """
    a, b = veth.a, veth.b
    found_a, found_b = link(a.namespace, a.name), link(b.namespace, b.name)
    for end, found in ((a, found_a), (b, found_b)):
        if found is not None:
            _require_kind(end.namespace, end.name, found, "veth")
    if found_a is None or found_b is None:
        for end, found in ((a, found_a), (b, found_b)):
            if found is not None:
                delete_link(end.namespace, end.name)
        _check(
            _ip(
                None,
                *("link", "add", a.name, "netns", a.namespace, "type", "veth"),
                *("peer", "name", b.name, "netns", b.namespace),
            )
        )
    configure(a)
    configure(b)


def configure(end: End) -> None:
    """Set the end's MTU, MAC and bridge, and bring it up."""
    args = ["link", "set", "dev", end.name, "mtu", str(end.mtu)]
    if end.mac is not None:
        args += ["address", end.mac]
    if end.master is not None:
        args += ["master", end.master]
    _check(_ip(end.namespace, *args, "up"))


def set_up(namespace: str, name: str) -> None:
    _check(_ip(namespace, "link", "set", "dev", name, "up"))


def delete_link(namespace: str | None, name: str) -> bool:
    """Make the interface `name` in `namespace` not exist; True if this call deleted it."""
    result = _ip(namespace, "link", "delete", "dev", name)
    if result.returncode != 0 and "Cannot find device" in result.stderr:
        return False
    _check(result)
    return True


# --- addresses and routes --------------------------------------------------------------------
def ensure_address(address: Address) -> None:
    """The address is on the device (IPv6 ones skip duplicate address detection)."""
    args = ["addr", "replace", str(address.address), "dev", address.device]
    if address.address.version == 6:
        args.append("nodad")
    _check(_ip(address.namespace, *args))


def ensure_route(route: Route) -> None:
    family = f"-{route.destination.version}"
    destination = "default" if route.destination.prefixlen == 0 else str(route.destination)
    _check(
        _ip(
            route.namespace,
            *(family, "route", "replace", destination),
            *("via", str(route.via), "dev", route.device),
        )
    )
