"""The wall clock every component stamps and compares times with: aware, in UTC (the manager's
`expires_at` and `created_at`, the agent's grant expiry). Cores take `now` as an argument; this
is what the adapters pass them."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
