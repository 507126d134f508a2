"""One network namespace's kernel over netlink: links, veths, bridges, addresses, routes, and
the qdisc tree that delays traffic by destination (its shape: `onm.netlink.tc`), and VXLAN
tunnels (their settings: `onm.netlink.vxlan`).

`Kernel(netns)` opens its netlink socket on first use (`onm.netlink.helper`'s child makes it
inside the namespace and passes it back; the caller never moves) and keeps it until
`close()`: no fork per change. A socket is bound to the thread that made it
(pyroute2 0.9 runs an event loop per thread), so make and use a `Kernel` in one thread.

Rules (the lab's and the agent's): every call names its own objects; none lists and matches by
pattern. `ensure_*` first looks, then creates only what is missing, and settings (MTU, MAC,
addresses, routes) are written with replace semantics, so a second call changes nothing.
Namespaces themselves (`ensure_netns`, `delete_netns`) and sysctls (`ensure_sysctls`, written
by the helper child inside the namespace) are module functions.
"""

from __future__ import annotations

import errno as errnos
import ipaddress
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from pyroute2 import IPRoute
from pyroute2 import netns as pyroute2_netns
from pyroute2.netlink.exceptions import NetlinkError

from onm.netlink import helper, tc, vxlan
from onm.netlink.errors import KernelError
from onm.netlink.vxlan import Vxlan

IFA_F_NODAD: Final = 0x02
"""Skip duplicate address detection (include/uapi/linux/if_addr.h)."""
RTN_UNICAST: Final = 1
"""Route type of a plain unicast route (include/uapi/linux/rtnetlink.h, enum rtn_type)."""
RTN_BLACKHOLE: Final = 6
"""Route type that silently discards (rtnetlink.h)."""
RT_SCOPE_LINK: Final = 253
"""Scope of an on-link route, no gateway (rtnetlink.h, enum rt_scope_t)."""
NETLINK_ROUTE: Final = 0
"""netlink(7) protocol of the routing family."""
TC_H_ROOT: Final = 0xFFFF_FFFF
"""The parent of a device's root qdisc (include/uapi/linux/pkt_sched.h)."""
NETNS_RUN_DIR: Final = helper.NETNS_RUN_DIR

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


@dataclass(frozen=True, slots=True)
class Link:
    """What the kernel says about one interface."""

    index: int
    kind: str
    """`veth`, `bridge`, ... ("" for a device with no link kind, such as `lo`)."""


def _reason(error: BaseException) -> tuple[str, int | None]:
    if isinstance(error, NetlinkError):
        return os.strerror(error.code) if error.code else str(error), error.code
    if isinstance(error, OSError):
        return error.strerror or str(error), error.errno
    return f"{type(error).__name__}: {error}", None


def _error(subject: str, netns: str | None, error: BaseException) -> KernelError:
    reason, code = _reason(error)
    return KernelError(subject, netns, reason, errno=code)


RT_TABLE_MAIN: Final = 254
"""The main routing table (include/uapi/linux/rtnetlink.h)."""


