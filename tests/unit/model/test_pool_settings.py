"""The one rule for pool settings (API, CLI, topology files), and actions' criteria."""

from __future__ import annotations

import pytest

from onm.errors import InvalidInputError
from onm.model.pool import ActionKind, CheckKind, Criterion, Policy
from onm.model.pool_settings import TEMPLATE, check_settings, parse_criterion, settle


def test_defaults_and_a_whole_check() -> None:
    pool = check_settings({})
    assert (pool.policy, pool.check.kind, pool.check.interval) == (
        Policy.NEAREST,
        CheckKind.ICMP,
        1.0,
    )
    http = check_settings(
        {"check": {"kind": "http", "port": 80, "path": "/h", "interval": 0.5, "timeout": 0.5}}
    )
    assert (http.check.port, http.check.path) == (80, "/h")


def test_changing_to_a_kind_without_a_port_drops_it() -> None:
    tcp = check_settings({"check": {"kind": "tcp", "port": 5432}})
    assert settle(tcp, {"check": {"kind": "icmp"}}).check.port is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("healthy<2", Criterion("<", 2)),
        ("healthy <= 1", Criterion("<=", 1)),
        ("healthy==0", Criterion("==", 0)),
    ],
)
def test_criteria_parse(text: str, expected: Criterion) -> None:
    assert parse_criterion("on", text) == expected
    assert str(expected).replace(" ", "") == str(parse_criterion("on", str(expected)))


@pytest.mark.parametrize(
    "text", ["healthy", "healthy<", "up<2", "healthy<-1", "healthy<99999", "healthy=<2"]
)
def test_bad_criteria_are_refused(text: str) -> None:
    with pytest.raises(InvalidInputError, match="not a criterion"):
        parse_criterion("on", text)


def test_criteria_hold() -> None:
    below_two = Criterion("<", 2)
    assert [below_two.holds(n) for n in (0, 1, 2, 3)] == [True, True, False, False]
    assert Criterion(">=", 3).holds(3) and not Criterion("==", 1).holds(2)


def test_actions_replace_or_add_and_are_bounded() -> None:
    hook = {"on": "healthy<2", "webhook": "https://example.test/h", "secret": "k"}
    one = settle(TEMPLATE, {"actions": [hook]})
    two = settle(one, {"add_actions": [{"on": "healthy==0", "run": "systemctl start x"}]})
    assert [a.kind for a in two.actions] == [ActionKind.WEBHOOK, ActionKind.RUN]
    assert settle(two, {"actions": []}).actions == ()
    with pytest.raises(InvalidInputError, match="at most 16"):
        settle(TEMPLATE, {"actions": [hook] * 17})
