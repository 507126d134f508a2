"""The agent's connection to the manager: snapshots, reports and resolutions, off the datapath.

Runs in threads and hands what it learns to the datapath loop as events through an `Inbox`
(a queue plus a wake-up pipe the loop's selector watches). The manager may be away: the link
retries with capped, jittered back-off (`onm.agent.backoff`, reset by every success), keeps
the last snapshot on disk so that a restarted agent forwards again before the manager is back,
and never deletes anything until a full snapshot has arrived.

Snapshots come over the manager's snapshot stream, which carries a heartbeat every second
(`onm.manager.api.streams`): a manager that goes silent for `client.STREAM_IDLE` seconds, even
one whose kernel still holds the connection open (SIGSTOP), counts as gone, `connected` drops,
and the link reconnects, asking for a full snapshot again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import random
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from onm.agent.actions import ReportClaims, ReportGateways, ReportHealth, Resolve
from onm.agent.backoff import Backoff
from onm.agent.gateway_reports import with_counts
from onm.api import codec
from onm.api import schemas as s
from onm.api.client import Client
from onm.errors import OnmError, RateLimitedError, UnavailableError
from onm.model import Resolution
from onm.model.snapshot import HostSnapshot
from onm.netlink.gateway_plan import Counter

log = logging.getLogger("onm.agent.link")

SNAPSHOT_FILE = "snapshot.json"
RECONNECT = Backoff()


@dataclass(frozen=True, slots=True)
class SnapshotArrived:
    snapshot: HostSnapshot
    from_cache: bool


@dataclass(frozen=True, slots=True)
class Resolved:
    request: Resolve
    answer: Resolution | None
    """None: the manager refused (no such address, not allowed)."""


@dataclass(frozen=True, slots=True)
class ResolveFailed:
    request: Resolve
    """The manager could not be asked."""


@dataclass(frozen=True, slots=True)
class GatewayLoads:
    """The manager's answer to a gateway report: gateway id -> flows the other senders pin to
    it now (the gateways of least-loaded pools this agent reported on)."""

    loads: dict[str, int]


Event = SnapshotArrived | Resolved | ResolveFailed | GatewayLoads


class Inbox:
    """Events for the datapath loop; `fileno()` becomes readable when there are some."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def fileno(self) -> int:
        return self._read

    def put(self, event: Event) -> None:
        self._queue.put(event)
        with contextlib.suppress(BlockingIOError):  # full of wake-ups already
            os.write(self._write, b"!")

    def drain(self) -> list[Event]:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass
        events = []
        while True:
            try:
                events.append(self._queue.get_nowait())
            except queue.Empty:
                return events

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


