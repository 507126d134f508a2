"""The manager's database: engine set-up, migrations, and the one-transaction-per-request unit.

SQLite (the default) runs in WAL mode with synchronous=FULL, so an acknowledged write survives a
kill -9; write transactions start with BEGIN IMMEDIATE so two writers queue instead of failing
half-way. An in-memory SQLite database (`sqlite://`) is one connection shared by every thread,
so its transactions take turns behind a lock. A `postgresql://` URL selects PostgreSQL, which lets
several managers share one deployment: the revision counter row is the serialisation point
between them. Every PostgreSQL write transaction locks that row first (SELECT ... FOR UPDATE), so
writers queue there as they do on SQLite, and allocations that read before they write (slots,
network ids, the MAC counter) never race a concurrent transaction.

A SQLite file may be given an `AckMarker` (`onm.manager.durability`): every write that moved
the revision records it there after its commit and before `write` returns, so that the next
start can tell whether the database lost acknowledged writes.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from onm.manager import tables
from onm.manager.durability import AckMarker
from onm.model import Principal

MIGRATIONS = Path(__file__).parent / "migrations"
_WRITE = "onm_write"
_REVISION_ROW = select(tables.meta.c.value).where(tables.meta.c.key == "revision")


def is_memory(url: str) -> bool:
    """Whether `url` names an in-memory SQLite database (one connection, lost at exit)."""
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def engine_for(url: str) -> Engine:
    """An engine for `url`: `sqlite:///path`, `sqlite://` (memory) or `postgresql://...`."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20)
    memory = is_memory(url)
    engine = create_engine(
        parsed,
        connect_args={"check_same_thread": False, "timeout": 30},
        poolclass=StaticPool if memory else None,
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook below issue BEGIN itself (pysqlite would defer it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


class Tx:
    """One request's transaction: the connection, the caller, the clock, and lazy revision.

    The first change bumps the global revision once; every change in the transaction is
    recorded as an event at that revision, and hosts whose snapshot it alters are marked.
    """

    def __init__(self, connection: Connection, actor: Principal, now: dt.datetime) -> None:
        self.connection = connection
        self.actor = actor
        self.now = now
        self._revision: int | None = None

    @contextmanager
    def acting_as(self, actor: Principal) -> Iterator[None]:
        """Within: the transaction's changes are `actor`'s (the manager's own doing, after
        the caller's request was authorized)."""
        caller, self.actor = self.actor, actor
        try:
            yield
        finally:
            self.actor = caller

    @property
    def revision(self) -> int:
        if self._revision is None:
            self._revision = self.connection.execute(
                update(tables.meta)
                .where(tables.meta.c.key == "revision")
                .values(value=tables.meta.c.value + 1)
                .returning(tables.meta.c.value)
            ).scalar_one()
        return self._revision

    @property
    def bumped(self) -> int | None:
        """The revision this transaction moved to, or None if it changed nothing yet."""
        return self._revision

    def current_revision(self) -> int:
        if self._revision is not None:
            return self._revision
        value: int = self.connection.execute(
            select(tables.meta.c.value).where(tables.meta.c.key == "revision")
        ).scalar_one()
        return value

    def next_value(self, counter: str) -> int:
        """The next value (1, 2, ...) of a named counter that never goes back (ids never reused).

        Writers are serialised (BEGIN IMMEDIATE / the revision row lock), so the first use's
        insert cannot race another.
        """
        meta = tables.meta
        value = self.connection.execute(
            update(meta)
            .where(meta.c.key == counter)
            .values(value=meta.c.value + 1)
            .returning(meta.c.value)
        ).scalar_one_or_none()
        if value is None:
            value = 1
            self.connection.execute(insert(meta).values(key=counter, value=value))
        return int(value)

    def record(
        self,
        kind: str,
        object_id: str,
        tenant_id: str | None,
        data: dict[str, Any] | None = None,
        hosts: tuple[str, ...] | list[str] | set[str] = (),
    ) -> None:
        """Record an event (bumping the revision) and mark `hosts` as needing it."""
        revision = self.revision
        self.connection.execute(
            insert(tables.events).values(
                revision=revision,
                at=self.now,
                actor=self.actor.name,
                kind=kind,
                object_id=object_id,
                tenant_id=tenant_id,
                data=data or {},
            )
        )
        if hosts:
            self.connection.execute(
                update(tables.hosts)
                .where(tables.hosts.c.id.in_(list(hosts)))
                .values(desired_revision=revision)
            )


class Store:
    def __init__(self, url: str, marker: AckMarker | None = None) -> None:
        self.url = url
        self.marker = marker
        """Where acknowledged revisions go (SQLite files; see `onm.manager.durability`)."""
        self.engine = engine_for(url)
        self._writer = self.engine.execution_options(**{_WRITE: True})
        # BEGIN IMMEDIATE makes SQLite's writers queue; PostgreSQL's queue on the revision row.
        self._lock_revision = self.engine.dialect.name != "sqlite"
        # The one shared connection of an in-memory database cannot hold two transactions.
        self._turn: AbstractContextManager[object] = (
            threading.RLock() if is_memory(url) else nullcontext()
        )
        # SQLite writers of this process queue on a lock instead of SQLite's busy-wait, whose
        # sleeps made the tail latency of concurrent writes ten times the median; writers in
        # other processes still queue on BEGIN IMMEDIATE.
        self._write_turn: AbstractContextManager[object] = (
            threading.Lock()
            if self.engine.dialect.name == "sqlite" and not is_memory(url)
            else nullcontext()
        )

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self._turn, self._writer.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextmanager
    def write(self, actor: Principal, now: dt.datetime) -> Iterator[Tx]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        with self._turn, self._write_turn, self._writer.begin() as connection:
            if self._lock_revision:
                connection.execute(_REVISION_ROW.with_for_update())
            tx = Tx(connection, actor, now)
            yield tx
        # Committed; outside the writers' turn, so the next commit overlaps this flush.
        if self.marker is not None and tx.bumped is not None:
            self.marker.acknowledge(tx.bumped)

    @contextmanager
    def read(self, actor: Principal, now: dt.datetime) -> Iterator[Tx]:
        """A read-only transaction (nothing it does is committed)."""
        with self._turn, self.engine.connect() as connection, connection.begin() as transaction:
            yield Tx(connection, actor, now)
            transaction.rollback()

    def dispose(self) -> None:
        self.engine.dispose()
        if self.marker is not None:
            self.marker.close()
            self.marker = None
