"""Tests for onm.agent.link: the manager link alone, against a real `onm manager serve` process.

The link follows the host's snapshot stream: it is `connected` while the stream is open,
hands each snapshot to the inbox, counts failed attempts in a row (reset by a success), and
after the manager dies and comes back it reconnects and asks for a full snapshot again.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import httpx
import pytest

from onm.agent.actions import GatewayReport, ReportGateways
from onm.agent.backoff import Backoff
from onm.agent.link import Event, GatewayLoads, Inbox, ManagerLink, SnapshotArrived
from onm.api import schemas as s
from onm.api.client import Client
from onm.errors import UnavailableError
from onm.model.ids import EdgePoolId, GatewayId
from onm.netlink.gateway_plan import Builtin, Counter
from support.manager import ManagerProcess, free_port, running_manager, start_manager
from support.wire_samples import snapshot_document

FAST = Backoff(first=0.05, cap=0.2, jitter=0.5)


def eventually(check: Callable[[], bool], what: str, timeout: float = 20) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            pytest.fail(f"no {what} within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - started


def snapshots(inbox: Inbox) -> list[SnapshotArrived]:
    return [event for event in inbox.drain() if isinstance(event, SnapshotArrived)]


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[ManagerProcess]:
    with running_manager(tmp_path / "state") as process:
        yield process


def test_the_link_follows_snapshots_and_comes_back_after_a_restart(
    manager: ManagerProcess, tmp_path: Path
) -> None:
    with Client(manager.url, manager.admin_token) as admin:
        host = admin.create_host("h1", prefix="fd00:0:7d:1::/64")
        tenant = admin.create_tenant("t").tenant
        network = admin.create_network("n", ["10.5.0.0/24"], tenant.name)
    inbox = Inbox()
    link = ManagerLink(
        lambda: Client(manager.url, host.token), "h1", inbox, tmp_path / "agent", FAST, lambda: 0.0
    )
    link.start()
    try:
        eventually(lambda: link.connected, "connection")
        assert link.failures == 0
        eventually(lambda: bool(snapshots(inbox)), "the first snapshot")
        with Client(manager.url, manager.admin_token) as admin:
            admin.create_node("a", network.id, "h1", "10.5.0.10")
        found: list[SnapshotArrived] = []

        def node_arrived() -> bool:
            found.extend(snapshots(inbox))
            return any(len(e.snapshot.nodes) == 1 for e in found)

        eventually(node_arrived, "the snapshot with the new node")

        port = int(manager.url.rsplit(":", 1)[1])
        manager.kill()
        eventually(lambda: not link.connected, "disconnection")
        eventually(lambda: link.failures >= 3, "three failed attempts")
        again = start_manager(manager.state_dir, port=port)
        try:
            took = eventually(lambda: link.connected, "reconnection")
            assert took < 2
            assert link.failures == 0  # reset by the success
            # A full snapshot again, though nothing changed: the link resyncs after an outage.
            eventually(lambda: bool(snapshots(inbox)), "the full snapshot after reconnecting")
        finally:
            again.stop()
    finally:
        link.stop()


def _offline_link(state_dir: Path) -> tuple[ManagerLink, Inbox]:
    """A link to a manager that is not there (a port nothing listens on), saving into
    `state_dir`."""
    inbox = Inbox()
    url = f"http://127.0.0.1:{free_port()}"
    return ManagerLink(lambda: Client(url, "onm_host_x"), "host-a", inbox, state_dir, FAST), inbox


@pytest.mark.parametrize("saved", ["good", "refused by the model", "not json"])
def test_a_saved_snapshot_is_used_offline_only_when_it_makes_sense(
    tmp_path: Path, saved: str
) -> None:
    document = snapshot_document()
    if saved == "refused by the model":
        document["networks"][0]["encoding"] = "skit"  # passes the schema, not the model
    text = "{not json" if saved == "not json" else json.dumps(document)
    (tmp_path / "snapshot.json").write_text(text)
    link, inbox = _offline_link(tmp_path)
    link.start()
    try:
        eventually(lambda: link.failures >= 2, "two failed attempts")
        found = snapshots(inbox)
        if saved == "good":
            assert [(e.from_cache, e.snapshot.revision) for e in found] == [(True, 3)]
        else:
            assert found == []
        assert link._thread.is_alive()  # a damaged file never ends the link
    finally:
        link.stop()


def test_a_throttled_link_waits_as_long_as_the_manager_says(tmp_path: Path) -> None:
    asked: list[float] = []

    def throttling(request: httpx.Request) -> httpx.Response:
        asked.append(time.monotonic())
        error = {"status": 429, "code": "rate_limited", "message": "too many", "field": None}
        return httpx.Response(429, json={"error": error}, headers={"Retry-After": "1"})

    transport = httpx.MockTransport(throttling)
    inbox = Inbox()
    link = ManagerLink(
        lambda: Client("http://manager.test", "onm_host_x", transport=transport),
        "host-a",
        inbox,
        tmp_path,
        FAST,  # would try again within 0.2 s
    )
    link.start()
    try:
        eventually(lambda: len(asked) >= 3, "three attempts", timeout=10)
    finally:
        link.stop()
    gaps = [later - earlier for earlier, later in itertools.pairwise(asked)]
    assert min(gaps) >= 0.95, gaps  # Retry-After: 1, not the back-off's 0.2 s


class GatewayReports:
    """A stand-in for the client: what `report_gateways` was given, by host."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[dict[str, object]]]] = []

    def report_gateways(self, host: str, gateways: list[dict[str, object]]) -> s.GatewayReportOut:
        self.sent.append((host, gateways))
        loads = [s.GatewayLoadOut(gateway="gwy-1", flows=7)]
        return s.GatewayReportOut(accepted=len(gateways), loads=loads)


