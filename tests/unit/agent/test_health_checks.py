"""The agent's checks of pool members (onm.agent.health), sans-IO: the frames it writes into a
member's port, what it makes of the member's answers (crafted here as the member's stack would
send them: RFC 792 echo, RFC 9293 handshake and reset, an HTTP/1.0 status line), rise and
fall, timeouts and reports, all driven by `now` alone."""

from __future__ import annotations

import datetime as dt

import pytest
from scapy.all import ICMP, IP, TCP, Ether, Raw, raw

from onm.agent.actions import ReportHealth, ToNode
from onm.agent.health import ECHO_ID, PASSIVE_HOLD, REPORT_EVERY, Monitor, Target
from onm.model import NodeId
from onm.model.ids import PoolId
from onm.model.pool import CheckKind, Health, HealthCheck

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
NODE_MAC, ROUTER_MAC = bytes.fromhex("020000000003"), bytes.fromhex("0a0000000001")
NODE_IP, GATEWAY = "10.0.0.3", "10.0.0.1"


def target(kind: CheckKind, port: int | None = None, rise: int = 2, fall: int = 2) -> Target:
    check = HealthCheck(kind, port, "/healthz", 0.5, 0.2, rise, fall)
    return Target(
        PoolId("pol-web"), NodeId("nod-g"), "onm-g", NODE_MAC, bytes([10, 0, 0, 3]),
        bytes([10, 0, 0, 1]), ROUTER_MAC, check, bytes([10, 0, 0, 9]),
    )  # fmt: skip


def monitor(t: Target) -> Monitor:
    m = Monitor()
    m.update([t], NOW)
    return m


def sent(actions: list[object]) -> list[Ether]:
    return [Ether(a.frame) for a in actions if isinstance(a, ToNode)]


def reports(actions: list[object]) -> list[tuple[str, Health]]:
    return [
        (h.node_id, h.health) for a in actions if isinstance(a, ReportHealth) for h in a.members
    ]


def from_member(layer: object) -> bytes:
    return raw(
        Ether(src="02:00:00:00:00:03", dst="0a:00:00:00:00:01")
        / IP(src=NODE_IP, dst=GATEWAY)
        / layer
    )


def test_an_echo_request_goes_from_the_gateway_and_its_reply_makes_the_member_up() -> None:
    m = monitor(target(CheckKind.ICMP))
    assert m.health(PoolId("pol-web"), NodeId("nod-g")) is Health.INITIAL
    [probe] = sent(m.on_timer(NOW))
    assert (probe.dst, probe.src) == ("02:00:00:00:00:03", "0a:00:00:00:00:01")
    assert (probe[IP].src, probe[IP].dst, probe[ICMP].type, probe[ICMP].id) == (
        GATEWAY, NODE_IP, 8, ECHO_ID,
    )  # fmt: skip
    reply = from_member(ICMP(type=0, id=ECHO_ID, seq=probe[ICMP].seq) / Raw(b"onm-health"))
    done = m.on_frame("onm-g", reply, NOW)
    assert done is not None and reports(done) == [("nod-g", Health.UP)]  # initial: one pass


def test_a_frame_that_answers_no_probe_is_left_to_forwarding() -> None:
    m = monitor(target(CheckKind.ICMP))
    [probe] = sent(m.on_timer(NOW))
    assert m.on_frame("onm-g", from_member(ICMP(type=0, id=1, seq=probe[ICMP].seq)), NOW) is None
    assert m.on_frame("onm-x", from_member(ICMP(type=0, id=ECHO_ID)), NOW) is None
    other = raw(Ether(src="02:00:00:00:00:03") / IP(src=NODE_IP, dst="10.0.0.7") / ICMP(type=0))
    assert m.on_frame("onm-g", other, NOW) is None


