"""A pool's actions on criteria (seed 0: "actions ... when criteria are satisfied", e.g. start a
replacement member when too few are healthy).

- When a member's health changes, or a member is added or removed, each action of its pool
  whose criterion (`healthy<2`) has just become true is queued: a row of `pool_deliveries`,
  written in the same transaction as the change (an outbox: nothing is lost if the manager
  stops before delivering).
- The manager's worker delivers what is due: a webhook is POSTed the JSON body, signed
  `X-Onm-Signature: sha256=HMAC(secret, body)` when the action has a secret; a command runs on
  the manager's host with the body on its stdin and `ONM_POOL`, `ONM_HEALTHY` in its
  environment. A failure (no 2xx, an exit status but 0, a timeout) is tried again after 1, 2,
  4 ... 60 s, `MAX_ATTEMPTS` times in all; each outcome is an event.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import shlex
import subprocess
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import insert, select, update

from onm.manager import networks, tables
from onm.manager.store import Tx
from onm.model.pool import ActionKind, Health, Pool

MAX_ATTEMPTS = 8
LEASE = dt.timedelta(seconds=60)
"""A delivery being tried is not due again for this long (one worker at a time takes it)."""
TIMEOUT = 10.0
"""Seconds a webhook or a command may take."""
BATCH = 16


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    pool_id: str
    kind: ActionKind
    target: str
    secret: str | None
    body: dict[str, Any]
    attempts: int


def signature(secret: str, body: bytes) -> str:
    """The `X-Onm-Signature` header of a signed webhook (as GitHub's `X-Hub-Signature-256`)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff(attempts: int) -> dt.timedelta:
    """How long after its `attempts`-th failure a delivery is tried again."""
    return dt.timedelta(seconds=min(60, 2 ** max(0, attempts - 1)))


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def changed(tx: Tx, pool: Pool, before: int) -> None:
    """The pool's members changed (health, a member added or removed) when `before` of them
    were healthy: queue the actions whose criterion that made true."""
    if not pool.actions:
        return
    after = healthy_count(tx, pool.id)
    m, n = tables.pool_members, tables.nodes
    rows = tx.connection.execute(
        select(n.c.name, m.c.health)
        .select_from(m.join(n, m.c.node_id == n.c.id))
        .where(m.c.pool_id == pool.id)
        .order_by(n.c.name)
    ).all()
    enqueue(tx, pool, before, after, [{"node": name, "health": state} for name, state in rows])


def enqueue(tx: Tx, pool: Pool, before: int, after: int, members: list[dict[str, str]]) -> None:
    """Queue the actions of `pool` whose criterion turned true as healthy went before -> after."""
    network = networks.get(tx, pool.network_id)
    for action in pool.actions:
        if not action.on.holds(after) or action.on.holds(before):
            continue
        body = {
            "event": "pool.action",
            "pool": pool.name,
            "pool_id": pool.id,
            "network": network.name,
            "ip": str(pool.ip),
            "criterion": str(action.on),
            "healthy": after,
            "members": members,
            "at": tx.now.isoformat(),
        }
        tx.connection.execute(
            insert(tables.pool_deliveries).values(
                pool_id=pool.id,
                kind=action.kind.value,
                target=action.target,
                secret=action.secret,
                body=body,
                attempts=0,
                next_at=tx.now,
                state="pending",
            )
        )
        tx.record(
            "pool.action_queued",
            pool.id,
            network.tenant_id,
            {"pool": pool.name, "criterion": str(action.on), "kind": action.kind.value},
        )


def healthy_count(tx: Tx, pool_id: str) -> int:
    m = tables.pool_members
    rows = tx.connection.execute(select(m.c.health).where(m.c.pool_id == pool_id)).all()
    return sum(Health(h) is Health.UP for (h,) in rows)


def claim(tx: Tx) -> list[Delivery]:
    """Due deliveries, leased to this worker for `LEASE`."""
    d = tables.pool_deliveries
    rows = tx.connection.execute(
        select(d).where(d.c.state == "pending", d.c.next_at <= tx.now).order_by(d.c.id).limit(BATCH)
    ).all()
    found = []
    for row in rows:
        tx.connection.execute(update(d).where(d.c.id == row.id).values(next_at=tx.now + LEASE))
        found.append(
            Delivery(
                row.id, row.pool_id, ActionKind(row.kind), row.target, row.secret, dict(row.body),
                row.attempts,
            )
        )  # fmt: skip
    return found


def deliver(delivery: Delivery) -> str | None:
    """Carry one out; None if it worked, else why not."""
    body = encode(delivery.body)
    try:
        if delivery.kind is ActionKind.WEBHOOK:
            headers = {"Content-Type": "application/json", "User-Agent": "onm-manager"}
            if delivery.secret is not None:
                headers["X-Onm-Signature"] = signature(delivery.secret, body)
            response = httpx.post(delivery.target, content=body, headers=headers, timeout=TIMEOUT)
            return None if response.is_success else f"HTTP {response.status_code}"
        env = os.environ | {
            "ONM_POOL": str(delivery.body["pool"]),
            "ONM_HEALTHY": str(delivery.body["healthy"]),
        }
        done = subprocess.run(
            shlex.split(delivery.target),
            input=body,
            env=env,
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            return f"exit status {done.returncode}: {done.stderr.decode(errors='replace')[-200:]}"
        return None
    except (httpx.HTTPError, OSError, subprocess.TimeoutExpired, ValueError) as error:
        return f"{type(error).__name__}: {error}"[:500]


def settle(tx: Tx, delivery: Delivery, error: str | None) -> None:
    """Record how a delivery went: done, tried again later, or given up."""
    d = tables.pool_deliveries
    attempts = delivery.attempts + 1
    if error is None:
        state, next_at, kind = "done", tx.now, "pool.action_delivered"
    elif attempts >= MAX_ATTEMPTS:
        state, next_at, kind = "failed", tx.now, "pool.action_failed"
    else:
        state, next_at, kind = "pending", tx.now + backoff(attempts), ""
    tx.connection.execute(
        update(d)
        .where(d.c.id == delivery.id)
        .values(state=state, next_at=next_at, attempts=attempts, last_error=error)
    )
    if kind:
        pool_row = tx.connection.execute(
            select(tables.pools.c.name, tables.networks.c.tenant_id)
            .select_from(tables.pools.join(tables.networks))
            .where(tables.pools.c.id == delivery.pool_id)
        ).first()
        tenant = None if pool_row is None else pool_row.tenant_id
        data = {"kind": delivery.kind.value, "attempts": attempts, "error": error}
        tx.record(kind, delivery.pool_id, tenant, data | {"criterion": delivery.body["criterion"]})