class Kernel:
    """The netlink view of one network namespace (None: the caller's own)."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self._ipr: Any = None

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._ipr is not None:
            ipr, self._ipr = self._ipr, None
            ipr.close()

    def _call(self, subject: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """`IPRoute.method(*args, **kwargs)`, its failures as `KernelError` naming `subject`."""
        try:
            if self._ipr is None:
                sock = helper.socket_in(
                    self.netns, socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE, subject=subject
                )
                self._ipr = IPRoute(fileno=sock.detach())
            return getattr(self._ipr, method)(*args, **kwargs)
        except (NetlinkError, OSError, TimeoutError, RuntimeError) as error:
            raise _error(subject, self.netns, error) from error

    # --- links -------------------------------------------------------------------------------
    def link(self, name: str) -> Link | None:
        """The interface `name`, or None if there is none by that name."""
        try:
            [found] = self._call(f"interface {name}", "link", "get", ifname=name)
        except KernelError as error:
            if error.errno == errnos.ENODEV:
                return None
            raise
        info = found.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
        return Link(int(found["index"]), str(kind or ""))

    def index(self, name: str) -> int:
        """The index of the interface `name`; KernelError (ENODEV) if there is none."""
        found = self.link(name)
        if found is None:
            raise KernelError(
                f"interface {name}", self.netns, "no such device", errno=errnos.ENODEV
            )
        return found.index

    def _require_kind(self, name: str, found: Link, kind: str) -> None:
        if found.kind != kind:
            raise KernelError(
                f"interface {name}", self.netns, f"is a {found.kind or 'device'}, not a {kind}"
            )

    def set_link(
        self,
        name: str,
        *,
        mtu: int | None = None,
        mac: str | None = None,
        master: str | None = None,
        up: bool = True,
    ) -> None:
        """Set what is given of MTU, MAC and bridge, and bring the interface up."""
        settings: dict[str, Any] = {"index": self.index(name)}
        if mtu is not None:
            settings["mtu"] = mtu
        if mac is not None:
            settings["address"] = mac
        if master is not None:
            settings["master"] = self.index(master)
        if up:
            settings["state"] = "up"
        self._call(f"interface {name}", "link", "set", **settings)

    def delete_link(self, name: str) -> bool:
        """Make the interface `name` not exist; True if this call deleted it."""
        found = self.link(name)
        if found is None:
            return False
        try:
            self._call(f"interface {name}", "link", "del", index=found.index)
        except KernelError as error:
            if error.errno == errnos.ENODEV:
                return False
            raise
        return True

    def ensure_bridge(self, name: str, mtu: int) -> None:
        """The bridge exists, multicast snooping off (neighbour discovery is flooded), up."""
        found = self.link(name)
        if found is None:
            try:
                self._call(
                    f"bridge {name}",
                    "link",
                    "add",
                    ifname=name,
                    kind="bridge",
                    mtu=mtu,
                    br_mcast_snooping=0,
                )
            except KernelError as error:
                if error.errno != errnos.EEXIST:
                    raise
        else:
            self._require_kind(name, found, "bridge")
        self.set_link(name, mtu=mtu)

    def ensure_veth(self, name: str, peer: str, peer_netns: str) -> bool:
        """The veth `name` here with its peer `peer` in `peer_netns`; True if made now.

        Both ends are made by one request, so a pair is never half made. If only one end is
        found (its peer was renamed or moved away), the caller deletes it and asks again.
        """
        found = self.link(name)
        if found is not None:
            self._require_kind(name, found, "veth")
            return False
        self._call(
            f"veth {name} (peer {peer} in {peer_netns})",
            "link",
            "add",
            ifname=name,
            kind="veth",
            peer={"ifname": peer, "net_ns_fd": peer_netns},
        )
        return True

    def ensure_vxlan(self, name: str, tunnel: Vxlan) -> bool:
        """The VXLAN device `name` as `tunnel` says (down: the caller sets MTU and state);
        True if made now. One found with other settings is an error naming them, not changed:
        the kernel cannot change a VXLAN's VNI, ends or port in place."""
        found = self.link(name)
        if found is None:
            self._call(
                f"vxlan {name} (VNI {tunnel.vni} to {tunnel.remote})",
                "link",
                "add",
                ifname=name,
                kind="vxlan",
                **tunnel.attributes(self.index(tunnel.device)),
            )
            return True
        self._require_kind(name, found, "vxlan")
        [message] = self._call(f"interface {name}", "link", "get", index=found.index)
        have = message.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
        differ = vxlan.differences(have, tunnel.attributes(self.index(tunnel.device)))
        if differ:
            raise KernelError(f"vxlan {name}", self.netns, f"exists with other {', '.join(differ)}")
        return False

    # --- addresses and routes ----------------------------------------------------------------
    def ensure_address(self, device: str, address: IPInterface) -> None:
        """The address is on the device (IPv6 ones skip duplicate address detection)."""
        extra: dict[str, Any] = {"flags": IFA_F_NODAD} if address.version == 6 else {}
        self._call(
            f"address {address} on {device}",
            "addr",
            "replace",
            index=self.index(device),
            address=str(address.ip),
            prefixlen=address.network.prefixlen,
            **extra,
        )

    def delete_address(self, device: str, address: IPInterface) -> bool:
        """Make the address not be on the device; True if this call removed it."""
        if self.link(device) is None:
            return False
        try:
            self._call(
                f"address {address} on {device}",
                "addr",
                "del",
                index=self.index(device),
                address=str(address.ip),
                prefixlen=address.network.prefixlen,
            )
        except KernelError as error:
            if error.errno == errnos.EADDRNOTAVAIL:
                return False
            raise
        return True

    def ensure_route(self, destination: IPNetwork, via: IPAddress, device: str) -> None:
        """The route to `destination` goes via `via` out of `device` (replacing any other)."""
        self._call(
            f"route to {destination} via {via}",
            "route",
            "replace",
            family=_family(destination.version),
            dst=str(destination.network_address),
            dst_len=destination.prefixlen,
            gateway=str(via),
            oif=self.index(device),
        )

    def ensure_multipath_route(
        self, destination: IPNetwork, via: Sequence[IPAddress], device: str
    ) -> None:
        """The route to `destination` has one next hop per address in `via`, each out of
        `device`, of equal weight (ECMP: the kernel hashes each flow onto one of them),
        replacing any other route to it."""
        index = self.index(device)
        self._call(
            f"multipath route to {destination}",
            "route",
            "replace",
            family=_family(destination.version),
            dst=str(destination.network_address),
            dst_len=destination.prefixlen,
            multipath=[{"gateway": str(hop), "oif": index} for hop in via],
        )

    def route_next_hops(self, destination: IPNetwork) -> list[IPAddress]:
        """The next hops of the main table's route to exactly `destination` (several for a
        multipath route, one for a plain one, none if there is no such route)."""
        routes = self._call(
            f"routes to {destination}",
            "route",
            "dump",
            family=_family(destination.version),
            table=RT_TABLE_MAIN,
            dst=str(destination.network_address),
            dst_len=destination.prefixlen,
        )
        hops: list[IPAddress] = []
        for route in routes:
            if route.get("dst_len") != destination.prefixlen:
                continue
            if attr(route, "RTA_DST") != str(destination.network_address):
                continue
            gateway = attr(route, "RTA_GATEWAY")
            if gateway is not None:
                hops.append(ipaddress.ip_address(gateway))
            for hop in attr(route, "RTA_MULTIPATH") or ():
                found = hop.get_attr("RTA_GATEWAY")
                if found is not None:
                    hops.append(ipaddress.ip_address(found))
        return hops

    def ensure_blackhole(self, destination: IPNetwork) -> None:
        """What arrives for `destination` is discarded without an answer."""
        self._call(
            f"blackhole route {destination}",
            "route",
            "replace",
            family=_family(destination.version),
            dst=str(destination.network_address),
            dst_len=destination.prefixlen,
            type=RTN_BLACKHOLE,
        )

    def ensure_link_route(self, destination: IPNetwork, device: str, table: int) -> None:
        """In routing table `table`, `destination` is on-link out of `device` (replacing any
        other route to it there)."""
        self._call(
            f"route to {destination} dev {device} in table {table}",
            "route",
            "replace",
            family=_family(destination.version),
            dst=str(destination.network_address),
            dst_len=destination.prefixlen,
            oif=self.index(device),
            table=table,
            scope=RT_SCOPE_LINK,
        )

    def ensure_fwmark_rule(self, version: int, mark: int, table: int, priority: int) -> None:
        """The policy rule `priority: fwmark MARK lookup TABLE` exists (the whole mark must
        match). An identical rule is success (the kernel answers EEXIST)."""
        try:
            self._call(
                f"rule fwmark {mark:#x} lookup {table}",
                "rule",
                "add",
                family=_family(version),
                fwmark=mark,
                fwmask=0xFFFF_FFFF,
                table=table,
                priority=priority,
            )
        except KernelError as error:
            if error.errno != errnos.EEXIST:
                raise

    def delete_fwmark_rule(self, version: int, mark: int, table: int, priority: int) -> bool:
        """Make that rule not exist; True if this call deleted it."""
        try:
            self._call(
                f"rule fwmark {mark:#x} lookup {table}",
                "rule",
                "del",
                family=_family(version),
                fwmark=mark,
                fwmask=0xFFFF_FFFF,
                table=table,
                priority=priority,
            )
        except KernelError as error:
            if error.errno == errnos.ENOENT:
                return False
            raise
        return True

    def next_hop(self, destination: IPAddress, device: str) -> IPAddress | None:
        """Where the kernel sends a packet for `destination`: its gateway, or the destination
        itself when on-link; None unless that is a plain unicast route out of `device`."""
        try:
            routes = self._call(
                f"route to {destination}",
                "route",
                "get",
                family=_family(destination.version),
                dst=str(destination),
            )
            index = self.link(device)
        except KernelError:
            return None
        if not routes or index is None:
            return None
        return route_next_hop(routes[0], index.index, destination)

    def neighbour(self, address: IPAddress, device: str) -> bytes | None:
        """The link-layer address the kernel has for `address` on `device`, if usable."""
        try:
            found = self.link(device)
            if found is None:
                return None
            entries = self._call(
                f"neighbour {address} on {device}",
                "get_neighbours",
                family=_family(address.version),
                dst=str(address),
                ifindex=found.index,
            )
        except KernelError:
            return None
        for entry in entries:
            neighbour = parse_neighbour(entry)
            if neighbour is not None and neighbour.address == address:
                return neighbour.mac
        return None

    # --- delays by destination (traffic control) -------------------------------------------
    def ensure_delays(
        self, device: str, bands: Sequence[tuple[int, Sequence[ipaddress.IPv6Network]]]
    ) -> None:
        """IPv6 packets leaving `device` toward a network of band i wait band i's delay
        (microseconds, one way); everything else leaves at once. The whole tree is ours:
        what an earlier call made and this one does not want is removed."""
        classes = self.ensure_delay_classes(device, [networks for _, networks in bands])
        for band, ((delay_us, _), classid) in enumerate(zip(bands, classes, strict=True)):
            self.ensure_netem(device, classid, tc.band_leaf(band), delay_us)

    def ensure_delay_classes(
        self, device: str, bands: Sequence[Sequence[ipaddress.IPv6Network]]
    ) -> tuple[int, ...]:
        """The htb root on `device`, one class per band and a u32 filter sending IPv6
        packets toward each of a band's networks to its class; the classes, in band order.
        Classes and filters no band asks for any more are deleted."""
        index = self.index(device)
        subject = f"delay classes on {device}"
        if self._root_qdisc(index) != ("htb", tc.ROOT):  # htb has no "change": look first
            self._call(subject, "tc", "replace", "htb", index=index, handle=tc.ROOT, default=0)
        present = self._delay_filters(index)
        classes: list[int] = []
        wanted: set[int] = set()
        for band, networks in enumerate(bands):
            classid = tc.band_class(band)
            self._call(
                f"delay class {classid >> 16:x}:{classid & 0xFFFF:x} on {device}",
                "tc",
                "replace-class",
                "htb",
                index=index,
                handle=classid,
                parent=tc.ROOT,
                rate=tc.BAND_RATE,
                quantum=tc.BAND_QUANTUM,
            )
            classes.append(classid)
            for network in networks:
                handle = tc.filter_handle(len(wanted))
                wanted.add(handle)
                keys = tc.destination_keys(network)
                found = present.get(handle)
                if found == (keys, classid):
                    continue
                if found is not None:  # a filter's keys cannot be replaced, only its class
                    self._call(subject, "tc", "del-filter", "u32", **self._filter(index, handle))
                self._call(
                    f"delay filter for {network} on {device}",
                    "tc",
                    "add-filter",
                    "u32",
                    **self._filter(index, handle, classid),
                    keys=[key.notation() for key in keys],
                )
        for handle in present.keys() - wanted:
            self._call(subject, "tc", "del-filter", "u32", **self._filter(index, handle))
        for message in self._call(subject, "get_classes", index=index):
            classid = int(message["handle"])
            if classid >> 16 == tc.ROOT >> 16 and classid not in classes:
                self._call(subject, "tc", "del-class", index=index, handle=classid)
        return tuple(classes)

    def _delay_filters(self, index: int) -> dict[int, tuple[tuple[tc.U32Key, ...], int]]:
        """Our u32 filters on the root: handle -> (keys, class)."""
        found: dict[int, tuple[tuple[tc.U32Key, ...], int]] = {}
        for message in self._call("delay filters", "get_filters", index=index, parent=tc.ROOT):
            handle = int(message["handle"])
            options = message.get_attr("TCA_OPTIONS")
            if not tc.is_filter_node(handle) or options is None:
                continue
            selector = options.get_attr("TCA_U32_SEL")
            classid = options.get_attr("TCA_U32_CLASSID")
            keys: tuple[tc.U32Key, ...] = ()
            if selector is not None:  # pyroute2 decodes the keys 4 bytes off: read the bytes
                raw = bytes(selector.data[selector.offset : selector.offset + selector.length])
                keys = tc.parse_selector(raw)
            found[handle] = (keys, int(classid or 0))
        return found

    def ensure_netem(self, device: str, parent: int, handle: int, delay_us: int) -> None:
        """A netem qdisc `handle` under class `parent` of `device`, delaying by `delay_us`."""
        try:
            self._call(
                f"netem delay of {delay_us} us on {device}",
                "tc",
                "replace",
                "netem",
                index=self.index(device),
                parent=parent,
                handle=handle,
                delay=delay_us,
            )
        except KernelError as error:
            if error.errno == errnos.ENOENT:  # "Specified qdisc kind is unknown"
                raise KernelError(
                    error.subject,
                    self.netns,
                    "this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM, module sch_netem)",
                    errno=error.errno,
                ) from error
            raise

    def _root_qdisc(self, index: int) -> tuple[str, int] | None:
        """The root qdisc's kind and handle (None: none is reported)."""
        for message in self._call("root qdisc", "get_qdiscs", index=index):
            if int(message["parent"]) == TC_H_ROOT:
                return str(message.get_attr("TCA_KIND") or ""), int(message["handle"])
        return None

    @staticmethod
    def _filter(index: int, handle: int, target: int = 0) -> dict[str, Any]:
        """What names one of our filters (pyroute2 packs protocol and preference into
        `info`, and reads `target`, the class, even when deleting)."""
        return {
            "index": index,
            "parent": tc.ROOT,
            "prio": tc.FILTER_PREFERENCE,
            "protocol": tc.ETH_P_IPV6,
            "handle": handle,
            "target": target,
        }


