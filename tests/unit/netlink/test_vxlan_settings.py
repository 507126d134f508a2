"""onm.netlink.vxlan: bad settings name their field; the netlink attributes follow the family;
differences compare addresses as addresses."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from onm.errors import InvalidInputError
from onm.netlink.vxlan import PORT, Vxlan, differences

A6, B6 = ipaddress.ip_address("fd00:77:1::2"), ipaddress.ip_address("fd00:77:2::2")
A4 = ipaddress.ip_address("192.0.2.1")


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"vni": 1 << 24}, "vni"),
        ({"vni": -1}, "vni"),
        ({"port": 0}, "port"),
        ({"port": 65536}, "port"),
        ({"remote": A4}, "remote"),
        ({"device": ""}, "device"),
    ],
)
def test_bad_settings_name_the_field(settings: dict[str, Any], field: str) -> None:
    given: dict[str, Any] = {"vni": 42, "local": A6, "remote": B6, "device": "eth0"} | settings
    with pytest.raises(InvalidInputError) as raised:
        Vxlan(**given)
    assert raised.value.field == field


def test_attributes_and_overhead_follow_the_family() -> None:
    six = Vxlan((1 << 24) - 1, A6, B6, "eth0")
    assert six.attributes(7) == {
        "vxlan_id": (1 << 24) - 1,
        "vxlan_local6": "fd00:77:1::2",
        "vxlan_group6": "fd00:77:2::2",
        "vxlan_link": 7,
        "vxlan_port": PORT,
    }
    assert six.overhead == 70  # 1570-octet substrate for a 1500-octet inner MTU
    four = Vxlan(0, A4, ipaddress.ip_address("192.0.2.2"), "eth0", port=8472)
    assert set(four.attributes(1)) == {
        "vxlan_id",
        "vxlan_local",
        "vxlan_group",
        "vxlan_link",
        "vxlan_port",
    }
    assert four.overhead == 50


class _Data:
    """IFLA_INFO_DATA as pyroute2 gives it: `get_attr` by attribute name."""

    def __init__(self, **attrs: Any) -> None:
        self.attrs = attrs

    def get_attr(self, name: str) -> Any:
        return self.attrs.get(name)


def test_differences_compare_addresses_not_spellings() -> None:
    want = Vxlan(42, A6, B6, "eth0").attributes(3)
    same = _Data(
        IFLA_VXLAN_ID=42,
        IFLA_VXLAN_LOCAL6="fd00:77:1:0::2",
        IFLA_VXLAN_GROUP6="FD00:77:2::2",
        IFLA_VXLAN_LINK=3,
        IFLA_VXLAN_PORT=PORT,
    )
    assert differences(same, want) == []
    other = _Data(IFLA_VXLAN_ID=43, IFLA_VXLAN_LOCAL6="fd00:77:1::2", IFLA_VXLAN_LINK=3)
    assert differences(other, want) == ["id", "group6", "port"]