def test_gateway_reports_reach_the_manager_and_its_answer_the_core(tmp_path: Path) -> None:
    fake, inbox = GatewayReports(), Inbox()
    link = ManagerLink(lambda: cast(Client, fake), "h1", inbox, None, FAST, lambda: 0.0)
    down = GatewayReport(GatewayId("gwy-1"), EdgePoolId("edg-1"), False, 2, 5, 50, 5000)
    events: list[Event] = []
    try:
        link.report_gateways(ReportGateways((down,), (down,)))
        eventually(lambda: bool(events.extend(inbox.drain()) or events), "the manager's answer")
    finally:
        link.stop()
        inbox.close()
    assert events == [GatewayLoads({"gwy-1": 7})]  # for the core: the others' load
    assert link.gateway_states == {"gwy-1": False}
    assert fake.sent == [
        (
            "h1",
            [
                {"gateway": "gwy-1", "alive": False, "pinned": 2, "flows": 5, "packets": 50}
                | {"bytes": 5000, "rules": [], "defaults": []}
            ],
        )
    ]


def test_a_served_gateway_is_reported_with_the_firewall_counts_read_off_the_loop(
    tmp_path: Path,
) -> None:
    fake = GatewayReports()
    link = ManagerLink(lambda: cast(Client, fake), "e1", Inbox(), None, FAST, lambda: 0.0)
    reads: list[str] = []

    def firewall() -> list[tuple[Counter, int, int]]:
        reads.append(threading.current_thread().name)
        return [
            (Counter("vni7-rule-1", 7, "rule-1", None), 3, 180),
            (Counter("vni7.ingress-dropped", 7, None, Builtin.INGRESS_DROPPED), 9, 540),
            (Counter("vni8-rule-2", 8, "rule-2", None), 4, 240),  # another network's
        ]

    link.firewall = firewall
    served = GatewayReport(GatewayId("gwy-1"), EdgePoolId("edg-1"), True, serves=7)
    probed = GatewayReport(GatewayId("gwy-2"), EdgePoolId("edg-2"), True)
    try:
        link.report_gateways(ReportGateways((served, probed)))
        eventually(lambda: bool(fake.sent), "a gateway report")
    finally:
        link.stop()
    [(_, gateways)] = fake.sent
    assert [(g["rules"], g["defaults"]) for g in gateways] == [
        ([{"rule": "rule-1", "packets": 3}], [{"verdict": "ingress-dropped", "packets": 9}]),
        ([], []),
    ]
    assert reads and threading.main_thread().name not in reads


class FlakyReports:
    """A stand-in for the client: a stream of heartbeats, and a manager that refuses the first
    `failing` revision reports (busy, or away) and records the ones it takes."""

    def __init__(self, failing: int) -> None:
        self.failing = failing
        self.taken: list[int] = []

    def follow_snapshots(self, host: str, after: int | None = None) -> Iterator[None]:
        while True:
            yield None
            time.sleep(0.02)

    def report(self, host: str, applied_revision: int) -> None:
        if self.failing:
            self.failing -= 1
            raise UnavailableError("the manager is busy")
        self.taken.append(applied_revision)


def test_a_lost_revision_report_is_sent_again_and_an_older_one_never_after_a_newer() -> None:
    fake = FlakyReports(failing=2)
    link = ManagerLink(lambda: cast(Client, fake), "h1", Inbox(), None, FAST, lambda: 0.0)
    link.report(4)  # refused twice, then sent again when the stream speaks
    link.start()
    try:
        eventually(lambda: fake.taken == [4], "the revision reported after two refusals")
        link.report(6)
        link._report(5)  # an older report that a worker takes late: never sent after 6
        eventually(lambda: fake.taken[-1:] == [6], "the newer revision")
        time.sleep(0.2)  # heartbeats meanwhile send nothing more
    finally:
        link.stop()
    assert fake.taken == [4, 6]
