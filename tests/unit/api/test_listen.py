"""Tests for onm.api.listen: listen addresses as operators write them."""

from __future__ import annotations

import pytest

from onm.api.listen import parse_listen
from onm.errors import InvalidInputError


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("127.0.0.1:7700", ("127.0.0.1", 7700)),
        ("[::1]:9100", ("::1", 9100)),
        (":8080", ("127.0.0.1", 8080)),
        ("0.0.0.0:65535", ("0.0.0.0", 65535)),
    ],
)
def test_a_listen_address_splits_into_host_and_port(text: str, want: tuple[str, int]) -> None:
    assert parse_listen(text) == want


@pytest.mark.parametrize("text", ["7700", "host:", "host:http", "host:0", "host:65536", ""])
def test_a_listen_address_without_a_valid_port_is_refused_naming_the_option(text: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_listen(text)
    assert caught.value.field == "listen"
