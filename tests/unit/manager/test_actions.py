"""Pool actions' pure parts (onm.manager.actions): the webhook signature and the back-off."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from onm.manager.actions import MAX_ATTEMPTS, backoff, encode, signature


def test_the_signature_is_hmac_sha256_of_the_body_as_sent() -> None:
    body = encode({"pool": "web", "healthy": 1})
    assert body == b'{"healthy":1,"pool":"web"}'
    assert signature("k", body) == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()


def test_backoff_doubles_up_to_a_minute() -> None:
    waits = [backoff(n).total_seconds() for n in range(1, MAX_ATTEMPTS + 1)]
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]
    assert sum(waits[: MAX_ATTEMPTS - 1], 0.0) < dt.timedelta(minutes=3).total_seconds()
