"""The last acknowledged revision, kept beside a SQLite database, to notice when it lost history.

SQLite (WAL, synchronous=FULL) makes a commit durable before the manager answers, but it cannot
tell, when it opens a database, that the write-ahead log it finds is shorter than the one it
wrote: a log cut inside committed frames (a disk or a copy losing its tail, a backup taken
without its `-wal` file) opens cleanly at an older revision, and the manager would serve it as
if the lost, acknowledged writes had never happened (issue #7: 264 of 284 acknowledged nodes,
no warning).

Rules:
- After every write transaction that moved the revision commits, and before its answer leaves,
  `AckMarker.acknowledge` makes that revision durable in `<database>-acked` (beside `-wal` and
  `-shm`). The commit comes first, so the marker never names a revision the database does not
  hold: a kill -9 at any point leaves marker <= database, and no false alarm.
- At start, `check` compares the database's revision with the marker's: a database behind the
  marker has lost acknowledged writes, and the manager refuses to start (`DataLossError`)
  unless the operator accepts the loss (`onm manager serve --accept-data-loss`). Then the
  manager says so loudly, records a `manager.data_loss` event, moves the revision past the
  acknowledged one (so agents and followers that saw the lost revisions resync instead of
  waiting for numbers they already had) and marks every host for a fresh snapshot.
- The file holds two 16-byte slots, each `(magic, revision, crc32)`; revision r goes to slot
  r % 2 and the reader takes the highest valid slot, so a write torn by a crash leaves the
  other slot (one acknowledgement older) intact. Overwriting in place needs no rename and no
  directory fsync: one fdatasync per acknowledgement beside SQLite's commit. Concurrent
  writers share one fdatasync (group commit): a writer that finds a flush under way waits for
  it and flushes what is left after it.

SQLite files only. PostgreSQL's durability is the server's own (fsync, synchronous_commit,
replicas), and several managers share one PostgreSQL database: a marker on one manager's disk
would know only the writes that manager acknowledged, not its peers', and would vanish when a
stateless manager is replaced, so it could neither prove nor disprove a loss there; that check
belongs to PostgreSQL's own tooling. An in-memory database loses everything at exit by design.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from onm.errors import OnmError
from onm.manager import tables

if TYPE_CHECKING:
    from onm.manager.store import Tx

SUFFIX = "-acked"
MAGIC = b"onmA"
_SLOT = struct.Struct("<4sQI")  # magic, revision, crc32 of the first 12 bytes
SLOTS = 2
LOSS_EVENT = "manager.data_loss"


class DataLossError(OnmError):
    """The database holds less than the manager once acknowledged."""


@dataclass(frozen=True, slots=True)
class Loss:
    database: int
    """The revision the database opened at."""
    acknowledged: int
    """The last revision the manager had acknowledged to a client."""

    def describe(self, path: Path) -> str:
        return (
            f"database {path} is at revision {self.database} but revision {self.acknowledged} "
            "was acknowledged; the write-ahead log was lost or truncated"
        )

    def refusal(self, path: Path) -> str:
        return f"{self.describe(path)}; restore from backup or start with --accept-data-loss"


def marker_path(url: str) -> Path | None:
    """Where the marker of database `url` lives: beside a SQLite file, else nowhere (None)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(f"{parsed.database}{SUFFIX}")


def check(database: int, acknowledged: int | None) -> Loss | None:
    """A loss when the database is behind what was acknowledged (no marker yet: none known)."""
    if acknowledged is None or database >= acknowledged:
        return None
    return Loss(database, acknowledged)


def encode(revision: int) -> bytes:
    head = MAGIC + revision.to_bytes(8, "little")
    return _SLOT.pack(MAGIC, revision, zlib.crc32(head))


def decode(data: bytes) -> int | None:
    """The highest revision in a valid slot of the file's bytes, or None if no slot is valid."""
    found: int | None = None
    for k in range(SLOTS):
        chunk = data[k * _SLOT.size : (k + 1) * _SLOT.size]
        if len(chunk) < _SLOT.size:
            break
        magic, revision, crc = _SLOT.unpack(chunk)
        if magic == MAGIC and crc == zlib.crc32(chunk[:12]) and (found is None or revision > found):
            found = revision
    return found


class AckMarker:
    """The `-acked` file of one database, open for the life of the manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._lock = threading.Lock()
        self._flushed = threading.Condition(self._lock)
        self._flushing = False
        self._wanted = self._durable = self.read() or 0

    def read(self) -> int | None:
        """The acknowledged revision on disk (None: a new or unreadable file)."""
        return decode(os.pread(self._fd, _SLOT.size * SLOTS, 0))

    def acknowledge(self, revision: int) -> None:
        """Return once `revision` (or a later one) is on disk."""
        with self._lock:
            self._wanted = max(self._wanted, revision)
            while self._durable < revision:
                if self._flushing:  # someone is writing: theirs may cover ours
                    self._flushed.wait()
                    continue
                target, self._flushing = self._wanted, True
                self._lock.release()
                try:
                    self._write(target)
                finally:
                    self._lock.acquire()
                    self._flushing = False
                    self._flushed.notify_all()
                self._durable = max(self._durable, target)

    def _write(self, revision: int) -> None:
        os.pwrite(self._fd, encode(revision), (revision % SLOTS) * _SLOT.size)
        os.fdatasync(self._fd)

    def close(self) -> None:
        os.close(self._fd)


def accept(tx: Tx, loss: Loss) -> int:
    """Record the accepted loss and move the revision past the acknowledged one; the new one."""
    tx.connection.execute(
        update(tables.meta)
        .where(tables.meta.c.key == "revision")
        .values(value=max(loss.database, loss.acknowledged))
    )
    every_host = [row.id for row in tx.connection.execute(select(tables.hosts.c.id))]
    data = {"database_revision": loss.database, "acknowledged_revision": loss.acknowledged}
    tx.record(LOSS_EVENT, "manager", None, data, every_host)
    return tx.revision
