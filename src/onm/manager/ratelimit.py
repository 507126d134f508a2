"""Token buckets: how often each token may call each class of operation, and how often one
client address may fail to authenticate. Pure: every call takes `now` (seconds) as an argument.

Theory of operation:
- A `Rate` is a sustained rate and a burst. A `Bucket` holds up to `burst` tokens and gains
  `per_second` of them every second; a request takes one, or waits until one is there. Idle
  clients get their whole burst back, so a client that stays under the rate is never refused.
- `Limiter.admit(key, op, now)` charges the bucket of one token (its SHA-256, never the token)
  for one operation class; the answer is how many seconds to wait (0: go ahead).
- Failed authentications are counted per client address (`client_key`: an IPv4 address, or an
  IPv6 address's /64, which one machine usually holds whole). Once an address has used up its
  `auth` bucket, its requests are refused without checking their token, except those carrying
  a token that earned a success answer recently (`vouch`): one misbehaving client on a shared
  address (a lab, a NAT) does not lock out the good ones, and guessing costs a lookup no more.
- Tables are bounded (least recently used keys are forgotten first): an attacker making up
  tokens or addresses costs memory only up to the bound, and a forgotten bucket is a full one.
"""

from __future__ import annotations

import enum
import ipaddress
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from onm.errors import InvalidInputError


class OperationClass(enum.StrEnum):
    """What a request does, for its rate limit (`onm.manager.api.throttle` classifies routes)."""

    READ = "read"  # look at objects, status, events
    WRITE = "write"  # create or delete objects
    RESOLVE = "resolve"  # an agent's resolutions and verifications (one per ARP miss)
    SYNC = "sync"  # an agent's snapshot long polls and reports; event streams
    AUTH = "auth"  # failed authentications of one client address (not a request class)


@dataclass(frozen=True, slots=True)
class Rate:
    per_second: float
    """Tokens gained per second: the sustained rate."""
    burst: int
    """Most tokens a bucket holds: how many requests may come at once after a quiet spell."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.per_second) and self.per_second > 0):
            raise InvalidInputError("rate", f"{self.per_second} per second must be above 0")
        if self.burst < 1:
            raise InvalidInputError("rate", f"burst {self.burst} must be at least 1")

    def __str__(self) -> str:
        return f"{self.per_second:g}:{self.burst}"


@dataclass(frozen=True, slots=True)
class Bucket:
    level: float
    """Tokens in the bucket at `at`."""
    at: float

    @classmethod
    def full(cls, rate: Rate, now: float) -> Bucket:
        return cls(float(rate.burst), now)

    def refilled(self, rate: Rate, now: float) -> Bucket:
        """The bucket at `now` (a clock that went back refills nothing)."""
        gained = max(0.0, now - self.at) * rate.per_second
        return Bucket(min(float(rate.burst), self.level + gained), max(now, self.at))

    def wait(self, rate: Rate, now: float) -> float:
        """Seconds until the bucket holds one token (0: it holds one now)."""
        level = self.refilled(rate, now).level
        return 0.0 if level >= 1 else (1 - level) / rate.per_second

    def take(self, rate: Rate, now: float) -> tuple[Bucket, float]:
        """Take one token: the new bucket and 0, or the bucket unchanged and the wait."""
        current = self.refilled(rate, now)
        if current.level >= 1:
            return Bucket(current.level - 1, current.at), 0.0
        return current, (1 - current.level) / rate.per_second

    def charge(self, rate: Rate, now: float) -> Bucket:
        """Take one token if there is one (failures are counted even when they come too fast)."""
        current = self.refilled(rate, now)
        return Bucket(max(current.level - 1, 0.0), current.at)


def retry_after(wait: float) -> int:
    """A wait as `Retry-After` delay-seconds (RFC 9110 section 10.2.3): whole, at least 1."""
    return max(1, math.ceil(wait - 1e-9))


# Defaults: far above what an agent or the lab needs (a topology of dozens of nodes is
# provisioned in about a hundred writes; an agent resolves once per ARP miss and polls once
# per revision), far below what a runaway script does (the 2,000 requests in 4.5 s of issue #7).
DEFAULT_RATES: Final[Mapping[OperationClass, Rate]] = {
    OperationClass.READ: Rate(50, 500),
    OperationClass.WRITE: Rate(20, 200),
    OperationClass.RESOLVE: Rate(500, 2000),
    OperationClass.SYNC: Rate(50, 500),
    OperationClass.AUTH: Rate(1 / 3, 20),  # 20 failures at once, then one every 3 s
}
MAX_KEYS: Final = 100_000
"""Buckets kept per table; beyond that the least recently used are forgotten."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Every rate, by class; `with_rates` replaces some."""

    rates: Mapping[OperationClass, Rate] = field(default_factory=lambda: dict(DEFAULT_RATES))

    def __post_init__(self) -> None:
        missing = set(OperationClass) - set(self.rates)
        if missing:
            raise InvalidInputError("rate", f"no rate for {', '.join(sorted(missing))}")

    def with_rates(self, changes: Mapping[OperationClass, Rate]) -> Limits:
        return Limits({**self.rates, **changes})