class ManagerLink:
    def __init__(
        self,
        client_factory: Callable[[], Client],
        host: str,
        inbox: Inbox,
        state_dir: Path | None,
        backoff: Backoff = RECONNECT,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._client_factory = client_factory
        self.host = host
        self.inbox = inbox
        self.state_dir = state_dir
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="onm-resolve")
        self._thread = threading.Thread(target=self._follow, name="onm-snapshots", daemon=True)
        self._local = threading.local()
        self._backoff = backoff
        self._rand = rand
        self.connected = False
        self.applied_revision = 0
        self._reported = 0
        """The newest revision the manager acknowledged (`_report`)."""
        self._revision_lock = threading.Lock()
        self.gateway_states: dict[str, bool] = {}
        """Edge gateway id -> alive, as this agent's probes last found it."""
        self._gateways_latest: ReportGateways | None = None
        self._gateways_lock = threading.Lock()
        self.firewall: Callable[[], Sequence[tuple[Counter, int, int]]] | None = None
        """On an edge host: reads its gateways' firewall counters (`EdgeSide.firewall_counts`),
        added to each report here, off the datapath loop."""
        self.failures = 0
        """Attempts in a row that failed to reach the manager (0 while connected)."""

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _client(self) -> Client:
        client: Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self._client_factory()
            self._local.client = client
        return client

    # --- snapshots ---------------------------------------------------------------------------

    def _follow(self) -> None:
        revision: int | None = None
        cached = self._load_cached()
        while not self._stop.is_set():
            told_to_wait = 0.0
            try:
                for wire_snapshot in self._client().follow_snapshots(self.host, after=revision):
                    if self._stop.is_set():
                        return
                    if not self.connected:
                        log.info("connected to the manager")
                        self.connected, self.failures = True, 0
                    if self.applied_revision != self._reported:
                        self._pool.submit(self._report, self.applied_revision)  # a lost report
                    if wire_snapshot is None:
                        continue  # opened, or a heartbeat
                    snapshot = codec.snapshot(wire_snapshot)  # refused before it is kept
                    revision = wire_snapshot.revision
                    self._save(wire_snapshot)
                    self.inbox.put(SnapshotArrived(snapshot, from_cache=False))
            except OnmError as error:
                if self.connected or revision is None:
                    log.warning("manager unreachable (%s); forwarding with what we have", error)
                self.connected = False
                if cached is not None and revision is None:
                    self.inbox.put(SnapshotArrived(cached, from_cache=True))
                    cached = None
                if isinstance(error, RateLimitedError):  # there, and says when: keep the revision
                    told_to_wait = error.retry_after
                elif isinstance(error, UnavailableError):
                    revision = None  # resync in full once the manager is back
            self.failures += 1
            self._stop.wait(max(told_to_wait, self._backoff.delay(self.failures, self._rand())))

    def _load_cached(self) -> HostSnapshot | None:
        """The snapshot saved by an earlier run, if it is there and still makes sense (a file
        damaged or written by another version is ignored, with a warning: the manager's next
        snapshot replaces it)."""
        if self.state_dir is None:
            return None
        path = self.state_dir / SNAPSHOT_FILE
        try:
            return codec.snapshot(s.SnapshotOut.model_validate_json(path.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, OnmError) as error:
            log.warning("ignoring the saved snapshot %s: %s", path, error)
            return None

    def _save(self, snapshot: s.SnapshotOut) -> None:
        if self.state_dir is None:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        temporary = self.state_dir / (SNAPSHOT_FILE + ".tmp")
        temporary.write_text(snapshot.model_dump_json())
        os.replace(temporary, self.state_dir / SNAPSHOT_FILE)

    # --- reports and resolutions -------------------------------------------------------------

    def report(self, revision: int) -> None:
        self.applied_revision = revision
        self._pool.submit(self._report, revision)

    def _report(self, revision: int) -> None:
        """One at a time and only the newest, so the manager never sees the applied revision go
        back. One that failed (a busy or absent manager) is sent again when the stream next
        speaks (`_follow`), so a lost report does not leave the host behind in `onm status`."""
        with self._revision_lock:
            if revision != self.applied_revision or revision == self._reported:
                return
            try:
                self._client().report(self.host, revision)
            except OnmError as error:
                log.info("could not report revision %d (sent again later): %s", revision, error)
                return
            self._reported = revision

    def report_health(self, report: ReportHealth) -> None:
        self._pool.submit(self._report_health, report)

    def _report_health(self, report: ReportHealth) -> None:
        members: list[dict[str, object]] = [
            {"pool": m.pool_id, "node": m.node_id, "health": m.health.value, "load": m.load}
            for m in report.members
        ]
        try:
            self._client().report_health(self.host, members)
        except OnmError as error:
            log.info("could not report member health: %s", error)

    def report_claims(self, report: ReportClaims) -> None:
        self._pool.submit(self._report_claims, report)

    def _report_claims(self, report: ReportClaims) -> None:
        claims = [{"node": c.node_id, "ip": ".".join(map(str, c.ip))} for c in report.claims]
        try:
            for outcome in self._client().report_claims(self.host, claims):
                log.info("claim of %s by %s: %s", outcome.ip, outcome.node, outcome.verdict)
        except OnmError as error:
            log.info("could not report claims: %s", error)

    def report_gateways(self, report: ReportGateways) -> None:
        """How this agent sees the edge gateways it probes or serves: kept (for the metrics) and
        told the manager (`onm.manager.gateway_health`); the sending agents still decide on
        their own probes."""
        self.gateway_states = {g.gateway_id: g.alive for g in report.gateways}
        self._gateways_latest = report
        self._pool.submit(self._report_gateways, report)

    def _report_gateways(self, report: ReportGateways) -> None:
        """One at a time, and only the newest: each report is the whole picture, so one that
        a newer overtook in the queue is dropped rather than sent late (and out of order)."""
        with self._gateways_lock:
            if report is self._gateways_latest:
                self._send_gateways(report)

    def _send_gateways(self, report: ReportGateways) -> None:
        found = report.gateways
        if self.firewall is not None and any(g.serves is not None for g in found):
            found = with_counts(found, self.firewall())
        gateways: list[dict[str, object]] = [
            {
                "gateway": g.gateway_id,
                "alive": g.alive,
                "pinned": g.pinned,
                "flows": g.flows,
                "packets": g.packets,
                "bytes": g.bytes,
                "rules": [{"rule": r, "packets": n} for r, n in g.rules],
                "defaults": [{"verdict": v, "packets": n} for v, n in g.defaults],
            }
            for g in found
        ]
        try:
            answer = self._client().report_gateways(self.host, gateways)
        except OnmError as error:
            log.info("could not report edge gateways: %s", error)
            return
        self.inbox.put(GatewayLoads({g.gateway: g.flows for g in answer.loads}))

    def resolve(self, request: Resolve) -> None:
        self._pool.submit(self._resolve, request)

    def _resolve(self, request: Resolve) -> None:
        ip = ".".join(str(b) for b in request.ip)
        try:
            answer = self._client().resolve(request.network_id, request.requester_id, ip)
        except UnavailableError:
            self.inbox.put(ResolveFailed(request))
            return
        except OnmError as error:
            log.info("resolution of %s refused: %s", ip, error)
            self.inbox.put(Resolved(request, None))
            return
        try:
            resolution = codec.resolution(answer)
        except OnmError as error:  # an answer the model refuses is no answer
            log.warning("resolution of %s: the manager's answer makes no sense: %s", ip, error)
            self.inbox.put(Resolved(request, None))
            return
        self.inbox.put(Resolved(request, resolution))