def test_timeouts_count_as_failures_and_fall_makes_it_down() -> None:
    m = monitor(target(CheckKind.ICMP, fall=2))
    now = NOW
    got: list[tuple[str, Health]] = []
    for _ in range(2):
        sent(m.on_timer(now))
        due = m.next_timer()
        assert due is not None and due == now + dt.timedelta(seconds=0.2)  # the timeout
        got += reports(m.on_timer(due))
        now = m.next_timer() or now
    assert got == [("nod-g", Health.DOWN)]


def test_down_needs_rise_passes_to_come_back() -> None:
    m = monitor(target(CheckKind.ICMP, rise=3, fall=1))
    m.on_timer(NOW)
    assert reports(m.on_timer(NOW + dt.timedelta(seconds=1))) == [("nod-g", Health.DOWN)]
    now = NOW + dt.timedelta(seconds=2)
    ups = []
    for _ in range(3):
        [probe] = sent(m.on_timer(now))
        answer = m.on_frame(
            "onm-g", from_member(ICMP(type=0, id=ECHO_ID, seq=probe[ICMP].seq)), now
        )
        ups.append(reports(answer or []))
        now += dt.timedelta(seconds=1)
    assert ups == [[], [], [("nod-g", Health.UP)]]


def test_tcp_syn_ack_passes_and_is_reset() -> None:
    m = monitor(target(CheckKind.TCP, 8080))
    [syn] = sent(m.on_timer(NOW))
    assert (syn[TCP].dport, syn[TCP].flags) == (8080, "S")
    answer = from_member(
        TCP(sport=8080, dport=syn[TCP].sport, flags="SA", seq=1000, ack=syn[TCP].seq + 1)
    )
    done = m.on_frame("onm-g", answer, NOW) or []
    [rst] = sent(done)
    assert rst[TCP].flags == "R" and rst[TCP].seq == syn[TCP].seq + 1
    assert reports(done) == [("nod-g", Health.UP)]


def test_tcp_refused_fails() -> None:
    m = monitor(target(CheckKind.TCP, 8080, fall=1))
    [syn] = sent(m.on_timer(NOW))
    refused = from_member(TCP(sport=8080, dport=syn[TCP].sport, flags="RA", ack=syn[TCP].seq + 1))
    assert reports(m.on_frame("onm-g", refused, NOW) or []) == [("nod-g", Health.DOWN)]