def parse_rate(text: str) -> tuple[OperationClass, Rate]:
    """`CLASS=PER_SECOND:BURST` (e.g. `write=20:200`), as `onm manager serve --rate` takes it."""
    name, sep, value = text.partition("=")
    per_second, colon, burst = value.partition(":")
    classes = ", ".join(c.value for c in OperationClass)
    try:
        op = OperationClass(name.strip())
    except ValueError:
        raise InvalidInputError("rate", f"{name!r} is not one of {classes}") from None
    try:
        if not (sep and colon):
            raise ValueError
        return op, Rate(float(per_second), int(burst))
    except ValueError:
        raise InvalidInputError(
            "rate", f"{text!r} is not CLASS=PER_SECOND:BURST (e.g. write=20:200)"
        ) from None


def client_key(host: str) -> str:
    """Whom failed authentications are counted against: the address, or an IPv6 /64."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # not an address (a Unix socket, a test client): itself
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class _Table:
    """Buckets by key, least recently used first, at most `limit` of them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buckets: OrderedDict[str, Bucket] = OrderedDict()

    def get(self, key: str, rate: Rate, now: float) -> Bucket:
        bucket = self.buckets.pop(key, None)
        return Bucket.full(rate, now) if bucket is None else bucket

    def put(self, key: str, bucket: Bucket) -> None:
        self.buckets[key] = bucket
        while len(self.buckets) > self.limit:
            self.buckets.popitem(last=False)


class Limiter:
    """The buckets of every token and every client address; safe to share between threads."""

    def __init__(self, limits: Limits | None = None, max_keys: int = MAX_KEYS) -> None:
        self.limits = limits or Limits()
        self._lock = threading.Lock()
        self._tokens = _Table(max_keys)
        self._failures = _Table(max_keys)
        self._vouched: OrderedDict[str, None] = OrderedDict()
        self._max_keys = max_keys

    def admit(self, token_key: str, op: OperationClass, now: float) -> float:
        """Charge one `op` to a token's bucket: 0, or the seconds to wait (nothing charged)."""
        rate = self.limits.rates[op]
        key = f"{op.value} {token_key}"
        with self._lock:
            bucket, wait = self._tokens.get(key, rate, now).take(rate, now)
            self._tokens.put(key, bucket)
        return wait

    def auth_wait(self, client: str, token_key: str | None, now: float) -> float:
        """Seconds before `client` may try a token again (0: now; always 0 for a vouched one)."""
        rate = self.limits.rates[OperationClass.AUTH]
        with self._lock:
            if token_key is not None and token_key in self._vouched:
                self._vouched.move_to_end(token_key)
                return 0.0
            bucket = self._failures.buckets.get(client)
            return 0.0 if bucket is None else bucket.wait(rate, now)

    def failed(self, client: str, token_key: str | None, now: float) -> None:
        """A request from `client` failed authentication: count it, and trust its token no more."""
        rate = self.limits.rates[OperationClass.AUTH]
        with self._lock:
            self._failures.put(client, self._failures.get(client, rate, now).charge(rate, now))
            if token_key is not None:
                self._vouched.pop(token_key, None)
                for op in OperationClass:  # a made-up token's buckets are of no further use
                    self._tokens.buckets.pop(f"{op.value} {token_key}", None)

    def vouch(self, token_key: str) -> None:
        """A request with this token succeeded: its address's failures do not hold it back."""
        with self._lock:
            self._vouched[token_key] = None
            self._vouched.move_to_end(token_key)
            while len(self._vouched) > self._max_keys:
                self._vouched.popitem(last=False)
