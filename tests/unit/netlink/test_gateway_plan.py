"""Tests for onm.netlink.gateway_plan: the ruleset's shape (rule order, named counters, public IP
precedence), the numbers that keep two same-CIDR tenants apart, and the plans it refuses; and
onm.netlink.nftables' pure transaction helpers. The ruleset is read back as the JSON
libnftables is given (its schema: libnftables-json(5))."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import replace
from typing import Any

import pytest

from onm.errors import InvalidInputError
from onm.netlink import nftables
from onm.netlink.errors import KernelError
from onm.netlink.gateway_plan import (
    Action,
    Builtin,
    Direction,
    FirewallRule,
    GatewayPlan,
    Proto,
    PublicIp,
    TenantEdge,
    builtin_counter,
    mark_of,
    realise,
    rule_counter,
    withdrawn,
    zone_of,
)

IP4 = ipaddress.IPv4Address
NET4 = ipaddress.IPv4Network
CIDR = (NET4("10.0.0.0/24"),)


def tenant(vni: int, interface: str, snat: str, **more: Any) -> TenantEdge:
    return TenantEdge(vni, interface, CIDR, IP4(snat), **more)


TWO = GatewayPlan("ext", (tenant(1, "t1", "30.0.100.1"), tenant(2, "t2", "30.0.100.2")))
RULES = (
    FirewallRule("rule-1", Direction.EGRESS, Action.DENY, Proto.TCP, (25, 25)),
    FirewallRule("rule-2", Direction.EGRESS, Action.ALLOW, Proto.UDP, (1000, 2000)),
    FirewallRule(
        "rule-3", Direction.INGRESS, Action.ALLOW, Proto.TCP, (22, 22), NET4("1.2.3.0/24")
    ),
    FirewallRule("rule-4", Direction.EGRESS, Action.DENY, Proto.ANY, None, NET4("9.9.9.0/24")),
    FirewallRule("rule-5", Direction.INGRESS, Action.DENY, Proto.ICMP),
)


def with_tenant(plan: GatewayPlan, index: int, **changes: Any) -> GatewayPlan:
    tenants = list(plan.tenants)
    tenants[index] = replace(tenants[index], **changes)
    return replace(plan, tenants=tuple(tenants))


def commands(plan: GatewayPlan) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads(realise(plan).ruleset)["nftables"]
    return loaded


def rules_of(plan: GatewayPlan, chain: str) -> list[list[dict[str, Any]]]:
    """The expressions of each rule of `chain`, in order."""
    return [
        c["add"]["rule"]["expr"]
        for c in commands(plan)
        if "rule" in c.get("add", {}) and c["add"]["rule"]["chain"] == chain
    ]


def counter_of(expr: list[dict[str, Any]]) -> str | None:
    return next((e["counter"] for e in expr if "counter" in e), None)


def test_the_table_is_replaced_in_one_transaction() -> None:
    first = commands(TWO)[:2]
    table = {"family": "inet", "name": "onm-gw"}
    assert first == [{"add": {"table": table}}, {"flush": {"table": table}}]
    chains = {
        c["add"]["chain"]["name"]: c["add"]["chain"]
        for c in commands(TWO)
        if "chain" in c.get("add", {})
    }
    assert chains["prerouting-raw"]["prio"] == -300  # before conntrack (-200)
    assert (chains["postrouting-nat"]["type"], chains["postrouting-nat"]["hook"]) == (
        "nat",
        "postrouting",
    )


def test_two_tenants_with_one_cidr_get_their_own_zone_mark_and_table() -> None:
    kernel = realise(TWO)
    assert [(r.vni, r.zone, r.mark, r.table, r.interface) for r in kernel.routing] == [
        (1, 1, 0x0100_0001, 0x0100_0001, "t1"),
        (2, 2, 0x0100_0002, 0x0100_0002, "t2"),
    ]
    assert all(r.cidrs == CIDR for r in kernel.routing)
    classify = rules_of(TWO, "vni2-classify")
    assert classify == [
        [{"mangle": {"key": {"ct": {"key": "zone"}}, "value": 2}}],
        [{"mangle": {"key": {"meta": {"key": "mark"}}, "value": 0x0100_0002}}],
    ]
    # Tenant side by interface, external side by the address (SNAT or public) it is sent to.
    by_interface, by_address = rules_of(TWO, "prerouting-raw")
    assert by_interface[0]["vmap"]["data"]["set"] == [
        ["t1", {"goto": {"target": "vni1-classify"}}],
        ["t2", {"goto": {"target": "vni2-classify"}}],
    ]
    assert by_address[0]["match"]["right"] == "ext"
    assert [k for k, _ in by_address[1]["vmap"]["data"]["set"]] == ["30.0.100.1", "30.0.100.2"]
    assert kernel.addresses == (IP4("30.0.100.1"), IP4("30.0.100.2"))


def test_zones_fold_above_16_bits_and_marks_keep_the_whole_vni() -> None:
    assert [zone_of(v) for v in (1, 65535, 65536, 70000)] == [1, 65535, 1, 4465]
    assert mark_of(0xFFFFFF) == 0x01FF_FFFF
    clash = GatewayPlan("ext", (tenant(1, "t1", "30.0.100.1"), tenant(65536, "t2", "30.0.100.2")))
    with pytest.raises(InvalidInputError) as refused:
        realise(clash)
    assert refused.value.field == "tenants[1].vni"
    assert "conntrack zone 1" in refused.value.reason


def test_rules_keep_their_order_each_with_its_named_counter() -> None:
    plan = with_tenant(TWO, 0, rules=RULES)
    egress = [counter_of(r) for r in rules_of(plan, "vni1-egress")]
    assert egress == [
        "vni1.invalid-dropped",
        "vni1.spoofed-dropped",
        "vni1.spoofed-dropped",
        "vni1.misrouted-dropped",
        "vni1-rule-1",
        "vni1-rule-2",
        "vni1-rule-4",
        "vni1.egress-allowed",
    ]
    ingress = [counter_of(r) for r in rules_of(plan, "vni1-ingress")]
    assert ingress[3:] == ["vni1-rule-3", "vni1-rule-5", "vni1.ingress-dropped"]
    rule_1, rule_2, rule_4 = rules_of(plan, "vni1-egress")[4:7]
    tcp_25 = {"payload": {"protocol": "tcp", "field": "dport"}}
    assert rule_1 == [
        {"match": {"op": "==", "left": tcp_25, "right": 25}},
        {"counter": "vni1-rule-1"},
        {"drop": None},
    ]
    assert rule_2[0]["match"]["right"] == {"range": [1000, 2000]}
    assert rule_2[-1] == {"accept": None}
    assert rule_4[0]["match"]["left"] == {"payload": {"protocol": "ip", "field": "daddr"}}
    rule_3 = rules_of(plan, "vni1-ingress")[3]
    assert rule_3[1]["match"] == {
        "op": "==",
        "left": {"payload": {"protocol": "ip", "field": "saddr"}},
        "right": {"prefix": {"addr": "1.2.3.0", "len": 24}},
    }
    declared = [
        c["add"]["counter"]["name"] for c in commands(plan) if "counter" in c.get("add", {})
    ]
    used = {
        counter_of(r) for c in ("vni1-egress", "vni1-ingress", "input") for r in rules_of(plan, c)
    }
    assert used - {None} <= set(declared)
    assert [c.name for c in realise(plan).counters if c.rule_id] == [
        f"vni1-rule-{i}" for i in range(1, 6)
    ]
    assert rules_of(TWO, "vni2-egress")[4:] == [
        [{"counter": "vni2.egress-allowed"}, {"accept": None}]
    ]


def test_a_public_ip_takes_precedence_over_the_pool_snat() -> None:
    public = (PublicIp(IP4("10.0.0.2"), IP4("30.0.100.50")),)
    plan = with_tenant(TWO, 0, public_ips=public)
    first, pool = rules_of(plan, "vni1-snat")
    assert first[0]["snat"]["addr"]["map"]["data"]["set"] == [["10.0.0.2", "30.0.100.50"]]
    assert pool == [{"snat": {"family": "ip", "addr": "30.0.100.1"}}]
    [dnat] = rules_of(plan, "prerouting-nat")
    assert dnat[1]["dnat"]["addr"]["map"]["data"]["set"] == [["30.0.100.50", "10.0.0.2"]]
    by_address = rules_of(plan, "prerouting-raw")[1]
    assert ["30.0.100.50", {"goto": {"target": "vni1-classify"}}] in by_address[1]["vmap"]["data"][
        "set"
    ]
    # Unsolicited ingress is allowed to public IPs only (DNATed), and counted.
    assert [counter_of(r) for r in rules_of(plan, "vni1-ingress")][-2:] == [
        "vni1.public-allowed",
        "vni1.ingress-dropped",
    ]
    assert "vni2.public-allowed" not in {c.name for c in realise(plan).counters}
    assert rules_of(TWO, "prerouting-nat") == []


def test_counter_names() -> None:
    assert rule_counter(7, "rule-3") == "vni7-rule-3"
    assert builtin_counter(7, Builtin.INGRESS_DROPPED) == "vni7.ingress-dropped"


def test_sysctls_and_addresses() -> None:
    kernel = realise(TWO)
    assert kernel.sysctls[0] == ("net.ipv4.ip_forward", 1)
    assert ("net.ipv4.conf.t2.src_valid_mark", 1) in kernel.sysctls
    assert kernel.external_interface == "ext"


def test_what_a_tenant_removed_or_an_address_moved_leaves_is_withdrawn() -> None:
    both = realise(TWO)
    # A tenant gone: its policy routing and its SNAT address go (not the other's).
    routing, addresses = withdrawn(both, realise(replace(TWO, tenants=TWO.tenants[:1])))
    assert [t.vni for t in routing] == [2] and addresses == (IP4("30.0.100.2"),)
    # A gateway's address moved: the old one goes, the tenant's routing stays.
    moved = realise(with_tenant(TWO, 0, snat_ip=IP4("30.0.100.11")))
    assert withdrawn(both, moved) == ((), (IP4("30.0.100.1"),))
    # A public IP dropped goes too; the same plan again withdraws nothing.
    public = realise(with_tenant(TWO, 1, public_ips=(PublicIp(IP4("10.0.0.9"), IP4("30.0.9.9")),)))
    assert withdrawn(public, both) == ((), (IP4("30.0.9.9"),))
    assert withdrawn(both, realise(TWO)) == ((), ())


@pytest.mark.parametrize(
    ("plan", "field", "reason"),
    [
        (
            with_tenant(
                TWO,
                0,
                rules=(FirewallRule("r", Direction.EGRESS, Action.DENY, Proto.TCP, (30, 20)),),
            ),
            "tenants[0].rules[0].ports",
            "reversed",
        ),
        (
            with_tenant(
                TWO,
                1,
                rules=(FirewallRule("r", Direction.EGRESS, Action.DENY, Proto.UDP, (0, 20)),),
            ),
            "tenants[1].rules[0].ports",
            "outside",
        ),
        (
            with_tenant(
                TWO,
                0,
                rules=(FirewallRule("r", Direction.EGRESS, Action.DENY, Proto.TCP, (1, 65536)),),
            ),
            "tenants[0].rules[0].ports",
            "outside",
        ),
        (
            with_tenant(
                TWO, 0, rules=(FirewallRule("r", Direction.EGRESS, Action.DENY, Proto.ANY, (1, 2)),)
            ),
            "tenants[0].rules[0].ports",
            "proto tcp or udp",
        ),
        (
            with_tenant(
                TWO,
                0,
                rules=(FirewallRule("r", Direction.INGRESS, Action.DENY, Proto.ICMP, (1, 2)),),
            ),
            "tenants[0].rules[0].ports",
            "not icmp",
        ),
        (
            with_tenant(TWO, 0, rules=(RULES[0], replace(RULES[1], id="rule-1"))),
            "tenants[0].rules[1].id",
            "used twice",
        ),
        (
            with_tenant(TWO, 0, rules=(replace(RULES[0], id="a.b"),)),
            "tenants[0].rules[0].id",
            "letters",
        ),
        (
            with_tenant(TWO, 1, public_ips=(PublicIp(IP4("10.0.0.9"), IP4("30.0.100.1")),)),
            "tenants[1].public_ips[0].public_ip",
            "is also tenants[0].snat_ip",
        ),
        (
            with_tenant(TWO, 0, public_ips=(PublicIp(IP4("10.9.0.9"), IP4("30.0.100.9")),)),
            "tenants[0].public_ips[0].node_ip",
            "none of the tenant's CIDRs",
        ),
        (
            with_tenant(
                TWO,
                0,
                public_ips=(
                    PublicIp(IP4("10.0.0.9"), IP4("30.0.100.8")),
                    PublicIp(IP4("10.0.0.9"), IP4("30.0.100.9")),
                ),
            ),
            "tenants[0].public_ips[1].node_ip",
            "has a public IP already",
        ),
        (with_tenant(TWO, 1, snat_ip=IP4("30.0.100.1")), "tenants[1].snat_ip", "is also"),
        (with_tenant(TWO, 1, vni=1), "tenants[1].vni", "is also tenants[0].vni"),
        (with_tenant(TWO, 1, interface="t1"), "tenants[1].interface", "is also"),
        (with_tenant(TWO, 1, interface="ext"), "tenants[1].interface", "is also external"),
        (with_tenant(TWO, 1, interface="a-very-long-name"), "tenants[1].interface", "1 to 15"),
        (with_tenant(TWO, 1, interface="eth0.100"), "tenants[1].interface", "sysctl"),
        (with_tenant(TWO, 0, vni=0), "tenants[0].vni", "outside 1..16777215"),
        (with_tenant(TWO, 0, vni=1 << 24), "tenants[0].vni", "outside"),
        (with_tenant(TWO, 0, cidrs=()), "tenants[0].cidrs", "at least one"),
        (replace(TWO, external_interface=""), "external_interface", "1 to 15"),
        (
            replace(TWO, tenants=tuple(replace(t, routed=True) for t in TWO.tenants)),
            "tenants[1].cidrs[0]",
            "overlaps routed tenants[0].cidrs[0]",
        ),
        (
            with_tenant(
                TWO,
                0,
                routed=True,
                public_ips=(PublicIp(IP4("10.0.0.9"), IP4("30.0.100.9")),),
            ),
            "tenants[0].public_ips",
            "translates nothing",
        ),
    ],
)
def test_bad_plans_are_refused_naming_the_field(plan: GatewayPlan, field: str, reason: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        realise(plan)
    assert refused.value.field == field
    assert reason in refused.value.reason


# --- onm.netlink.nftables: the transaction around the ruleset (pure) ---------------------------

LISTED: list[dict[str, Any]] = [
    {"metainfo": {"version": "1.0.6"}},
    {"table": {"family": "inet", "name": "onm-gw", "handle": 1}},
    {
        "counter": {
            "family": "inet",
            "name": "vni1.egress-allowed",
            "table": "onm-gw",
            "handle": 2,
            "packets": 5,
            "bytes": 300,
        }
    },
    {
        "counter": {
            "family": "inet",
            "name": "vni9.egress-allowed",
            "table": "onm-gw",
            "handle": 3,
            "packets": 1,
            "bytes": 60,
        }
    },
    {"chain": {"family": "inet", "table": "onm-gw", "name": "vni9-egress", "handle": 4}},
    {
        "chain": {
            "family": "inet",
            "table": "onm-gw",
            "name": "forward",
            "handle": 5,
            "type": "filter",
            "hook": "forward",
            "prio": 10,
            "policy": "accept",
        }
    },
    {
        "chain": {
            "family": "inet",
            "table": "onm-gw",
            "name": "input",
            "handle": 6,
            "type": "filter",
            "hook": "input",
            "prio": 0,
            "policy": "accept",
        }
    },
    {
        "counter": {
            "family": "inet",
            "name": "theirs",
            "table": "other",
            "handle": 1,
            "packets": 9,
            "bytes": 9,
        }
    },
]
"""What `nft -j list table inet onm-gw` said after an older plan (tenant 9, forward at 10)."""


def test_stale_chains_and_counters_are_deleted_after_the_flush() -> None:
    ruleset = json.loads(realise(TWO).ruleset)
    done = nftables.with_stale_removed(ruleset, LISTED)["nftables"]
    assert done[:2] == ruleset["nftables"][:2]
    deletes = [c["delete"] for c in done[2:5]]
    assert deletes == [
        {"counter": {"family": "inet", "table": "onm-gw", "name": "vni9.egress-allowed"}},
        {"chain": {"family": "inet", "table": "onm-gw", "name": "vni9-egress"}},
        {"chain": {"family": "inet", "table": "onm-gw", "name": "forward"}},  # its prio moved
    ]
    assert done[5:] == ruleset["nftables"][2:]
    assert nftables.with_stale_removed(ruleset, None) == ruleset


def test_a_ruleset_that_does_not_flush_the_table_is_refused() -> None:
    with pytest.raises(KernelError, match="does not flush"):
        nftables.with_stale_removed({"nftables": [{"add": {"table": {"family": "inet"}}}]}, None)


def test_counters_of_a_listing_are_onms_only() -> None:
    assert nftables.counters_of(LISTED) == {
        "vni1.egress-allowed": (5, 300),
        "vni9.egress-allowed": (1, 60),
    }
    assert nftables.counters_of(None) == {}


def test_a_missing_libnftables_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nftables, "LIBRARY", "libnftables-absent.so.1")
    monkeypatch.setattr(nftables, "_nft", None)
    with pytest.raises(KernelError, match=r"libnftables is not installed.*libnftables1"):
        nftables.counters("somewhere")


ROUTED = with_tenant(TWO, 1, routed=True)
"""Tenant 2 behind a `nat: none` pool: its CIDR may overlap tenant 1's, which is translated."""