@pytest.mark.parametrize(
    ("status", "health"), [(200, Health.UP), (302, Health.UP), (503, Health.DOWN)]
)
def test_http_reads_the_status_line(status: int, health: Health) -> None:
    m = monitor(target(CheckKind.HTTP, 8080, fall=1))
    [syn] = sent(m.on_timer(NOW))
    port, ours = syn[TCP].sport, syn[TCP].seq + 1
    synack = from_member(TCP(sport=8080, dport=port, flags="SA", seq=5000, ack=ours))
    [get] = sent(m.on_frame("onm-g", synack, NOW) or [])
    request = bytes(get[TCP].payload)
    assert request.startswith(b"GET /healthz HTTP/1.0\r\nHost: 10.0.0.3\r\n")
    assert (get[TCP].seq, get[TCP].ack) == (ours, 5001)
    response = from_member(
        TCP(sport=8080, dport=port, flags="PA", seq=5001, ack=ours + len(request))
        / Raw(f"HTTP/1.0 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
    )
    done = m.on_frame("onm-g", response, NOW) or []
    assert [f[TCP].flags for f in sent(done)] == ["R"]
    assert reports(done) == [("nod-g", health)]


def test_a_member_is_reported_again_every_report_interval() -> None:
    m = monitor(target(CheckKind.NONE))
    assert reports(m.on_timer(NOW)) == [("nod-g", Health.UP)]  # check none: up at once
    assert m.on_timer(NOW + dt.timedelta(seconds=1)) == []
    assert reports(m.on_timer(NOW + REPORT_EVERY)) == [("nod-g", Health.UP)]
    assert m.next_timer() == NOW + REPORT_EVERY + HALF  # the next passive look, every interval
    assert all(m.on_timer(NOW + REPORT_EVERY + HALF * k) == [] for k in (1, 2, 3))
    assert reports(m.on_timer(NOW + 2 * REPORT_EVERY)) == [("nod-g", Health.UP)]


HALF = dt.timedelta(seconds=0.5)  # the check's interval in `target`


def passive(fall: int = 2, rise: int = 1) -> tuple[Monitor, dict[tuple[str, bytes], int]]:
    delivered: dict[tuple[str, bytes], int] = {}
    m = Monitor(delivered=delivered)
    m.update([target(CheckKind.NONE, rise=rise, fall=fall)], NOW)
    m.on_timer(NOW)
    return m, delivered


KEY = ("onm-g", bytes([10, 0, 0, 9]))  # the member's interface and the pool IP


def test_passive_a_member_sent_traffic_that_answers_nothing_goes_down_then_up_at_a_packet() -> None:
    m, delivered = passive(fall=2)
    health = lambda: m.health(PoolId("pol-web"), NodeId("nod-g"))  # noqa: E731
    delivered[KEY] = 10  # requests reach it; it sends nothing back
    assert reports(m.on_timer(NOW + HALF)) == []  # one failure: fall is 2
    delivered[KEY] = 20
    assert reports(m.on_timer(NOW + 2 * HALF)) == [("nod-g", Health.DOWN)]
    m.seen("onm-g", NOW + 2.5 * HALF)  # it speaks again
    assert reports(m.on_timer(NOW + 3 * HALF)) == [("nod-g", Health.UP)]  # rise 1
    assert health() is Health.UP


def test_passive_an_idle_member_stays_as_it_is_and_an_answering_one_stays_up() -> None:
    m, delivered = passive(fall=1)
    for k in range(1, 6):  # idle: nothing sent to it, nothing from it (reported: still up)
        assert reports(m.on_timer(NOW + k * HALF)) in ([], [("nod-g", Health.UP)])
    for k in range(6, 10):  # busy and answering
        delivered[KEY] = k * 10
        m.seen("onm-g", NOW + (k - 0.5) * HALF)
        assert reports(m.on_timer(NOW + k * HALF)) in ([], [("nod-g", Health.UP)])
    assert m.health(PoolId("pol-web"), NodeId("nod-g")) is Health.UP


def test_passive_a_member_held_down_is_tried_again_after_the_hold() -> None:
    m, delivered = passive(fall=1)
    delivered[KEY] = 5
    assert reports(m.on_timer(NOW + HALF)) == [("nod-g", Health.DOWN)]
    for k in range(2, 1 + PASSIVE_HOLD):  # held: it gets no traffic, so nothing changes
        assert reports(m.on_timer(NOW + k * HALF)) in ([], [("nod-g", Health.DOWN)])
    assert reports(m.on_timer(NOW + (1 + PASSIVE_HOLD) * HALF)) == [("nod-g", Health.UP)]


def test_each_report_carries_the_packets_per_second_delivered_to_the_member() -> None:
    delivered: dict[tuple[str, bytes], int] = {}
    m = Monitor(delivered=delivered)
    m.update([target(CheckKind.NONE)], NOW)
    m.on_timer(NOW)  # the first report starts the measurement
    delivered[KEY] = 300
    m.seen("onm-g", NOW + REPORT_EVERY)
    [report] = [a for a in m.on_timer(NOW + REPORT_EVERY) if isinstance(a, ReportHealth)]
    assert report.members[0].load == pytest.approx(300 / REPORT_EVERY.total_seconds())


def test_a_kept_member_keeps_its_health_and_a_new_one_starts_initial() -> None:
    t = target(CheckKind.ICMP)
    m = monitor(t)
    [probe] = sent(m.on_timer(NOW))
    m.on_frame("onm-g", from_member(ICMP(type=0, id=ECHO_ID, seq=probe[ICMP].seq)), NOW)
    m.update([t], NOW)
    assert m.health(t.pool_id, t.node_id) is Health.UP
    m.update([], NOW)
    assert m.health(t.pool_id, t.node_id) is None and m.next_timer() is None
