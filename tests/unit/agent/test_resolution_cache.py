"""onm.agent.resolution: timers and bounds, driven by `now` alone (no sleeps, no sockets).

The world is `support.agent_world` (a on host r asks about g, 10.0.0.3, on host s); the flood
tests use a node of a /16 network so that thousands of distinct addresses are its to ask about.
"""

from __future__ import annotations

import datetime as dt
import ipaddress

from scapy.all import IP, UDP, Ether, raw

from onm.agent.actions import Resolve, ToNode, ToSubstrate
from onm.agent.core import AgentCore
from onm.agent.counters import Event
from onm.agent.resolution import (
    ARP_WAIT,
    MAX_PENDING,
    MAX_REFUSED,
    MAX_RESOLUTIONS,
    NEGATIVE_FOR,
    RETRY_AFTER,
    STALE_REVIEW,
)
from onm.manager import hosts, networks, nodes, tenants
from onm.manager.store import Store
from onm.model import Resolution
from onm.model.principal import ADMIN
from onm.packet.drop import DropReason
from onm.packet.ethernet import format_mac
from support.agent_world import MTU, NOW, Lab, arp_request, lab, only, ping_frame, resolve_via_arp

__all__ = ["lab"]  # the fixture, used by name

SECOND = dt.timedelta(seconds=1)


def _ask(lab: Lab, target: str, now: dt.datetime = NOW) -> Resolve:
    a = lab.nodes["a"]
    [ask] = lab.r.node_frame(a.interface, arp_request(lab, "a", target), now)
    assert isinstance(ask, Resolve)
    return ask


def _expiry(lab: Lab) -> dt.datetime:
    mapping = lab.r.resolver.mapping(lab.nodes["a"].interface, bytes((10, 0, 0, 3)))
    assert mapping is not None
    return mapping.expires_at


def _ping_g(lab: Lab, g_mac: str, now: dt.datetime) -> list[object]:
    frame = ping_frame(lab, "a", g_mac, "10.0.0.3")
    return list(lab.r.node_frame(lab.nodes["a"].interface, frame, now))


# --- timers --------------------------------------------------------------------------------------


def test_nothing_waits_without_a_question() -> None:
    core = AgentCore(MTU)
    assert core.next_timer() is None
    assert core.on_timer(NOW) == []


def test_a_refusal_is_forgotten_at_its_time(lab: Lab) -> None:
    ask = _ask(lab, "10.0.0.99")
    assert lab.r.resolved(ask, None, NOW) == []
    assert lab.r.next_timer() == NOW + NEGATIVE_FOR
    assert lab.r.resolver.sizes[2] == 1
    assert lab.r.on_timer(NOW + NEGATIVE_FOR - SECOND) == []
    assert lab.r.resolver.sizes[2] == 1
    assert lab.r.on_timer(NOW + NEGATIVE_FOR) == []
    assert lab.r.resolver.sizes == (0, 0, 0) and lab.r.next_timer() is None
    assert isinstance(_ask(lab, "10.0.0.99", NOW + NEGATIVE_FOR), Resolve)  # asked again


def test_a_waiting_arp_is_asked_again_by_the_timer_after_a_failure(lab: Lab) -> None:
    ask = _ask(lab, "10.0.0.3")
    assert lab.r.resolve_failed(ask, NOW) == []
    assert lab.r.next_timer() == NOW + RETRY_AFTER
    assert lab.r.on_timer(NOW + RETRY_AFTER - dt.timedelta(milliseconds=1)) == []
    [again] = lab.r.on_timer(NOW + RETRY_AFTER)
    assert again == ask
    assert lab.r.counters.events[Event.ASKS_RETRIED] == 1
    [reply] = only(lab.r.resolved(again, lab.answer("r", again), NOW + RETRY_AFTER), ToNode)
    assert reply.interface == lab.nodes["a"].interface  # the node's request is answered


