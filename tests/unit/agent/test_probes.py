"""Gateway liveness as a sender sees it (onm.agent.probes; seed 1): an edge host's agent answers
for every gateway on that host, so one answer keeps all of them alive, whichever pools they are
of (two tenants' pools sharing edge hosts, issue #10); silence kills them all."""

from __future__ import annotations

import datetime as dt

from onm.addressing import agent_address
from onm.agent.probes import DEAD_AFTER, Change, Probes, Target
from onm.agent.tables import GatewayEntry
from onm.model.ids import EdgePoolId, GatewayId
from onm.packet import icmpv6
from onm.packet.icmpv6 import IcmpV6Message, IcmpV6Type

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
EVERY = dt.timedelta(seconds=0.2)
EDGE_1, EDGE_2 = 0xFD00_0000_0101_0901, 0xFD00_0000_0101_0902
"""Two edge hosts' /64s."""


def gateway(name: str, pool: str, prefix: int) -> GatewayEntry:
    return GatewayEntry(
        GatewayId(f"gwy-{name}"),
        name,
        EdgePoolId(f"edg-{pool}"),
        prefix,
        prefix.to_bytes(8, "big"),
        b"\x1e\x00\x64\x01",
        True,
        False,
    )


def probes() -> Probes:
    """Pool one: e1 (edge 1), e2 (edge 2); pool two: f1 (edge 1), f2 (edge 2)."""
    gateways = [
        gateway("e1", "one", EDGE_1),
        gateway("e2", "one", EDGE_2),
        gateway("f1", "two", EDGE_1),
        gateway("f2", "two", EDGE_2),
    ]
    return Probes(
        own=agent_address(0xFD00_0000_0101_0101),
        targets={g.id: Target(g, EVERY, NOW, NOW) for g in gateways},
    )


def reply(sequence: int = 1) -> IcmpV6Message:
    return IcmpV6Message(IcmpV6Type.ECHO_REPLY, 0, icmpv6.echo_rest(0x6F6E, sequence), b"")


def alive(p: Probes) -> set[str]:
    return {t.gateway.name for t in p.targets.values() if t.alive}


def silence(p: Probes, answering: tuple[int, ...]) -> tuple[dt.datetime, list[Change]]:
    """Probe rounds for longer than DEAD_AFTER intervals, the hosts in `answering` answering."""
    now, changes = NOW, []
    for _ in range(int(DEAD_AFTER) + 2):
        now += EVERY
        _, found = p.on_timer(now)
        changes += found
        for prefix in answering:
            changes += p.on_answer(agent_address(prefix), reply(), now)
    return now, changes


def test_one_answer_keeps_every_gateway_of_its_host_alive_in_every_pool() -> None:
    p = probes()
    _, changes = silence(p, (EDGE_1, EDGE_2))
    assert changes == []
    assert alive(p) == {"e1", "e2", "f1", "f2"}


def test_a_silent_host_kills_its_gateways_of_every_pool_and_one_answer_revives_them() -> None:
    p = probes()
    now, changes = silence(p, (EDGE_1,))
    assert alive(p) == {"e1", "f1"}
    assert {(c.gateway_id, c.alive) for c in changes} == {
        (GatewayId("gwy-e2"), False),
        (GatewayId("gwy-f2"), False),
    }
    back = p.on_answer(agent_address(EDGE_2), reply(), now)
    assert {(c.gateway_id, c.pool_id, c.alive) for c in back} == {
        (GatewayId("gwy-e2"), EdgePoolId("edg-one"), True),
        (GatewayId("gwy-f2"), EdgePoolId("edg-two"), True),
    }
    assert alive(p) == {"e1", "e2", "f1", "f2"}


def test_an_answer_from_no_gateway_host_or_not_ours_changes_nothing() -> None:
    p = probes()
    before = p.answered
    assert p.on_answer(agent_address(0xFD00_0000_0101_0903), reply(), NOW) == []
    foreign = IcmpV6Message(IcmpV6Type.ECHO_REPLY, 0, icmpv6.echo_rest(0x1234, 1), b"")
    assert p.on_answer(agent_address(EDGE_1), foreign, NOW) == []
    assert p.answered == before