def test_a_routed_tenant_is_untracked_untranslated_and_let_in_by_default() -> None:
    classify = rules_of(ROUTED, "vni2-classify")
    assert classify[0] == [{"notrack": None}]  # before anything attaches a template
    assert not any({"notrack": None} in r for r in rules_of(ROUTED, "vni1-classify"))
    assert rules_of(ROUTED, "vni2-snat") == []
    [postrouting] = rules_of(ROUTED, "postrouting-nat")
    vmap = postrouting[-1]["vmap"]["data"]["set"]
    assert [k for k, _ in vmap] == [mark_of(1)]
    # From the external network, by destination CIDR, into the routed tenant's chains.
    by_cidr = [
        r for r in rules_of(ROUTED, "prerouting-raw") if {"goto": {"target": "vni2-classify"}} in r
    ]
    assert len(by_cidr) == 1
    assert by_cidr[0][1]["match"]["right"] == {"prefix": {"addr": "10.0.0.0", "len": 24}}
    ingress = rules_of(ROUTED, "vni2-ingress")
    assert counter_of(ingress[-1]) == builtin_counter(2, Builtin.ROUTED_ALLOWED)
    assert {"accept": None} in ingress[-1]
    assert counter_of(rules_of(ROUTED, "vni1-ingress")[-1]) == builtin_counter(
        1, Builtin.INGRESS_DROPPED
    )
    names = {c.name for c in realise(ROUTED).counters}
    assert builtin_counter(2, Builtin.ROUTED_ALLOWED) in names
    assert builtin_counter(1, Builtin.ROUTED_ALLOWED) not in names
