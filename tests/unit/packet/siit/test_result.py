"""SiitConfig refuses settings no link could have (RFC 8200 section 5, RFC 791)."""

from __future__ import annotations

import pytest

from onm.errors import InvalidInputError
from onm.packet.siit import SiitConfig


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lowest_ipv6_mtu", 1279),
        ("ipv6_mtu", 1000),
        ("ipv4_mtu", 67),
        ("ipv4_mtu", 70000),
        ("icmp_source_v4", b"\x01\x02\x03"),
        ("icmp_source_v6", bytes(4)),
        ("icmp_error_pool_v4", bytes(16)),
    ],
)
def test_bad_settings_are_refused_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(InvalidInputError) as error:
        SiitConfig(**{field: value})  # type: ignore[arg-type]
    assert error.value.field == field


def test_defaults_are_rfc_7915s() -> None:
    config = SiitConfig()
    assert config.lowest_ipv6_mtu == 1280  # RFC 7915 section 4.1
    assert config.decrement_ttl and config.copy_tos