def _family(version: int) -> int:
    return socket.AF_INET6 if version == 6 else socket.AF_INET


# --- messages (pure) -----------------------------------------------------------------------------
NUD_USABLE: Final = 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80
"""Neighbour states whose address the kernel itself would send to: REACHABLE, STALE, DELAY,
PROBE, NOARP, PERMANENT (include/uapi/linux/neighbour.h); not INCOMPLETE, FAILED, NONE."""


@dataclass(frozen=True, slots=True)
class Neighbour:
    """One neighbour entry (or event) as the kernel reports it."""

    ifindex: int
    address: IPAddress
    mac: bytes | None
    """None: the entry is not usable (incomplete, failed, or deleted)."""


def attr(message: Any, name: str) -> Any:
    """The value of attribute `name` of a pyroute2 message, None when absent."""
    return message.get_attr(name)


def parse_neighbour(message: Any, *, deleted: bool = False) -> Neighbour | None:
    """An RTM_NEWNEIGH/RTM_DELNEIGH message as a `Neighbour`; None if it names no IP."""
    try:
        address = ipaddress.ip_address(attr(message, "NDA_DST"))
        ifindex = int(message["ifindex"])
        state = int(message["state"])
    except (TypeError, ValueError, KeyError):
        return None
    lladdr = attr(message, "NDA_LLADDR")
    mac: bytes | None = None
    if not deleted and state & NUD_USABLE and isinstance(lladdr, str):
        try:
            mac = bytes.fromhex(lladdr.replace(":", ""))
        except ValueError:
            mac = None
        if mac is not None and len(mac) != 6:
            mac = None
    return Neighbour(ifindex, address, mac)