def test_arp_requests_that_waited_too_long_are_dropped(lab: Lab) -> None:
    ask = _ask(lab, "10.0.0.3")  # the manager never answers
    retries = []
    now = NOW
    while lab.r.next_timer() is not None:
        now = lab.r.next_timer() or now
        retries += lab.r.on_timer(now)
    assert retries == [ask, ask]  # at 1 s and 2 s; at 3 s the request is too old
    assert now == NOW + ARP_WAIT
    assert lab.r.counters.events[Event.ARP_REQUESTS_EXPIRED] == 1
    assert lab.r.resolver.sizes == (0, 0, 0)
    # The answer, late, is still learnt: the node's next request is answered from the cache.
    assert lab.r.resolved(ask, lab.answer("r", ask), now) == []
    assert resolve_via_arp(lab, "r", "a", "10.0.0.3") == lab.nodes["g"].mac


def test_a_pending_ask_with_no_arp_waiting_is_forgotten(lab: Lab) -> None:
    [ask] = _ping_g(lab, lab.nodes["g"].mac, NOW)  # not resolved: dropped, asked
    assert isinstance(ask, Resolve) and lab.r.resolver.sizes[1] == 1
    assert lab.r.on_timer(NOW + RETRY_AFTER) == []
    assert lab.r.resolver.sizes[1] == 0


def test_an_idle_resolution_expires_while_the_manager_answers(lab: Lab) -> None:
    g_mac = resolve_via_arp(lab, "r", "a", "10.0.0.3")
    expiry = _expiry(lab)
    assert lab.r.next_timer() == expiry
    assert lab.r.on_timer(expiry - SECOND) == []
    assert only(_ping_g(lab, g_mac, expiry - dt.timedelta(seconds=80)), ToSubstrate)
    assert lab.r.on_timer(expiry) == []
    assert lab.r.counters.events[Event.CACHE_EXPIRED] == 1
    [ask] = _ping_g(lab, g_mac, expiry)
    assert isinstance(ask, Resolve)
    assert lab.r.counters.drops[DropReason.NO_MAPPING] == 1


def test_an_expired_resolution_is_kept_while_the_manager_is_unreachable(lab: Lab) -> None:
    g_mac = resolve_via_arp(lab, "r", "a", "10.0.0.3")
    expiry = _expiry(lab)
    refresh = [x for x in _ping_g(lab, g_mac, expiry - SECOND) if isinstance(x, Resolve)]
    assert lab.r.resolve_failed(refresh[0], expiry - SECOND) == []  # the manager is away
    for step in range(10):  # an hour and more later: still forwarding (static stability)
        now = expiry + step * STALE_REVIEW
        lab.r.on_timer(now)
        assert any(isinstance(x, ToSubstrate) for x in _ping_g(lab, g_mac, now))
    assert lab.r.counters.events[Event.CACHE_EXPIRED] == 0
    assert lab.r.next_timer() is not None
    # The manager answers again (here: refuses something else); the stale entry then goes.
    other = _ask(lab, "10.0.0.99", now)
    lab.r.resolved(other, None, now)
    while (due := lab.r.next_timer()) is not None and due <= now + STALE_REVIEW:
        lab.r.on_timer(due)
    assert lab.r.counters.events[Event.CACHE_EXPIRED] == 1


def test_a_restarted_agent_keeps_its_granted_resolutions_until_the_manager_answers(
    lab: Lab,
) -> None:
    g_mac = resolve_via_arp(lab, "r", "a", "10.0.0.3")
    expiry = _expiry(lab)
    lab.r = AgentCore(MTU)
    lab.snapshot("r")  # the grant comes back with the (saved) snapshot
    assert lab.r.next_timer() == expiry
    lab.r.on_timer(expiry + dt.timedelta(hours=1))
    assert any(isinstance(x, ToSubstrate) for x in _ping_g(lab, g_mac, expiry))


def test_a_gateway_arp_counts_one_answer(lab: Lab) -> None:
    resolve_via_arp(lab, "r", "a", "10.0.0.1")
    assert lab.r.counters.events[Event.ARP_ANSWERS] == 1  # was counted twice


