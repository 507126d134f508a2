"""`onm manager serve`: open the store, make sure an admin token exists, run the API server."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import uvicorn

from onm.errors import InvalidInputError
from onm.manager import tokens
from onm.manager.api.app import Context, create_app
from onm.manager.metrics import serve_metrics
from onm.manager.quota import Quotas
from onm.manager.ratelimit import Limiter, Limits
from onm.manager.store import Store
from onm.model.principal import ADMIN

ADMIN_TOKEN_FILE = "admin.token"


def parse_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT` or `[V6]:PORT` -> (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInputError("listen", f"{listen!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def write_secret(path: Path, secret: str) -> None:
    """Write `secret` to a file only its owner can read (0600), replacing any old one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    os.chmod(path, 0o600)


def prepare(db: str | None, state_dir: Path) -> tuple[Store, Path, bool]:
    """Open and migrate the store; create the admin token on first start."""
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    store = Store(db or f"sqlite:///{state_dir / 'manager.db'}")
    store.migrate()
    token_path = state_dir / ADMIN_TOKEN_FILE
    with store.write(ADMIN, dt.datetime.now(dt.UTC)) as tx:
        token = tokens.ensure_admin_token(tx)
    if token is not None:
        write_secret(token_path, token)
    return store, token_path, token is not None


def serve(
    db: str | None,
    listen: str,
    state_dir: Path,
    *,
    limits: Limits | None = None,
    quotas: Quotas | None = None,
    metrics_listen: str | None = None,
) -> None:
    """Serve until stopped; `limits`, `quotas`: rate limits and tenant quotas (else defaults);
    `metrics_listen`: HOST:PORT for Prometheus metrics (none when None)."""
    host, port = parse_listen(listen)
    metrics_at = None if metrics_listen is None else parse_listen(metrics_listen)
    store, token_path, created = prepare(db, state_dir)
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
    context = Context(store, limiter=Limiter(limits), quotas=quotas or Quotas())
    context.metrics.watch(store, context.limiter.limits)
    stop_metrics = None
    if metrics_at is not None:
        stop_metrics = serve_metrics(context.metrics, *metrics_at)
        print(f"metrics on http://{metrics_listen}/metrics", flush=True)
    app = create_app(context)
    # Event streams never end by themselves: give them a few seconds at shutdown, then close.
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=3,
            proxy_headers=False,  # rate limits count the real peer, not a forgeable header
        )
    finally:
        if stop_metrics is not None:
            stop_metrics()
