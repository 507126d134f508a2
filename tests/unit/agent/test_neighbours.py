"""onm.agent.io.neighbours: reading `ip -j` route and neighbour output (no `ip` run here)."""

from __future__ import annotations

import pytest

from onm.agent.io.neighbours import ip_argv, parse_neighbour, parse_route

# Captured from a lab host (iproute2 6.1, Linux 6.x).
ROUTE_VIA = (
    '[{"dst":"fd00:0:101:201::1","from":"::","gateway":"fd00:ffff::2","dev":"sub0",'
    '"prefsrc":"fd00:ffff::1","metric":1024,"flags":[],"pref":"medium"}]'
)
ROUTE_ON_LINK = (
    '[{"dst":"fd00:ffff::2","from":"::","dev":"sub0","protocol":"kernel",'
    '"prefsrc":"fd00:ffff::1","metric":256,"flags":[],"pref":"medium"}]'
)
NEIGHBOUR = '[{"dst":"fd00:ffff::2","lladdr":"92:c9:88:27:37:1f","state":["REACHABLE"]}]'


@pytest.mark.parametrize(
    ("output", "interface", "hop"),
    [
        (ROUTE_VIA, "sub0", "fd00:ffff::2"),
        (ROUTE_ON_LINK, "sub0", "fd00:ffff::2"),
        (ROUTE_VIA, "eth1", None),  # routed out of another interface: not ours to write
        ('[{"type":"blackhole","dst":"fd00::1","dev":"sub0"}]', "sub0", None),
        ("[]", "sub0", None),
        ("not json", "sub0", None),
        ('{"dev":"sub0"}', "sub0", None),
    ],
)
def test_route(output: str, interface: str, hop: str | None) -> None:
    assert parse_route(output, interface) == hop


@pytest.mark.parametrize(
    ("output", "mac"),
    [
        (NEIGHBOUR, bytes.fromhex("92c98827371f")),
        (NEIGHBOUR.replace("REACHABLE", "STALE"), bytes.fromhex("92c98827371f")),
        ('[{"dst":"fd00:ffff::2","state":["INCOMPLETE"]}]', None),
        (NEIGHBOUR.replace("REACHABLE", "FAILED"), None),
        (NEIGHBOUR.replace("92:c9:88:27:37:1f", "nonsense"), None),
        ("[]", None),
        ("", None),
    ],
)
def test_neighbour(output: str, mac: bytes | None) -> None:
    assert parse_neighbour(output) == mac


def test_ip_runs_in_the_namespace_by_name_or_path() -> None:
    assert ip_argv(None) == ["ip"]
    assert ip_argv("onm-lab-h-r") == ["ip", "-n", "onm-lab-h-r"]
    assert ip_argv("/proc/42/ns/net") == ["nsenter", "--net=/proc/42/ns/net", "ip"]
