"""`onm.lab.demo_edge.public_ip_avoiding`: the demo's public IP is never held by the gateway it
stopped, and is the first such address (as the manager's owner rule places it)."""

from __future__ import annotations

import ipaddress

import pytest

from onm.lab.demo import DemoError
from onm.lab.demo_edge import PUBLIC_FROM, public_ip_avoiding
from onm.selection import public_ip

GATEWAYS = {"e1": "gw-id-1", "e2": "gw-id-2", "e3": "gw-id-3"}


def holder(address: ipaddress.IPv4Address) -> str:
    names = {v: k for k, v in GATEWAYS.items()}
    return names[public_ip.owner(address, GATEWAYS.values()) or ""]


@pytest.mark.parametrize("stopped", ["e1", "e2", "e3"])
def test_the_first_address_not_held_by_the_stopped_gateway(stopped: str) -> None:
    address, by = public_ip_avoiding(GATEWAYS, stopped)
    assert by == holder(address) != stopped
    skipped = range(int(PUBLIC_FROM), int(address))
    assert all(holder(ipaddress.IPv4Address(a)) == stopped for a in skipped)


def test_an_address_some_gateway_holds_is_skipped() -> None:
    first = next(
        ipaddress.IPv4Address(a)
        for a in range(int(PUBLIC_FROM), int(PUBLIC_FROM) + 64)
        if holder(ipaddress.IPv4Address(a)) == "e2"
    )
    address, by = public_ip_avoiding(GATEWAYS, "e2", first)
    assert address > first and by != "e2"


def test_no_other_gateway_is_an_error() -> None:
    with pytest.raises(DemoError, match="no gateway but e2"):
        public_ip_avoiding({"e2": "gw-id-2"}, "e2")
