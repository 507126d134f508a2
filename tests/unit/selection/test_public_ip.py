"""onm.selection.public_ip: one gateway of a pool holds each public IP, the same one wherever
it is computed, and a gateway joining or leaving moves about its share (issue #10)."""

from __future__ import annotations

import ipaddress

from onm.selection.public_ip import owner

ADDRESSES = [ipaddress.IPv4Address("30.0.100.0") + i for i in range(1, 201)]


def test_no_gateway_no_owner() -> None:
    assert owner(ADDRESSES[0], []) is None


def test_the_owner_does_not_depend_on_the_order_of_the_gateways() -> None:
    for ip in ADDRESSES[:20]:
        assert owner(ip, ["e1", "e2", "e3"]) == owner(ip, ["e3", "e1", "e2"])


def test_addresses_spread_over_the_gateways() -> None:
    held = [owner(ip, ["e1", "e2", "e3"]) for ip in ADDRESSES]
    assert {held.count(g) for g in ("e1", "e2", "e3")} <= set(range(40, 100))


def test_a_gateway_leaving_moves_about_its_own_addresses() -> None:
    """Maglev moves the leaver's entries and a few others (onm.selection.maglev)."""
    before = {ip: owner(ip, ["e1", "e2", "e3"]) for ip in ADDRESSES}
    after = {ip: owner(ip, ["e1", "e3"]) for ip in ADDRESSES}
    assert all(after[ip] != "e2" for ip in ADDRESSES)
    others = [ip for ip in ADDRESSES if before[ip] != "e2" and before[ip] != after[ip]]
    assert len(others) <= len(ADDRESSES) // 20
