"""onm.model.edge_rule: a firewall rule as a user types it, read strictly; every refusal names
its field (issue #10)."""

from __future__ import annotations

import ipaddress

import pytest

from onm.errors import InvalidInputError
from onm.model.edge_rule import Action, Direction, Proto, parse_rule, ports_text


def test_the_issues_rule() -> None:
    rule = parse_rule("egress", "deny", "tcp", "25")
    assert (rule.direction, rule.action, rule.proto, rule.ports, rule.remote) == (
        Direction.EGRESS,
        Action.DENY,
        Proto.TCP,
        (25, 25),
        None,
    )


def test_a_range_and_a_remote_cidr() -> None:
    rule = parse_rule("ingress", "allow", "udp", "1000-2000", "192.0.2.0/24")
    assert rule.ports == (1000, 2000)
    assert rule.remote == ipaddress.IPv4Network("192.0.2.0/24")
    assert ports_text(rule.ports) == "1000-2000"
    assert ports_text((25, 25)) == "25" and ports_text(None) == "any"


def test_defaults_match_everything() -> None:
    rule = parse_rule("EGRESS", "Allow")
    assert (rule.proto, rule.ports, rule.remote) == (Proto.ANY, None, None)


@pytest.mark.parametrize(
    ("args", "field", "words"),
    [
        (("sideways", "deny"), "direction", "'sideways' is not one of egress, ingress"),
        (("egress", "reject"), "action", "'reject' is not one of allow, deny"),
        (("egress", "deny", "sctp"), "proto", "'sctp' is not one of any, tcp, udp, icmp"),
        (("egress", "deny", "tcp", "http"), "ports", "not a port or a range"),
        (("egress", "deny", "tcp", "10-"), "ports", "not a port or a range"),
        (("egress", "deny", "tcp", "-5"), "ports", "not a port or a range"),
        (("egress", "deny", "tcp", "2000-1000"), "ports", "reversed"),
        (("egress", "deny", "tcp", "0"), "ports", "outside 1-65535"),
        (("egress", "deny", "udp", "1-65536"), "ports", "outside 1-65535"),
        (("egress", "deny", "any", "25"), "ports", "ports need proto tcp or udp, not any"),
        (("egress", "deny", "icmp", "25"), "ports", "ports need proto tcp or udp, not icmp"),
        (("egress", "deny", "tcp", None, "10.0.0.1/8"), "remote", "not an IPv4 CIDR"),
        (("egress", "deny", "tcp", None, "2001:db8::/32"), "remote", "not an IPv4 CIDR"),
        (("egress", "deny", "tcp", None, "nowhere"), "remote", "not an IPv4 CIDR"),
    ],
)
def test_bad_rules_name_the_field(args: tuple[str, ...], field: str, words: str) -> None:
    with pytest.raises(InvalidInputError, match=words) as caught:
        parse_rule(*args)  # type: ignore[arg-type]
    assert caught.value.field == field