def route_next_hop(message: Any, ifindex: int, destination: IPAddress) -> IPAddress | None:
    """The next hop of an RTM_NEWROUTE answer to a route query (see `Kernel.next_hop`)."""
    try:
        if int(message["type"]) != RTN_UNICAST or attr(message, "RTA_OIF") != ifindex:
            return None
        gateway = attr(message, "RTA_GATEWAY")
        return destination if gateway is None else ipaddress.ip_address(gateway)
    except (TypeError, ValueError, KeyError):
        return None


# --- namespaces and sysctls ----------------------------------------------------------------------
def namespaces() -> set[str]:
    """The names of every named network namespace (those under /run/netns)."""
    return set(pyroute2_netns.listnetns(NETNS_RUN_DIR))


def netns_exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_RUN_DIR, name))


def ensure_netns(name: str) -> bool:
    """Make the namespace `name` exist; True if this call created it."""
    if netns_exists(name):
        return False
    try:
        helper.create_netns(name)
    except KernelError as error:
        if error.errno == errnos.EEXIST:
            return False
        raise
    if not netns_exists(name):
        raise KernelError("namespace", name, "was not created")
    return True


def delete_netns(name: str) -> bool:
    """Make the namespace `name` not exist; True if this call deleted it."""
    try:
        pyroute2_netns.remove(name)
    except FileNotFoundError:
        return False
    except OSError as error:
        raise _error("namespace", name, error) from error
    return True


def ensure_sysctls(netns: str, settings: list[tuple[str, int]]) -> None:
    """Write each key (`net.ipv6.conf.all.forwarding`) = value inside `netns`, in order."""
    if settings:
        helper.write_sysctls(netns, settings)


def ensure_sysctl(netns: str, key: str, value: int) -> None:
    """Write one key (`net.ipv6.conf.all.forwarding`) inside `netns`."""
    ensure_sysctls(netns, [(key, value)])
