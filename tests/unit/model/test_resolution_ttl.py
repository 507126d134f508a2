"""onm.model.resolution: the bounds of a resolution's lifetime (`--resolution-ttl`)."""

from __future__ import annotations

import datetime as dt

import pytest

from onm.errors import InvalidInputError
from onm.model.resolution import MAX_TTL, MIN_TTL, RESOLUTION_TTL, ttl


def test_the_default_and_the_bounds_are_lifetimes() -> None:
    assert ttl("ttl", 300) == RESOLUTION_TTL == dt.timedelta(seconds=300)
    assert ttl("ttl", 5) == MIN_TTL
    assert ttl("ttl", 86400) == MAX_TTL
    assert ttl("ttl", 6.5) == dt.timedelta(seconds=6.5)


@pytest.mark.parametrize("seconds", [4.9, 0, -6, 86400.5, float("inf"), float("nan")])
def test_a_lifetime_out_of_bounds_is_refused_naming_the_field(seconds: float) -> None:
    with pytest.raises(InvalidInputError) as refused:
        ttl("--resolution-ttl", seconds)
    assert refused.value.field == "--resolution-ttl"
    assert str(refused.value).startswith("--resolution-ttl: must be between 5 and 86400 seconds")
