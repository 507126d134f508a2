"""The settings of a pool as users give them (CLI, API, topology files), checked as a whole:
one rule for every entry point, pure (a refusal is an `InvalidInputError` naming the field)."""

from __future__ import annotations

import datetime as dt
import enum
import ipaddress
from collections.abc import Mapping
from dataclasses import replace
from typing import TypeVar

from onm.errors import InvalidInputError
from onm.model.ids import NetworkId, PoolId
from onm.model.pool import (
    COMPARISONS,
    ActionKind,
    AllDown,
    CheckKind,
    Criterion,
    HealthCheck,
    Policy,
    Pool,
    PoolAction,
    PoolState,
    Rotation,
    Scope,
)

E = TypeVar("E", bound=enum.StrEnum)
T = TypeVar("T", int, float)

DEFAULT_CHECK = HealthCheck(CheckKind.ICMP, None, "/", 1.0, 1.0, 2, 2)
"""An echo every second, one second to answer, up after 2 passes, down after 2 failures."""
INTERVAL = (0.1, 3600.0)
"""Seconds between checks, least and most."""
TIMEOUT = (0.05, 60.0)
COUNT = (1, 100)
"""Rise and fall: passes or failures in a row."""
CHECK_PORT_KINDS = frozenset({CheckKind.TCP, CheckKind.HTTP})


def _choice(field: str, kind: type[E], value: object) -> E:
    try:
        return kind(str(value))
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise InvalidInputError(field, f"{value!r} is not one of: {allowed}") from None


def _within(field: str, value: float, bounds: tuple[float, float]) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise InvalidInputError(field, f"{value:g} is outside {low:g}..{high:g}")


def _seconds(given: Mapping[str, object], field: str) -> float | None:
    value = given.get(field)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidInputError(f"check.{field}", f"{value!r} is not a number")
    return float(value)


def _count(given: Mapping[str, object], field: str) -> int | None:
    value = given.get(field)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInputError(f"check.{field}", f"{value!r} is not a whole number")
    return value


def settle_check(base: HealthCheck, given: Mapping[str, object]) -> HealthCheck:
    """`base` with the values `given` (a request's), checked as a whole."""
    check = base
    if given.get("kind") is not None:
        check = replace(check, kind=_choice("check.kind", CheckKind, given["kind"]))
        if check.kind not in CHECK_PORT_KINDS and given.get("port") is None:
            check = replace(check, port=None)
    if given.get("port") is not None:
        check = replace(check, port=_optional(given, "port", int, "check.port"))
    if given.get("path") is not None:
        check = replace(check, path=str(given["path"]))
    interval, timeout = _seconds(given, "interval"), _seconds(given, "timeout")
    if interval is not None:
        check = replace(check, interval=interval)
    if timeout is not None:
        check = replace(check, timeout=timeout)
    rise, fall = _count(given, "rise"), _count(given, "fall")
    if rise is not None:
        check = replace(check, rise=rise)
    if fall is not None:
        check = replace(check, fall=fall)
    _within("check.rise", check.rise, COUNT)
    _within("check.fall", check.fall, COUNT)
    _within("check.interval", check.interval, INTERVAL)
    _within("check.timeout", check.timeout, TIMEOUT)
    if check.timeout > check.interval:
        raise InvalidInputError(
            "check.timeout",
            f"{check.timeout:g} s is longer than the interval ({check.interval:g} s)",
        )
    if check.kind in CHECK_PORT_KINDS:
        if check.port is None:
            raise InvalidInputError("check.port", f"a {check.kind.value} check needs a port")
        _within("check.port", check.port, (1, 65535))
    elif check.port is not None:
        raise InvalidInputError("check.port", f"a {check.kind.value} check takes no port")
    if check.kind is CheckKind.HTTP and not check.path.startswith("/"):
        raise InvalidInputError("check.path", f"{check.path!r} does not start with '/'")
    return check


def _optional(
    given: Mapping[str, object], key: str, kind: type[T], field: str | None = None
) -> T | None:
    value = given.get(key)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise InvalidInputError(field or key, f"{value!r} is not a number")
    return value


MAX_ACTIONS = 16
URL_SCHEMES = ("http://", "https://")


