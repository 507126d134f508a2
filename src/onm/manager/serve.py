"""`onm manager serve`: open the store, check it lost nothing, make sure an admin token exists,
run the API server until SIGTERM or SIGINT.

Shutdown is prompt and quiet: the signal sets `Context.stopping`, which ends long polls and
event streams within one poll interval (`onm.manager.api.streams`), so uvicorn's graceful
shutdown finds nothing to cancel; the process then exits 0 (a stop that was asked for is a
success, for systemd and for scripts).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import uvicorn

from onm.api.listen import parse_listen
from onm.manager import actions, detection, durability, gateway_health, health, tokens
from onm.manager.api.app import Context, create_app
from onm.manager.durability import AckMarker, DataLossError
from onm.manager.metrics import serve_metrics
from onm.manager.quota import Quotas
from onm.manager.ratelimit import Limiter, Limits
from onm.manager.store import Store
from onm.model.principal import ADMIN
from onm.model.resolution import RESOLUTION_TTL

ADMIN_TOKEN_FILE = "admin.token"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
GRACEFUL_SHUTDOWN = 3
"""Seconds uvicorn gives open requests at shutdown; streams end by themselves well before."""

log = logging.getLogger("onm.manager")


def write_secret(path: Path, secret: str) -> None:
    """Write `secret` to a file only its owner can read (0600), replacing any old one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    os.chmod(path, 0o600)


def open_store(url: str, accept_data_loss: bool = False) -> Store:
    """The migrated store, its acknowledged-revision marker checked and attached (SQLite files).

    Raises `DataLossError` when the database is behind the marker and the loss is not accepted.
    """
    store = Store(url)
    store.migrate()
    path = durability.marker_path(url)
    if path is None:
        return store
    database = path.with_name(path.name.removesuffix(durability.SUFFIX))
    marker = AckMarker(path)
    now = dt.datetime.now(dt.UTC)
    with store.read(ADMIN, now) as tx:
        loss = durability.check(tx.current_revision(), marker.read())
    if loss is not None:
        if not accept_data_loss:
            marker.close()
            store.dispose()
            raise DataLossError(loss.refusal(database))
        store.marker = marker  # the new revision is acknowledged like any other write
        with store.write(ADMIN, now) as tx:
            revision = durability.accept(tx, loss)
        print(
            f"WARNING: {loss.describe(database)}. LOSS ACCEPTED (--accept-data-loss): the "
            f"writes of revisions {loss.database + 1} to {loss.acknowledged} are gone, and ids "
            "or addresses they handed out may be handed out again; recorded as event "
            f"{durability.LOSS_EVENT} at revision {revision}; every host resyncs",
            file=sys.stderr,
            flush=True,
        )
    store.marker = marker
    return store


def prepare(
    db: str | None, state_dir: Path, accept_data_loss: bool = False
) -> tuple[Store, Path, bool]:
    """Open, migrate and check the store; create the admin token on first start."""
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    store = open_store(db or f"sqlite:///{state_dir / 'manager.db'}", accept_data_loss)
    token_path = state_dir / ADMIN_TOKEN_FILE
    with store.write(ADMIN, dt.datetime.now(dt.UTC)) as tx:
        token = tokens.ensure_admin_token(tx)
    if token is not None:
        write_secret(token_path, token)
    return store, token_path, token is not None


class _Server(uvicorn.Server):
    """uvicorn's server, told to set `stopping` on a stop signal and not to die by it."""

    def __init__(self, config: uvicorn.Config, context: Context) -> None:
        super().__init__(config)
        self._context = context

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._context.stopping.set()
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn's own re-raises the signal once stopped, so the process would end "killed by
        # SIGTERM" (exit -15) instead of 0.
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach only the main thread: whoever runs us there stops us
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


DELIVER_EVERY = 0.5
"""Seconds between looks for pool actions to carry out."""
EXPIRE_EVERY = 1.0
"""Seconds between looks for pool members and edge gateways whose reports went stale."""


def expire_health(context: Context) -> None:
    """Until the manager stops: members whose agents went silent become `unknown`; claims
    nobody refreshed are forgotten; edge gateways are judged again."""
    while not context.stopping.wait(EXPIRE_EVERY):
        try:
            with context.store.write(ADMIN, context.clock()) as tx:
                health.expire(tx)
                detection.expire(tx)
                gateway_health.expire(tx)
        except Exception:  # the database away for a moment: try again next time
            log.warning("could not expire stale member health", exc_info=True)


def deliver_actions(context: Context) -> None:
    """Until the manager stops: carry out the pool actions that are due (onm.manager.actions)."""
    while not context.stopping.wait(DELIVER_EVERY):
        try:
            with context.store.write(ADMIN, context.clock()) as tx:
                due = actions.claim(tx)
            for delivery in due:
                error = actions.deliver(delivery)
                if error is not None:
                    log.warning("pool action %d (%s) failed: %s", delivery.id, delivery.kind, error)
                with context.store.write(ADMIN, context.clock()) as tx:
                    actions.settle(tx, delivery, error)
        except Exception:  # the database away for a moment: try again next time
            log.warning("could not deliver pool actions", exc_info=True)


def serve(
    db: str | None,
    listen: str,
    state_dir: Path,
    accept_data_loss: bool = False,
    *,
    limits: Limits | None = None,
    quotas: Quotas | None = None,
    metrics_listen: str | None = None,
    resolution_ttl: dt.timedelta = RESOLUTION_TTL,
) -> None:
    """Serve until stopped; `limits`, `quotas`: rate limits and tenant quotas (else defaults);
    `metrics_listen`: HOST:PORT for Prometheus metrics (none when None); `resolution_ttl`: how
    long an answer to a resolution lives."""
    host, port = parse_listen(listen)
    metrics_at = None if metrics_listen is None else parse_listen(metrics_listen)
    store, token_path, created = prepare(db, state_dir, accept_data_loss)
    where = f"[{host}]" if ":" in host else host
    print(f"onm manager listening on http://{where}:{port}", flush=True)
    if token_path.exists():
        note = "new" if created else "existing"
        print(f"admin token ({note}): {token_path} (mode 0600)", flush=True)
    else:
        print(
            "admin token: already issued by another manager sharing this database "
            f"(its state dir holds {ADMIN_TOKEN_FILE})",
            file=sys.stderr,
            flush=True,
        )
    context = Context(
        store, limiter=Limiter(limits), quotas=quotas or Quotas(), resolution_ttl=resolution_ttl
    )
    context.metrics.watch(store, context.limiter.limits, context.quotas)
    stop_metrics = None
    if metrics_at is not None:
        stop_metrics = serve_metrics(context.metrics, *metrics_at)
        print(f"metrics on http://{metrics_listen}/metrics", flush=True)
    config = uvicorn.Config(
        create_app(context),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        proxy_headers=False,  # rate limits count the real peer, not a forgeable header
    )
    expiry = threading.Thread(target=expire_health, args=(context,), daemon=True)
    expiry.start()
    delivery = threading.Thread(target=deliver_actions, args=(context,), daemon=True)
    delivery.start()
    try:
        _Server(config, context).run()
    finally:
        context.stopping.set()
        if stop_metrics is not None:
            stop_metrics()
        store.dispose()
