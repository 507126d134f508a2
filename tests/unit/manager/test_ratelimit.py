"""onm.manager.ratelimit, with no I/O: buckets, the limiter's tables, addresses, parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onm.errors import InvalidInputError
from onm.manager.ratelimit import (
    DEFAULT_RATES,
    Bucket,
    Limiter,
    Limits,
    OperationClass,
    Rate,
    client_key,
    parse_rate,
    retry_after,
)

TEN = Rate(per_second=10, burst=5)


def test_a_full_bucket_gives_its_burst_then_refuses() -> None:
    bucket = Bucket.full(TEN, 0.0)
    for _ in range(5):
        bucket, wait = bucket.take(TEN, 0.0)
        assert wait == 0
    after, wait = bucket.take(TEN, 0.0)
    assert wait == pytest.approx(0.1)
    assert after.level == pytest.approx(0)


def test_a_refusal_takes_nothing_and_time_refills() -> None:
    bucket = Bucket(0.0, 0.0)
    bucket, wait = bucket.take(TEN, 0.05)
    assert wait == pytest.approx(0.05)  # half a token there already
    bucket, wait = bucket.take(TEN, 0.1)
    assert wait == 0


def test_refill_stops_at_the_burst_and_ignores_a_clock_going_back() -> None:
    assert Bucket(0.0, 0.0).refilled(TEN, 1000.0).level == 5
    assert Bucket(2.0, 10.0).refilled(TEN, 5.0) == Bucket(2.0, 10.0)


@given(st.lists(st.floats(0, 2), min_size=1, max_size=200))
def test_never_more_than_burst_plus_rate_times_elapsed(gaps: list[float]) -> None:
    bucket, now, admitted = Bucket.full(TEN, 0.0), 0.0, 0
    for gap in gaps:
        now += gap
        bucket, wait = bucket.take(TEN, now)
        admitted += wait == 0
    assert admitted <= TEN.burst + TEN.per_second * now + 1e-6


def test_charge_never_goes_below_empty() -> None:
    bucket = Bucket(0.5, 0.0).charge(TEN, 0.0)
    assert bucket.level == 0


@pytest.mark.parametrize(("wait", "header"), [(0.001, 1), (0.999, 1), (1.0, 1), (1.2, 2), (30, 30)])
def test_retry_after_is_whole_seconds_at_least_one(wait: float, header: int) -> None:
    assert retry_after(wait) == header


def test_each_token_and_class_has_its_own_bucket() -> None:
    limiter = Limiter(Limits().with_rates({OperationClass.WRITE: Rate(1, 2)}))
    assert limiter.admit("t1", OperationClass.WRITE, 0) == 0
    assert limiter.admit("t1", OperationClass.WRITE, 0) == 0
    assert limiter.admit("t1", OperationClass.WRITE, 0) == pytest.approx(1)
    assert limiter.admit("t2", OperationClass.WRITE, 0) == 0  # another token
    assert limiter.admit("t1", OperationClass.READ, 0) == 0  # another class
    assert limiter.admit("t1", OperationClass.WRITE, 1) == 0  # a second later


def test_failed_authentications_hold_back_an_address_but_not_vouched_tokens() -> None:
    limiter = Limiter(Limits().with_rates({OperationClass.AUTH: Rate(0.5, 3)}))
    limiter.vouch("good")
    for _ in range(3):
        assert limiter.auth_wait("10.1.1.1", "bad", 0) == 0
        limiter.failed("10.1.1.1", "bad", 0)
    assert limiter.auth_wait("10.1.1.1", "bad", 0) == pytest.approx(2)
    assert limiter.auth_wait("10.1.1.1", None, 0) == pytest.approx(2)  # no token: same
    assert limiter.auth_wait("10.1.1.1", "never-seen", 0) == pytest.approx(2)
    assert limiter.auth_wait("10.1.1.1", "good", 0) == 0
    assert limiter.auth_wait("10.1.1.2", "bad", 0) == 0  # another address
    assert limiter.auth_wait("10.1.1.1", "bad", 2) == 0  # the cool-down is over


def test_a_token_that_fails_loses_its_vouch() -> None:
    limiter = Limiter(Limits().with_rates({OperationClass.AUTH: Rate(0.5, 1)}))
    limiter.vouch("revoked")
    limiter.failed("10.1.1.1", "revoked", 0)
    assert limiter.auth_wait("10.1.1.1", "revoked", 0) > 0


def test_tables_are_bounded() -> None:
    limiter = Limiter(max_keys=10)
    for i in range(100):
        limiter.admit(f"token{i}", OperationClass.READ, 0)
        limiter.failed(f"10.0.0.{i}", f"token{i}", 0)
        limiter.vouch(f"v{i}")
    assert len(limiter._tokens.buckets) <= 10
    assert len(limiter._failures.buckets) <= 10
    assert len(limiter._vouched) <= 10


def test_made_up_tokens_leave_no_bucket_behind() -> None:
    limiter = Limiter()
    limiter.admit("guess", OperationClass.READ, 0)
    limiter.failed("10.0.0.1", "guess", 0)
    assert limiter._tokens.buckets == {}


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),  # the same /64: one machine
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("testclient", "testclient"),
    ],
)
def test_client_keys(host: str, key: str) -> None:
    assert client_key(host) == key


def test_parse_rate() -> None:
    assert parse_rate("write=20:200") == (OperationClass.WRITE, Rate(20, 200))
    assert parse_rate("auth=0.5:10") == (OperationClass.AUTH, Rate(0.5, 10))


@pytest.mark.parametrize(
    "text", ["write", "write=20", "write=:3", "bogus=1:1", "read=0:10", "read=1:0", "read=x:1"]
)
def test_bad_rates_name_the_option(text: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_rate(text)
    assert caught.value.field == "rate"


def test_defaults_cover_every_class_and_leave_agents_room() -> None:
    assert set(DEFAULT_RATES) == set(OperationClass)
    resolve, sync = DEFAULT_RATES[OperationClass.RESOLVE], DEFAULT_RATES[OperationClass.SYNC]
    assert resolve.per_second >= 100 and resolve.burst >= 1000  # every node ARPing at once
    assert sync.per_second >= 20  # a long poll and a report per revision, at churn rates
    with pytest.raises(InvalidInputError):
        Limits({OperationClass.READ: Rate(1, 1)})
