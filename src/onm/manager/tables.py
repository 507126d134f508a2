"""The database schema (SQLAlchemy Core). Alembic migrations under `migrations/` create it.

Timestamps are stored as timezone-aware UTC. Every write happens inside one transaction per
request (`store.Store.transaction`), which also bumps the global revision when it changes
anything.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.engine import Row as _Row
from sqlalchemy.types import TypeDecorator

Row = _Row[Any]

metadata = MetaData()


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone: store naive UTC there)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


NAME = 63  # names are DNS-label sized

meta = Table(
    "meta",
    metadata,
    Column("key", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("name", String(NAME), nullable=False, unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
    # The tenant's own quota limits; NULL: the manager's default (0003, onm.manager.quota).
    Column("quota_networks", Integer, nullable=True),
    Column("quota_nodes", Integer, nullable=True),
)

networks = Table(
    "networks",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("tenant_id", String(16), ForeignKey("tenants.id"), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("vni", Integer, nullable=False, unique=True),
    Column("encoding", String(8), nullable=False),
    Column("cidrs", JSON, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    # Detected pools (0004): off | propose | accept (onm.model.pool.AutoPools).
    Column("auto_pools", String(8), nullable=False, server_default="propose"),
    UniqueConstraint("tenant_id", "name", name="uq_networks_tenant_name"),
)

# Networks outside the overlay that edge hosts reach (0006; onm.model.edge_pool).
external_networks = Table(
    "external_networks",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("name", String(NAME), nullable=False, unique=True),
    Column("cidr", String(18), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

hosts = Table(
    "hosts",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("name", String(NAME), nullable=False, unique=True),
    Column("prefix", String(48), nullable=False, unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("desired_revision", BigInteger, nullable=False, default=0),
    Column("applied_revision", BigInteger, nullable=False, default=0),
    Column("last_report_at", UtcDateTime(), nullable=True),
    # Edge pools (0006): `node` or `edge`; an edge host's external network.
    Column("role", String(8), nullable=False, server_default="node"),
    Column("external_id", String(16), ForeignKey("external_networks.id"), nullable=True),
)

nodes = Table(
    "nodes",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("name", String(NAME), nullable=False),
    Column("network_id", String(16), ForeignKey("networks.id"), nullable=False),
    Column("host_id", String(16), ForeignKey("hosts.id"), nullable=False),
    Column("ip", String(15), nullable=False),
    Column("mac", String(17), nullable=False, unique=True),
    Column("slot", Integer, nullable=False),  # 0 for ordinary nodes; not unique (0002)
    Column("interface", String(15), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("network_id", "name", name="uq_nodes_network_name"),
    UniqueConstraint("network_id", "ip", name="uq_nodes_network_ip"),
    UniqueConstraint("host_id", "interface", name="uq_nodes_host_interface"),
)

# Pools (0004, seed 0): nodes of one network sharing a virtual IP no node owns.
pools = Table(
    "pools",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("network_id", String(16), ForeignKey("networks.id"), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("ip", String(15), nullable=False),
    Column("mac", String(17), nullable=False, unique=True),
    Column("policy", String(16), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("all_down", String(16), nullable=False),
    Column("check_kind", String(8), nullable=False),
    Column("check_port", Integer, nullable=True),
    Column("check_path", String(200), nullable=False),
    Column("check_interval", Float, nullable=False),
    Column("check_timeout", Float, nullable=False),
    Column("check_rise", Integer, nullable=False),
    Column("check_fall", Integer, nullable=False),
    Column("rotate_packets", Integer, nullable=True),
    Column("rotate_seconds", Float, nullable=True),
    Column("state", String(16), nullable=False),
    Column("turn", BigInteger, nullable=False, default=0),  # round-robin's counter
    Column("actions", JSON, nullable=False, default=list),  # [{on, kind, target, secret}]
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("network_id", "name", name="uq_pools_network_name"),
    UniqueConstraint("network_id", "ip", name="uq_pools_network_ip"),
)

pool_members = Table(
    "pool_members",
    metadata,
    Column("pool_id", String(16), ForeignKey("pools.id"), primary_key=True),
    Column("node_id", String(16), ForeignKey("nodes.id"), primary_key=True),
    Column("host_id", String(16), ForeignKey("hosts.id"), nullable=False),
    Column("rank", Integer, nullable=False),
    # The slot of the member's pool address on its host (1..63, U/L set): two members of one
    # pool on one host have two addresses (docs/pools.md).
    Column("slot", Integer, nullable=False),
    Column("health", String(8), nullable=False),
    Column("since", UtcDateTime(), nullable=False),
    Column("reported_at", UtcDateTime(), nullable=True),
    Column("load", Float, nullable=False, default=0.0),
    UniqueConstraint("pool_id", "host_id", "slot", name="uq_pool_members_host_slot"),
    Index("ix_pool_members_node", "node_id"),
)

# Actions a pool's criteria set off, until delivered (an outbox: written in the transaction
# that changed the health, delivered after it by the manager's worker, retried with back-off).
pool_deliveries = Table(
    "pool_deliveries",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("pool_id", String(16), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("target", String(2000), nullable=False),
    Column("secret", String(200), nullable=True),
    Column("body", JSON, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_at", UtcDateTime(), nullable=False),
    Column("state", String(8), nullable=False),  # pending | done | failed
    Column("last_error", String(500), nullable=True),
    Index("ix_pool_deliveries_due", "state", "next_at"),
)

# Addresses nodes were seen using that are not their own (0005): two nodes of a network
# claiming one become a detected pool (onm.manager.detection). `refused`: why it never can.
ip_claims = Table(
    "ip_claims",
    metadata,
    Column("network_id", String(16), ForeignKey("networks.id"), primary_key=True),
    Column("ip", String(15), primary_key=True),
    Column("node_id", String(16), ForeignKey("nodes.id"), primary_key=True),
    Column("host_id", String(16), ForeignKey("hosts.id"), nullable=False),
    Column("first_seen", UtcDateTime(), nullable=False),
    Column("last_seen", UtcDateTime(), nullable=False),
    Column("refused", String(200), nullable=True),
    Index("ix_ip_claims_node", "node_id"),
)

# A network's ways out (0006): edge pools, their gateways, and the routes that use them.
edge_pools = Table(
    "edge_pools",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("network_id", String(16), ForeignKey("networks.id"), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("nat", String(8), nullable=False),
    Column("hash_fields", JSON, nullable=False),
    Column("choice", String(16), nullable=False),
    Column("mode", String(8), nullable=False),
    Column("split_above", Float, nullable=True),
    Column("probe_interval", Float, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    # Bumped by `onm edge-pool rebalance` (0008): agents drop the pool's pins once per change.
    Column("rebalance", BigInteger, nullable=False, default=0, server_default="0"),
    Column("anycast", String(48), nullable=True),  # 0009: mode anycast's /64
    UniqueConstraint("network_id", "name", name="uq_edge_pools_network_name"),
    UniqueConstraint("anycast", name="uq_edge_pools_anycast"),
)

edge_gateways = Table(
    "edge_gateways",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("pool_id", String(16), ForeignKey("edge_pools.id"), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("host_id", String(16), ForeignKey("hosts.id"), nullable=False),
    Column("external_ip", String(15), nullable=False),
    Column("state", String(8), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    # The manager's verdict on its health (0008, onm.manager.gateway_health): up | down | unknown.
    Column("health", String(8), nullable=False, default="unknown", server_default="unknown"),
    Column("health_since", UtcDateTime(), nullable=True),
    Column("health_why", String(200), nullable=True),
    UniqueConstraint("pool_id", "name", name="uq_edge_gateways_pool_name"),
    Index("ix_edge_gateways_external_ip", "external_ip"),
)

# What each agent last said of each gateway it probes or serves (0008): alive or not, and what
# its nodes sent through it since the agent started.
gateway_reports = Table(
    "gateway_reports",
    metadata,
    Column("gateway_id", String(16), ForeignKey("edge_gateways.id"), primary_key=True),
    Column("host_id", String(16), ForeignKey("hosts.id"), primary_key=True),
    Column("alive", Boolean, nullable=False),
    Column("pinned", BigInteger, nullable=False),
    Column("flows", BigInteger, nullable=False),
    Column("packets", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("reported_at", UtcDateTime(), nullable=False),
    Index("ix_gateway_reports_host", "host_id"),
)


# The latest firewall counts each gateway's own agent reported (0010; onm.manager.rule_counts):
# per rule, and per default verdict. `packets` is the agent's counter as last reported,
# `carried` what earlier lifetimes of it counted (a counter that went down was reset). They go
# with their rule, gateway or host: ON DELETE CASCADE.
def _counted(what: Column[str], index: Index) -> tuple[Column[Any] | Index, ...]:
    """The columns of one firewall count table, keyed by host, gateway and `what`."""
    return (
        Column("host_id", String(16), ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True),
        Column(
            "gateway_id",
            String(16),
            ForeignKey("edge_gateways.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        what,
        Column("packets", BigInteger, nullable=False),
        Column("carried", BigInteger, nullable=False),
        Column("changed_at", UtcDateTime(), nullable=False),
        index,
    )


rule_counts = Table(
    "rule_counts",
    metadata,
    *_counted(
        Column(
            "rule_id", String(16), ForeignKey("edge_rules.id", ondelete="CASCADE"), primary_key=True
        ),
        Index("ix_rule_counts_rule", "rule_id"),
    ),
)

default_counts = Table(
    "default_counts",
    metadata,
    *_counted(
        Column("verdict", String(24), primary_key=True),
        Index("ix_default_counts_gateway", "gateway_id"),
    ),
)

routes = Table(
    "routes",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("network_id", String(16), ForeignKey("networks.id"), nullable=False),
    Column("prefix", String(18), nullable=False),
    Column("edge_pool_id", String(16), ForeignKey("edge_pools.id"), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("network_id", "prefix", name="uq_routes_network_prefix"),
)

# An edge pool's firewall rules, in order, and its nodes' public IPs (0007; onm.model.edge_rule).
# Both go with their pool (a public IP with its node too): ON DELETE CASCADE.
edge_rules = Table(
    "edge_rules",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("pool_id", String(16), ForeignKey("edge_pools.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),  # 1..N in a pool; not unique while renumbering
    Column("direction", String(8), nullable=False),
    Column("proto", String(8), nullable=False),
    Column("ports", JSON, nullable=True),  # [low, high]
    Column("remote", String(18), nullable=True),
    Column("action", String(8), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_edge_rules_pool", "pool_id", "position"),
)

public_ips = Table(
    "public_ips",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("pool_id", String(16), ForeignKey("edge_pools.id", ondelete="CASCADE"), nullable=False),
    Column("node_id", String(16), ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
    Column("external_id", String(16), ForeignKey("external_networks.id"), nullable=False),
    Column("ip", String(15), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("external_id", "ip", name="uq_public_ips_external_ip"),
    UniqueConstraint("pool_id", "node_id", name="uq_public_ips_pool_node"),
    Index("ix_public_ips_node", "node_id"),
)

# What each host's agent has been told (seed 0: the manager knows who holds a mapping, so it can
# tell them when it changes). One row per (requesting node, target IP).
grants = Table(
    "grants",
    metadata,
    Column("requester_id", String(16), ForeignKey("nodes.id"), primary_key=True),
    Column("target_ip", String(15), primary_key=True),
    Column("network_id", String(16), ForeignKey("networks.id"), nullable=False),
    Column("host_id", String(16), ForeignKey("hosts.id"), nullable=False),
    Column("target_id", String(16), ForeignKey("nodes.id"), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    # A pool's IP (0004): the pool, and its members in this requester's order (node ids).
    Column("pool_id", String(16), ForeignKey("pools.id"), nullable=True),
    Column("ranking", JSON, nullable=True),
    Index("ix_grants_target", "target_id"),
    Index("ix_grants_pool", "pool_id"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("kind", String(8), nullable=False),
    Column("tenant_id", String(16), ForeignKey("tenants.id"), nullable=True),
    Column("host_id", String(16), ForeignKey("hosts.id"), nullable=True),
    Column("hash", String(64), nullable=False, unique=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
)

events = Table(
    "events",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("revision", BigInteger, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", String(80), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("object_id", String(16), nullable=False),
    Column("tenant_id", String(16), nullable=True),
    Column("data", JSON, nullable=False),
    Index("ix_events_tenant", "tenant_id", "seq"),
)