# --- bounds --------------------------------------------------------------------------------------


def _wide() -> tuple[AgentCore, str, Resolve]:
    """A core on host r with one node, w1 (10.8.0.2), in a /16 network; and one of its asks."""
    store = Store("sqlite://")
    store.migrate()
    with store.write(ADMIN, NOW) as tx:
        tenants.create(tx, "w")
        hosts.create(tx, "r", "fd00:0:101:101::/64")
        networks.create(tx, "w", "wide", ["10.8.0.0/16"])
        node = nodes.create(tx, "w1", "w/wide", "r", "10.8.0.2")
    lab = Lab(store, {"w1": node}, {}, AgentCore(MTU), AgentCore(MTU))
    lab.snapshot("r")
    [ask] = lab.r.node_frame(node.interface, arp_request(lab, "w1", "10.8.0.3"), NOW)
    assert isinstance(ask, Resolve)
    return lab.r, node.interface, ask


def _address(i: int) -> bytes:
    return (ipaddress.IPv4Address("10.8.0.10") + i).packed


def test_a_flood_of_refused_addresses_keeps_the_negative_cache_bounded() -> None:
    core, _interface, ask = _wide()
    for i in range(MAX_REFUSED + 500):
        core.resolved(
            Resolve(ask.network_id, ask.requester_id, ask.interface, _address(i)), None, NOW
        )
    assert core.resolver.sizes[2] == MAX_REFUSED
    assert core.counters.events[Event.REFUSED_EVICTED] == 500
    assert core.on_timer(NOW + NEGATIVE_FOR) == []
    assert core.resolver.sizes == (0, 0, 0)


def test_a_scan_keeps_the_pending_table_bounded() -> None:
    core, interface, _ask = _wide()
    port = core.tables.ports[interface]
    source = ipaddress.IPv4Address(port.ip)
    for i in range(MAX_PENDING + 100):  # a node sending to every address of its /16
        target = ipaddress.IPv4Address(_address(i))
        frame = Ether(src=format_mac(port.mac), dst="02:00:00:00:00:09") / IP(
            src=str(source), dst=str(target)
        )
        assert isinstance(core.node_frame(interface, raw(frame / UDP()), NOW)[0], Resolve)
    assert core.counters.drops[DropReason.NO_MAPPING] == MAX_PENDING + 100
    assert core.resolver.sizes[1] == MAX_PENDING
    assert core.counters.events[Event.PENDING_EVICTED] == 101  # and the first ask's entry
    assert core.on_timer(NOW + RETRY_AFTER) == []
    assert core.resolver.sizes[1] == 0


def test_the_resolution_cache_is_bounded_oldest_first() -> None:
    core, interface, ask = _wide()
    port = core.tables.ports[interface]
    total = MAX_RESOLUTIONS + 3
    for i in range(total):
        target = ipaddress.IPv4Address(_address(i))
        answer = Resolution(
            network_id=port.network.id,
            requester_id=port.node_id,
            target_ip=target,
            target_id=port.node_id,
            substrate_address=ipaddress.IPv6Address(port.substrate),
            mac=f"02:00:00:{i >> 16 & 0xFF:02x}:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}",
            expires_at=NOW + dt.timedelta(seconds=300),
        )
        core.resolved(
            Resolve(ask.network_id, ask.requester_id, interface, target.packed), answer, NOW
        )
    assert core.resolver.sizes[0] == MAX_RESOLUTIONS
    assert core.counters.events[Event.CACHE_EVICTED] == 3
    assert core.resolver.mapping(interface, _address(0)) is None  # the oldest went first
    assert core.resolver.mapping(interface, _address(total - 1)) is not None
    assert core.resolver.ip_of(interface, bytes.fromhex("020000000000")) is None
    assert core.resolver.scheduled <= 2 * MAX_RESOLUTIONS + 64  # the timer heap too
