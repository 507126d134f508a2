"""Tests for onm.manager.durability: the acknowledged-revision marker beside a SQLite database.

The file format and the start-up check are tested alone; then real `onm manager serve`
processes reproduce issue #7's defect: nodes acknowledged over HTTP, kill -9, the `-wal` file
cut inside committed frames (and the `-shm` dropped, as a copy of DB + WAL would), restart.
The manager must refuse to start, naming both revisions, unless started with
--accept-data-loss; and must not raise a false alarm after a plain kill -9 or a clean stop.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from onm.manager import durability
from onm.manager.durability import AckMarker, Loss, check, decode, encode, marker_path
from onm.manager.serve import open_store
from onm.manager.store import Store
from onm.model.principal import ADMIN
from support.manager import ManagerProcess, auth, create, manager_command, start_manager
from support.manager_world import NOW

WAL_HEADER = 32  # https://www.sqlite.org/fileformat2.html#walformat
WAL_FRAME_HEADER = 24
NODES = 40


# --- the file --------------------------------------------------------------------------------
def test_a_slot_round_trips_and_the_highest_valid_slot_wins() -> None:
    assert decode(encode(7) + encode(8)) == 8
    assert decode(encode(9) + encode(8)) == 9
    assert decode(encode(5)) == 5  # a file cut after its first slot


def test_a_torn_or_foreign_slot_is_ignored() -> None:
    torn = bytearray(encode(12))
    torn[6] ^= 0xFF  # a bit of the revision flipped: its CRC no longer matches
    assert decode(bytes(torn) + encode(11)) == 11
    assert decode(b"\0" * 32) is None
    assert decode(b"") is None
    assert decode(b"XXXX" + encode(3)[4:] + encode(2)) == 2  # wrong magic


def test_the_marker_keeps_the_highest_revision_across_reopening(tmp_path: Path) -> None:
    path = tmp_path / "m.db-acked"
    marker = AckMarker(path)
    assert marker.read() is None
    for revision in (1, 2, 3, 2):  # never goes back
        marker.acknowledge(revision)
    marker.close()
    again = AckMarker(path)
    assert again.read() == 3
    again.close()


def test_concurrent_acknowledgements_all_return_durable(tmp_path: Path) -> None:
    marker = AckMarker(tmp_path / "m.db-acked")
    barrier = threading.Barrier(8)
    done: list[int] = []

    def writer(first: int) -> None:
        barrier.wait()
        for revision in range(first, 400, 8):
            marker.acknowledge(revision)
            assert (marker.read() or 0) >= revision  # on disk before acknowledge returned
            done.append(revision)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(done) == len(range(1, 400))
    assert marker.read() == 399
    marker.close()


def test_the_marker_lives_beside_sqlite_files_only(tmp_path: Path) -> None:
    assert marker_path(f"sqlite:///{tmp_path}/manager.db") == tmp_path / "manager.db-acked"
    assert marker_path("sqlite://") is None
    assert marker_path("sqlite:///:memory:") is None
    assert marker_path("postgresql://u@h/onm") is None


def test_check_finds_a_loss_only_when_the_database_is_behind() -> None:
    assert check(10, None) is None  # no marker yet: nothing known
    assert check(10, 10) is None
    assert check(11, 10) is None  # written after the last acknowledgement: fine
    loss = check(264, 284)
    assert loss == Loss(264, 284)
    assert loss.refusal(Path("/s/manager.db")) == (
        "database /s/manager.db is at revision 264 but revision 284 was acknowledged; the "
        "write-ahead log was lost or truncated; restore from backup or start with "
        "--accept-data-loss"
    )


def test_every_write_that_moves_the_revision_is_acknowledged_before_write_returns(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'manager.db'}"
    store = open_store(url)
    try:
        assert store.marker is not None
        for _ in range(3):
            with store.write(ADMIN, NOW) as tx:
                tx.record("test.event", "x", None)
                revision = tx.revision
            assert store.marker.read() == revision
        with store.write(ADMIN, NOW):  # changed nothing: nothing to acknowledge
            pass
        assert store.marker.read() == revision
    finally:
        store.dispose()


def test_a_database_behind_its_marker_is_refused_or_accepted_and_moved_past_it(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'manager.db'}"
    store = Store(url)
    store.migrate()
    store.dispose()
    marker = AckMarker(tmp_path / "manager.db-acked")
    marker.acknowledge(50)  # as if 50 had been acknowledged and then lost
    marker.close()
    with pytest.raises(durability.DataLossError, match="revision 0 but revision 50 was ack"):
        open_store(url)
    store = open_store(url, accept_data_loss=True)
    try:
        with store.read(ADMIN, NOW) as tx:
            assert tx.current_revision() == 51
        assert store.marker is not None and store.marker.read() == 51
    finally:
        store.dispose()
    open_store(url).dispose()  # accepted once: starts normally from now on


# --- real processes --------------------------------------------------------------------------
def write_nodes(manager: ManagerProcess, count: int = NODES) -> tuple[int, int]:
    """A tenant, a network, a host and `count` nodes; (acknowledged revision, node count)."""
    with httpx.Client(base_url=manager.url, headers=auth(manager.admin_token)) as client:
        create(client, "/v1/tenants", {"name": "acme"})
        create(client, "/v1/networks", {"tenant": "acme", "name": "blue", "cidrs": ["10.9.0.0/16"]})
        create(client, "/v1/hosts", {"name": "h1", "prefix": "fd00:0:9:1::/64"})
        for k in range(count):
            body = {"name": f"n{k}", "network": "blue", "host": "h1", "ip": f"10.9.0.{10 + k}"}
            create(client, "/v1/nodes", body)
        revision: int = client.get("/v1/status").json()["revision"]
        nodes = len(client.get("/v1/nodes").json())
    return revision, nodes


def tear_wal(state: Path) -> tuple[int, int]:
    """Cut manager.db-wal inside a frame about a third of the way in; (old size, cut)."""
    wal = state / "manager.db-wal"
    size = wal.stat().st_size
    page = int.from_bytes(wal.read_bytes()[8:12], "big")
    frames = (size - WAL_HEADER) // (WAL_FRAME_HEADER + page)
    assert frames > 30, f"the WAL holds only {frames} frames: was it checkpointed?"
    cut = WAL_HEADER + (frames // 3) * (WAL_FRAME_HEADER + page) + page // 2
    with wal.open("r+b") as handle:
        handle.truncate(cut)
    (state / "manager.db-shm").unlink(missing_ok=True)  # a copy of DB + WAL has no -shm
    return size, cut


def nodes_and_revision(manager: ManagerProcess) -> tuple[int, int]:
    with httpx.Client(base_url=manager.url, headers=auth(manager.admin_token)) as client:
        return len(client.get("/v1/nodes").json()), client.get("/v1/status").json()["revision"]


def test_a_torn_wal_is_refused_then_accepted_with_the_flag(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = start_manager(state)
    try:
        acknowledged, count = write_nodes(first)
        first.kill()
    finally:
        first.stop()
    assert count == NODES
    size, cut = tear_wal(state)
    print(f"WAL cut at byte {cut} of {size}; revision {acknowledged} had been acknowledged")

    port = int(first.url.rsplit(":", 1)[1])
    refused = subprocess.run(
        manager_command(state, port), capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 1, refused
    assert "Traceback" not in refused.stderr
    [line] = refused.stderr.splitlines()
    assert line.startswith(f"error: database {state / 'manager.db'} is at revision ")
    assert line.endswith(
        f" but revision {acknowledged} was acknowledged; the write-ahead log was lost or "
        "truncated; restore from backup or start with --accept-data-loss"
    )
    database = int(line.split(" is at revision ")[1].split()[0])
    assert database < acknowledged

    accepted = start_manager(state, port=port, extra=["--accept-data-loss"])
    try:
        nodes, revision = nodes_and_revision(accepted)
        assert nodes < NODES  # the loss is real: the manager serves what is left
        assert revision == acknowledged + 1  # moved past every revision agents may have seen
        with httpx.Client(base_url=accepted.url, headers=auth(accepted.admin_token)) as client:
            [event] = client.get("/v1/events", params={"limit": 1}).json()
        assert event["kind"] == durability.LOSS_EVENT
        assert event["data"] == {
            "database_revision": database,
            "acknowledged_revision": acknowledged,
        }
        accepted.process.send_signal(signal.SIGTERM)
        assert accepted.process.wait(timeout=30) == 0
    finally:
        accepted.stop()
    log = accepted.log.read_text()
    assert f"WARNING: database {state / 'manager.db'} is at revision {database}" in log
    assert "LOSS ACCEPTED" in log
    again = start_manager(state, port=port)  # accepted once: no flag needed any more
    try:
        assert nodes_and_revision(again) == (nodes, revision)
    finally:
        again.stop()


def test_kill_9_while_writing_raises_no_false_alarm(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = start_manager(state)
    acknowledged: list[int] = []
    try:
        _, count = write_nodes(first, 5)

        def writer(w: int) -> None:
            with httpx.Client(base_url=first.url, headers=auth(first.admin_token)) as client:
                for k in range(60):
                    body = {"name": f"w{w}-{k}", "network": "blue", "host": "h1"}
                    body["ip"] = f"10.9.{w + 1}.{10 + k}"
                    try:
                        response = client.post("/v1/nodes", json=body)
                    except httpx.TransportError:
                        return
                    assert response.status_code == 201, response.text
                    acknowledged.append(k)
                    if len(acknowledged) == 40:
                        first.process.send_signal(signal.SIGKILL)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        first.process.wait(timeout=30)
    finally:
        first.stop()
    again = start_manager(state)  # would raise if the manager refused to start
    try:
        nodes, _ = nodes_and_revision(again)
        assert nodes >= count + len(acknowledged)
    finally:
        again.stop()
    assert "WARNING" not in again.log.read_text()


def test_a_clean_stop_and_restart_raise_no_false_alarm(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = start_manager(state)
    try:
        acknowledged, count = write_nodes(first, 5)
    finally:
        first.stop()
    assert first.process.returncode == 0
    again = start_manager(state)
    try:
        assert nodes_and_revision(again) == (count, acknowledged)
    finally:
        again.stop()