def parse_criterion(field: str, text: str) -> Criterion:
    """`healthy<2`, `healthy<=1`, `healthy==0`, ...: the pool's count of members up."""
    spaced = "".join(text.split())
    if spaced.startswith("healthy"):
        rest = spaced[len("healthy") :]
        for comparison in COMPARISONS:
            if rest.startswith(comparison) and rest[len(comparison) :].isdigit():
                value = int(rest[len(comparison) :])
                if value <= 1000:
                    return Criterion(comparison, value)
    raise InvalidInputError(field, f"{text!r} is not a criterion like healthy<2 (< <= > >= ==)")


def parse_action(field: str, given: object) -> PoolAction:
    """`{"on": "healthy<2", "webhook": URL, "secret": S}` or `{"on": ..., "run": COMMAND}`."""
    if not isinstance(given, Mapping) or not isinstance(given.get("on"), str):
        raise InvalidInputError(field, "an action is {on: CRITERION, webhook: URL} or {on, run}")
    on = parse_criterion(f"{field}.on", str(given["on"]))
    webhook, run, secret = given.get("webhook"), given.get("run"), given.get("secret")
    if (webhook is None) == (run is None):
        raise InvalidInputError(field, "give an action one of webhook or run")
    if secret is not None and (not isinstance(secret, str) or not 1 <= len(secret) <= 200):
        raise InvalidInputError(f"{field}.secret", "a secret is 1 to 200 characters")
    if webhook is not None:
        if (
            not isinstance(webhook, str)
            or not webhook.startswith(URL_SCHEMES)
            or len(webhook) > 2000
        ):
            raise InvalidInputError(f"{field}.webhook", f"{webhook!r} is not an http(s) URL")
        return PoolAction(on, ActionKind.WEBHOOK, webhook, secret)
    if not isinstance(run, str) or not run.strip() or len(run) > 2000 or "\x00" in run:
        raise InvalidInputError(f"{field}.run", "give the command line to run")
    if secret is not None:
        raise InvalidInputError(f"{field}.secret", "only a webhook is signed")
    return PoolAction(on, ActionKind.RUN, run)


def settle(base: Pool, given: Mapping[str, object]) -> Pool:
    """`base` with the settings `given`: policy, scope, all_down, check, rotate_*."""
    pool = base
    if given.get("policy") is not None:
        pool = replace(pool, policy=_choice("policy", Policy, given["policy"]))
    if given.get("scope") is not None:
        pool = replace(pool, scope=_choice("scope", Scope, given["scope"]))
    if given.get("all_down") is not None:
        pool = replace(pool, all_down=_choice("all_down", AllDown, given["all_down"]))
    check = given.get("check")
    if isinstance(check, Mapping):
        pool = replace(pool, check=settle_check(pool.check, check))
    rotation = pool.rotation
    if "rotate_packets" in given:
        packets = _optional(given, "rotate_packets", int)
        if packets is not None:
            _within("rotate_packets", packets, (1, 1 << 40))
        rotation = replace(rotation, packets=packets)
    if "rotate_seconds" in given:
        seconds = _optional(given, "rotate_seconds", float)
        if seconds is not None:
            _within("rotate_seconds", seconds, (1.0, 86400.0))
        rotation = replace(rotation, seconds=seconds)
    for key, kept in (("actions", ()), ("add_actions", pool.actions)):
        listed = given.get(key)
        if listed is None:
            continue
        if not isinstance(listed, list | tuple) or len(kept) + len(listed) > MAX_ACTIONS:
            raise InvalidInputError(key, f"a pool holds at most {MAX_ACTIONS} actions")
        parsed = tuple(parse_action(f"{key}[{i}]", a) for i, a in enumerate(listed))
        pool = replace(pool, actions=(*kept, *parsed))
    if rotation != Rotation() and pool.policy is not Policy.RANKED:
        raise InvalidInputError("rotate_packets", "rotation applies to the ranked policy only")
    return replace(pool, rotation=rotation)


TEMPLATE = Pool(
    PoolId(""), NetworkId(""), "", ipaddress.IPv4Address(0), "", Policy.NEAREST, Scope.REQUESTER,
    AllDown.FAIL_CLOSED, DEFAULT_CHECK, Rotation(), PoolState.LIVE, dt.datetime(1970, 1, 1,
    tzinfo=dt.UTC),
)  # fmt: skip
"""What a new pool starts from before its settings apply."""


def check_settings(given: Mapping[str, object]) -> Pool:
    """A new pool's settings applied to the defaults (refusals name the field)."""
    return settle(TEMPLATE, given)
