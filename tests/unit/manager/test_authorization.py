"""The authorization matrix: every route, every kind of caller, the exact status each gets.

The world (`support.manager_world.World`):

    tenant a   network na 10.0.0.0/24   a1 10.0.0.11 on host x, a2 10.0.0.12 on host y
               network empty            (no nodes)
    tenant b   network nb 10.0.0.0/24   b1 10.0.0.11 on host y     (same CIDR, same IP as a1)
    tenant spare, host z                (empty: deletable)

Rules (DESIGN.md section 6, onm.manager.access):
- no token or an unknown token: 401, on every route;
- admin: everything (409 where children exist);
- tenant: only its own tenant's objects; another tenant's answer 404, exactly as if absent;
  kinds of action no tenant may take (tenants, hosts, status, host snapshots, reports,
  resolution and verification, whose answers are substrate addresses): 403;
- host: only what its agent needs: its own host, snapshot and reports, its nodes, and
  resolution and verification in networks it runs nodes of, on behalf of nodes it runs;
  another host's objects answer 404; kinds of action no host may take: 403.

Each row runs on a fresh copy of the world, so rows that change something do not see each other.
`{name}` in a path stands for that object's id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import update

from onm.manager import edge_pools, edge_rules, externals, hosts, public_ips, routes, tables
from onm.manager.api.app import Context, create_app
from onm.manager.ratelimit import Limiter
from onm.manager.store import Store
from onm.model.principal import ADMIN as ADMIN_PRINCIPAL
from support.manager_world import (
    NOW,
    Clock,
    World,
    bearer,
    build_world,
    clone,
    first_streamed_chunk,
    prefix_at,
)

Body = dict[str, Any] | None
Row = tuple[str, str, Body, str, int]

NEW_TENANT = {"name": "new"}
NEW_NET_IN_A = {"tenant": "a", "name": "new", "cidrs": ["10.0.0.0/24"]}
NEW_NET_OWN = {"name": "new", "cidrs": ["10.0.0.0/24"]}
NEW_HOST = {"name": "new", "prefix": prefix_at(9)}
NODE_IN_NA = {"name": "new", "network": "a/na", "host": "x", "ip": "10.0.0.50"}
NODE_IN_NB = {"name": "new", "network": "b/nb", "host": "x", "ip": "10.0.0.50"}
REPORT = {"applied_revision": 1}
QUOTAS = {"quotas": {"networks": 5, "nodes": None}}
A1_ASKS = {"network": "a/na", "requester": "a1", "ip": "10.0.0.12"}
A2_ASKS = {"network": "a/na", "requester": "a2", "ip": "10.0.0.11"}
B1_ASKS = {"network": "b/nb", "requester": "b1", "ip": "10.0.0.11"}
VERIFY_NA = {"network": "a/na", "ip": "10.0.0.11", "substrate_source": "fd00::1"}
VERIFY_NB = {"network": "b/nb", "ip": "10.0.0.11", "substrate_source": "fd00::1"}
NEW_POOL = {"name": "new", "network": "a/na", "ip": "10.0.0.4"}
POOL_HASH = {"policy": "hash"}
ADD_A2 = {"node": "a2"}
HEALTH_A1 = {"members": [{"pool": "pa", "node": "a1", "health": "down"}]}
CLAIM_A1 = {"claims": [{"node": "a1", "ip": "10.0.0.60"}]}
AUTO_ACCEPT = {"auto_pools": "accept"}
NEW_EXT = {"name": "partner", "cidr": "40.0.0.0/16"}
NEW_EDGE = {"name": "eb", "network": "a/na"}
EDGE_HASH = {"hash": ["src", "dst", "proto"]}
NEW_GW = {"name": "g2", "host": "gw", "external_ip": "30.0.100.2"}
DRAIN = {"state": "draining"}
NEW_ROUTE = {"network": "a/na", "prefix": "40.0.0.0/8", "edge_pool": "ea"}
NEW_RULE = {"direction": "egress", "action": "deny", "proto": "tcp", "ports": "25"}
NEW_PUBLIC = {"edge_pool": "ea", "ip": "30.0.100.51"}
RULE_ID = "rul-000000000001"
"""A rule of ea made with a known id (the template's), so a row can delete it."""
GW_REPORT = {"gateways": [{"gateway": "{g1}", "alive": True, "pinned": 1, "flows": 2}]}
GW_COUNTS = {
    "gateways": [{"gateway": "{g1}", "alive": True, "rules": [{"rule": RULE_ID, "packets": 3}]}]
}
"""Firewall counts of g1: only g1's own host (gw) may give them; x runs no gateway (400)."""
LATER = "after=999999&wait=0"  # a long poll past every revision: 204 at once

# fmt: off
MATRIX: list[Row] = [
    # --- tenants: admins only create and delete; a tenant reads itself; hosts nothing ----------
    ("POST",   "/v1/tenants",             NEW_TENANT,   "admin",    201),
    ("POST",   "/v1/tenants",             NEW_TENANT,   "tenant_a", 403),
    ("POST",   "/v1/tenants",             NEW_TENANT,   "tenant_b", 403),
    ("POST",   "/v1/tenants",             NEW_TENANT,   "host_x",   403),
    ("POST",   "/v1/tenants",             NEW_TENANT,   "host_y",   403),
    ("GET",    "/v1/tenants",             None,         "admin",    200),
    ("GET",    "/v1/tenants",             None,         "tenant_a", 200),
    ("GET",    "/v1/tenants",             None,         "tenant_b", 200),
    ("GET",    "/v1/tenants",             None,         "host_x",   403),
    ("GET",    "/v1/tenants",             None,         "host_y",   403),
    ("GET",    "/v1/tenants/a",           None,         "admin",    200),
    ("GET",    "/v1/tenants/a",           None,         "tenant_a", 200),
    ("GET",    "/v1/tenants/a",           None,         "tenant_b", 404),
    ("GET",    "/v1/tenants/{a}",         None,         "tenant_a", 200),
    ("GET",    "/v1/tenants/{a}",         None,         "tenant_b", 404),
    ("GET",    "/v1/tenants/a",           None,         "host_x",   403),
    ("GET",    "/v1/tenants/a",           None,         "host_y",   403),
    ("GET",    "/v1/tenants/nobody",      None,         "admin",    404),
    ("GET",    "/v1/tenants/nobody",      None,         "tenant_a", 404),
    ("PATCH",  "/v1/tenants/a",           QUOTAS,       "admin",    200),
    ("PATCH",  "/v1/tenants/{a}",         QUOTAS,       "admin",    200),
    ("PATCH",  "/v1/tenants/nobody",      QUOTAS,       "admin",    404),
    ("PATCH",  "/v1/tenants/a",           QUOTAS,       "tenant_a", 403),
    ("PATCH",  "/v1/tenants/a",           QUOTAS,       "tenant_b", 403),
    ("PATCH",  "/v1/tenants/b",           QUOTAS,       "tenant_a", 403),
    ("PATCH",  "/v1/tenants/a",           QUOTAS,       "host_x",   403),
    ("PATCH",  "/v1/tenants/a",           QUOTAS,       "host_y",   403),
    ("DELETE", "/v1/tenants/spare",       None,         "admin",    204),
    ("DELETE", "/v1/tenants/a",           None,         "admin",    409),
    ("DELETE", "/v1/tenants/spare",       None,         "tenant_a", 403),
    ("DELETE", "/v1/tenants/a",           None,         "tenant_a", 403),
    ("DELETE", "/v1/tenants/spare",       None,         "tenant_b", 403),
    ("DELETE", "/v1/tenants/spare",       None,         "host_x",   403),
    ("DELETE", "/v1/tenants/spare",       None,         "host_y",   403),
    # --- networks: a tenant's own; hosts see those they run nodes of, list none ---------------
    ("POST",   "/v1/networks",            NEW_NET_IN_A, "admin",    201),
    ("POST",   "/v1/networks",            NEW_NET_IN_A, "tenant_a", 201),
    ("POST",   "/v1/networks",            NEW_NET_IN_A, "tenant_b", 404),
    ("POST",   "/v1/networks",            NEW_NET_IN_A, "host_x",   403),
    ("POST",   "/v1/networks",            NEW_NET_IN_A, "host_y",   403),
    ("POST",   "/v1/networks",            NEW_NET_OWN,  "admin",    400),  # which tenant?
    ("POST",   "/v1/networks",            NEW_NET_OWN,  "tenant_a", 201),
    ("POST",   "/v1/networks",            NEW_NET_OWN,  "tenant_b", 201),
    ("GET",    "/v1/networks",            None,         "admin",    200),
    ("GET",    "/v1/networks",            None,         "tenant_a", 200),
    ("GET",    "/v1/networks",            None,         "tenant_b", 200),
    ("GET",    "/v1/networks",            None,         "host_x",   403),
    ("GET",    "/v1/networks",            None,         "host_y",   403),
    ("GET",    "/v1/networks?tenant=a",   None,         "admin",    200),
    ("GET",    "/v1/networks?tenant=a",   None,         "tenant_a", 200),
    ("GET",    "/v1/networks?tenant=a",   None,         "tenant_b", 404),
    ("GET",    "/v1/networks/a/na",       None,         "admin",    200),
    ("GET",    "/v1/networks/a/na",       None,         "tenant_a", 200),
    ("GET",    "/v1/networks/a/na",       None,         "tenant_b", 404),
    ("GET",    "/v1/networks/a/na",       None,         "host_x",   200),
    ("GET",    "/v1/networks/a/na",       None,         "host_y",   200),
    ("GET",    "/v1/networks/{na}",       None,         "tenant_a", 200),
    ("GET",    "/v1/networks/{na}",       None,         "tenant_b", 404),
    ("GET",    "/v1/networks/b/nb",       None,         "admin",    200),
    ("GET",    "/v1/networks/b/nb",       None,         "tenant_a", 404),
    ("GET",    "/v1/networks/b/nb",       None,         "tenant_b", 200),
    ("GET",    "/v1/networks/b/nb",       None,         "host_x",   404),
    ("GET",    "/v1/networks/{nb}",       None,         "host_x",   404),
    ("GET",    "/v1/networks/b/nb",       None,         "host_y",   200),
    ("GET",    "/v1/networks/a/empty",    None,         "host_x",   404),
    ("DELETE", "/v1/networks/a/empty",    None,         "admin",    204),
    ("DELETE", "/v1/networks/a/empty",    None,         "tenant_a", 204),
    ("DELETE", "/v1/networks/a/empty",    None,         "tenant_b", 404),
    ("DELETE", "/v1/networks/{empty}",    None,         "tenant_b", 404),
    ("DELETE", "/v1/networks/a/empty",    None,         "host_x",   403),
    ("DELETE", "/v1/networks/a/empty",    None,         "host_y",   403),
    ("DELETE", "/v1/networks/a/na",       None,         "admin",    409),
    ("DELETE", "/v1/networks/a/na",       None,         "tenant_a", 409),
    ("DELETE", "/v1/networks/b/nb",       None,         "tenant_a", 404),
    # --- hosts: admins manage them; tenants read them; a host sees itself ---------------------
    ("POST",   "/v1/hosts",               NEW_HOST,     "admin",    201),
    ("POST",   "/v1/hosts",               NEW_HOST,     "tenant_a", 403),
    ("POST",   "/v1/hosts",               NEW_HOST,     "tenant_b", 403),
    ("POST",   "/v1/hosts",               NEW_HOST,     "host_x",   403),
    ("POST",   "/v1/hosts",               NEW_HOST,     "host_y",   403),
    ("GET",    "/v1/hosts",               None,         "admin",    200),
    ("GET",    "/v1/hosts",               None,         "tenant_a", 200),
    ("GET",    "/v1/hosts",               None,         "tenant_b", 200),
    ("GET",    "/v1/hosts",               None,         "host_x",   200),
    ("GET",    "/v1/hosts",               None,         "host_y",   200),
    ("GET",    "/v1/hosts/x",             None,         "admin",    200),
    ("GET",    "/v1/hosts/x",             None,         "tenant_a", 200),
    ("GET",    "/v1/hosts/x",             None,         "tenant_b", 200),
    ("GET",    "/v1/hosts/x",             None,         "host_x",   200),
    ("GET",    "/v1/hosts/x",             None,         "host_y",   404),
    ("GET",    "/v1/hosts/{x}",           None,         "host_x",   200),
    ("GET",    "/v1/hosts/{x}",           None,         "host_y",   404),
    ("DELETE", "/v1/hosts/z",             None,         "admin",    204),
    ("DELETE", "/v1/hosts/x",             None,         "admin",    409),
    ("DELETE", "/v1/hosts/z",             None,         "tenant_a", 403),
    ("DELETE", "/v1/hosts/z",             None,         "tenant_b", 403),
    ("DELETE", "/v1/hosts/z",             None,         "host_x",   403),
    ("DELETE", "/v1/hosts/x",             None,         "host_x",   403),
    ("DELETE", "/v1/hosts/z",             None,         "host_y",   403),
    # --- what agents use: a host's own snapshot and reports; never a tenant's business --------
    ("GET",    "/v1/hosts/x/snapshot",    None,         "admin",    200),
    ("GET",    "/v1/hosts/x/snapshot",    None,         "tenant_a", 403),
    ("GET",    "/v1/hosts/x/snapshot",    None,         "tenant_b", 403),
    ("GET",    "/v1/hosts/x/snapshot",    None,         "host_x",   200),
    ("GET",    "/v1/hosts/x/snapshot",    None,         "host_y",   404),
    ("GET",    "/v1/hosts/{x}/snapshot",  None,         "host_y",   404),
    ("GET",    f"/v1/hosts/x/snapshot?{LATER}", None,   "admin",    204),
    ("GET",    f"/v1/hosts/x/snapshot?{LATER}", None,   "tenant_a", 403),
    ("GET",    f"/v1/hosts/x/snapshot?{LATER}", None,   "host_x",   204),
    ("GET",    f"/v1/hosts/x/snapshot?{LATER}", None,   "host_y",   404),
    ("GET",    "/v1/hosts/x/snapshot/stream", None,     "admin",    200),
    ("GET",    "/v1/hosts/x/snapshot/stream", None,     "tenant_a", 403),
    ("GET",    "/v1/hosts/x/snapshot/stream", None,     "tenant_b", 403),
    ("GET",    "/v1/hosts/x/snapshot/stream", None,     "host_x",   200),
    ("GET",    f"/v1/hosts/x/snapshot/stream?{LATER}", None, "host_x", 200),
    ("GET",    "/v1/hosts/x/snapshot/stream", None,     "host_y",   404),
    ("POST",   "/v1/hosts/x/report",      REPORT,       "admin",    200),
    ("POST",   "/v1/hosts/x/report",      REPORT,       "tenant_a", 403),
    ("POST",   "/v1/hosts/x/report",      REPORT,       "tenant_b", 403),
    ("POST",   "/v1/hosts/x/report",      REPORT,       "host_x",   200),
    ("POST",   "/v1/hosts/x/report",      REPORT,       "host_y",   404),
    ("POST",   "/v1/hosts/y/report",      REPORT,       "host_x",   404),
    ("POST",   "/v1/hosts/y/report",      REPORT,       "host_y",   200),
    # --- nodes: tenants in their own networks (on any host); hosts read the nodes they run ----
    ("POST",   "/v1/nodes",               NODE_IN_NA,   "admin",    201),
    ("POST",   "/v1/nodes",               NODE_IN_NA,   "tenant_a", 201),
    ("POST",   "/v1/nodes",               NODE_IN_NA,   "tenant_b", 404),
    ("POST",   "/v1/nodes",               NODE_IN_NB,   "tenant_a", 404),
    ("POST",   "/v1/nodes",               NODE_IN_NB,   "tenant_b", 201),
    ("POST",   "/v1/nodes",               NODE_IN_NA,   "host_x",   403),
    ("POST",   "/v1/nodes",               NODE_IN_NA,   "host_y",   403),
    ("GET",    "/v1/nodes",               None,         "admin",    200),
    ("GET",    "/v1/nodes",               None,         "tenant_a", 200),
    ("GET",    "/v1/nodes",               None,         "tenant_b", 200),
    ("GET",    "/v1/nodes",               None,         "host_x",   200),
    ("GET",    "/v1/nodes",               None,         "host_y",   200),
    ("GET",    "/v1/nodes?network=a/na",  None,         "tenant_a", 200),
    ("GET",    "/v1/nodes?network=a/na",  None,         "tenant_b", 404),
    ("GET",    "/v1/nodes?network=a/na",  None,         "host_x",   200),
    ("GET",    "/v1/nodes?network=b/nb",  None,         "host_x",   404),
    ("GET",    "/v1/nodes?network=b/nb",  None,         "host_y",   200),
    ("GET",    "/v1/nodes?host=y",        None,         "admin",    200),
    ("GET",    "/v1/nodes?host=y",        None,         "tenant_a", 200),
    ("GET",    "/v1/nodes?host=y",        None,         "host_x",   404),
    ("GET",    "/v1/nodes?host=y",        None,         "host_y",   200),
    ("GET",    "/v1/nodes/a/na/a1",       None,         "admin",    200),
    ("GET",    "/v1/nodes/a/na/a1",       None,         "tenant_a", 200),
    ("GET",    "/v1/nodes/a/na/a1",       None,         "tenant_b", 404),
    ("GET",    "/v1/nodes/a/na/a1",       None,         "host_x",   200),
    ("GET",    "/v1/nodes/a/na/a1",       None,         "host_y",   404),
    ("GET",    "/v1/nodes/{a2}",          None,         "tenant_a", 200),
    ("GET",    "/v1/nodes/{a2}",          None,         "tenant_b", 404),
    ("GET",    "/v1/nodes/{a2}",          None,         "host_x",   404),
    ("GET",    "/v1/nodes/{a2}",          None,         "host_y",   200),
    ("GET",    "/v1/nodes/b/nb/b1",       None,         "tenant_a", 404),
    ("GET",    "/v1/nodes/b/nb/b1",       None,         "host_y",   200),
    ("DELETE", "/v1/nodes/a/na/a1",       None,         "admin",    204),
    ("DELETE", "/v1/nodes/a/na/a1",       None,         "tenant_a", 204),
    ("DELETE", "/v1/nodes/a/na/a1",       None,         "tenant_b", 404),
    ("DELETE", "/v1/nodes/{a1}",          None,         "tenant_b", 404),
    ("DELETE", "/v1/nodes/a/na/a1",       None,         "host_x",   403),
    ("DELETE", "/v1/nodes/a/na/a1",       None,         "host_y",   403),
    # --- resolution: on behalf of a node the caller runs (admins: inspection; no tenant) ------
    ("POST",   "/v1/resolve",             A1_ASKS,      "admin",    200),
    ("POST",   "/v1/resolve",             A1_ASKS,      "tenant_a", 403),
    ("POST",   "/v1/resolve",             A1_ASKS,      "tenant_b", 403),
    ("POST",   "/v1/resolve",             A1_ASKS,      "host_x",   200),
    ("POST",   "/v1/resolve",             A1_ASKS,      "host_y",   404),  # y does not run a1
    ("POST",   "/v1/resolve",             A2_ASKS,      "host_x",   404),
    ("POST",   "/v1/resolve",             A2_ASKS,      "host_y",   200),
    ("POST",   "/v1/resolve",             B1_ASKS,      "tenant_a", 403),
    ("POST",   "/v1/resolve",             B1_ASKS,      "tenant_b", 403),
    ("POST",   "/v1/resolve",             B1_ASKS,      "host_x",   404),  # x has nothing in nb
    ("POST",   "/v1/resolve",             B1_ASKS,      "host_y",   200),
    ("POST",   "/v1/verify",              VERIFY_NA,    "admin",    200),
    ("POST",   "/v1/verify",              VERIFY_NA,    "tenant_a", 403),
    ("POST",   "/v1/verify",              VERIFY_NA,    "tenant_b", 403),
    ("POST",   "/v1/verify",              VERIFY_NA,    "host_x",   200),
    ("POST",   "/v1/verify",              VERIFY_NA,    "host_y",   200),
    ("POST",   "/v1/verify",              VERIFY_NB,    "tenant_a", 403),
    ("POST",   "/v1/verify",              VERIFY_NB,    "host_x",   404),
    ("POST",   "/v1/verify",              VERIFY_NB,    "host_y",   200),
    # --- pools: a tenant's own; hosts read those of networks they run nodes of, change none ---
    ("POST",  "/v1/pools",                               NEW_POOL,     "admin",    201),
    ("POST",  "/v1/pools",                               NEW_POOL,     "tenant_a", 201),
    ("POST",  "/v1/pools",                               NEW_POOL,     "tenant_b", 404),
    ("POST",  "/v1/pools",                               NEW_POOL,     "host_x",   403),
    ("POST",  "/v1/pools",                               NEW_POOL,     "host_y",   403),
    ("GET",   "/v1/pools",                               None,         "admin",    200),
    ("GET",   "/v1/pools",                               None,         "tenant_a", 200),
    ("GET",   "/v1/pools",                               None,         "tenant_b", 200),
    ("GET",   "/v1/pools",                               None,         "host_x",   200),
    ("GET",   "/v1/pools",                               None,         "host_y",   200),
    ("GET",   "/v1/pools/a/na/pa",                       None,         "admin",    200),
    ("GET",   "/v1/pools/a/na/pa",                       None,         "tenant_a", 200),
    ("GET",   "/v1/pools/a/na/pa",                       None,         "tenant_b", 404),
    ("GET",   "/v1/pools/a/na/pa",                       None,         "host_x",   200),
    ("GET",   "/v1/pools/a/na/pa",                       None,         "host_y",   200),
    ("PATCH", "/v1/pools/a/na/pa",                       POOL_HASH,    "admin",    200),
    ("PATCH", "/v1/pools/a/na/pa",                       POOL_HASH,    "tenant_a", 200),
    ("PATCH", "/v1/pools/a/na/pa",                       POOL_HASH,    "tenant_b", 404),
    ("PATCH", "/v1/pools/a/na/pa",                       POOL_HASH,    "host_x",   403),
    ("PATCH", "/v1/pools/a/na/pa",                       POOL_HASH,    "host_y",   403),
    ("DELETE", "/v1/pools/a/na/pa",                       None,         "admin",    204),
    ("DELETE", "/v1/pools/a/na/pa",                       None,         "tenant_a", 204),
    ("DELETE", "/v1/pools/a/na/pa",                       None,         "tenant_b", 404),
    ("DELETE", "/v1/pools/a/na/pa",                       None,         "host_x",   403),
    ("DELETE", "/v1/pools/a/na/pa",                       None,         "host_y",   403),
    ("POST",  "/v1/pool-members?pool=a/na/pa",           ADD_A2,       "admin",    201),
    ("POST",  "/v1/pool-members?pool=a/na/pa",           ADD_A2,       "tenant_a", 201),
    ("POST",  "/v1/pool-members?pool=a/na/pa",           ADD_A2,       "tenant_b", 404),
    ("POST",  "/v1/pool-members?pool=a/na/pa",           ADD_A2,       "host_x",   403),
    ("POST",  "/v1/pool-members?pool=a/na/pa",           ADD_A2,       "host_y",   403),
    ("DELETE", "/v1/pool-members/a1?pool=a/na/pa",        None,         "admin",    200),
    ("DELETE", "/v1/pool-members/a1?pool=a/na/pa",        None,         "tenant_a", 200),
    ("DELETE", "/v1/pool-members/a1?pool=a/na/pa",        None,         "tenant_b", 404),
    ("DELETE", "/v1/pool-members/a1?pool=a/na/pa",        None,         "host_x",   403),
    ("DELETE", "/v1/pool-members/a1?pool=a/na/pa",        None,         "host_y",   403),
    ("POST",  "/v1/hosts/x/health",                      HEALTH_A1,    "admin",    204),
    ("POST",  "/v1/hosts/x/health",                      HEALTH_A1,    "tenant_a", 403),
    ("POST",  "/v1/hosts/x/health",                      HEALTH_A1,    "tenant_b", 403),
    ("POST",  "/v1/hosts/x/health",                      HEALTH_A1,    "host_x",   204),
    ("POST",  "/v1/hosts/x/health",                      HEALTH_A1,    "host_y",   404),
    # --- detection (issue #9): claims from hosts; accept/reject and auto_pools like pools --
    ("POST"  , "/v1/hosts/x/claims"                    , CLAIM_A1    , "admin"   , 200),
    ("POST"  , "/v1/hosts/x/claims"                    , CLAIM_A1    , "tenant_a", 403),
    ("POST"  , "/v1/hosts/x/claims"                    , CLAIM_A1    , "tenant_b", 403),
    ("POST"  , "/v1/hosts/x/claims"                    , CLAIM_A1    , "host_x"  , 200),
    ("POST"  , "/v1/hosts/x/claims"                    , CLAIM_A1    , "host_y"  , 404),
    ("POST"  , "/v1/pools/a/na/pa/accept"              , None        , "admin"   , 409),
    ("POST"  , "/v1/pools/a/na/pa/accept"              , None        , "tenant_a", 409),
    ("POST"  , "/v1/pools/a/na/pa/accept"              , None        , "tenant_b", 404),
    ("POST"  , "/v1/pools/a/na/pa/accept"              , None        , "host_x"  , 403),
    ("POST"  , "/v1/pools/a/na/pa/accept"              , None        , "host_y"  , 403),
    ("POST"  , "/v1/pools/a/na/pa/reject"              , None        , "admin"   , 409),
    ("POST"  , "/v1/pools/a/na/pa/reject"              , None        , "tenant_a", 409),
    ("POST"  , "/v1/pools/a/na/pa/reject"              , None        , "tenant_b", 404),
    ("POST"  , "/v1/pools/a/na/pa/reject"              , None        , "host_x"  , 403),
    ("POST"  , "/v1/pools/a/na/pa/reject"              , None        , "host_y"  , 403),
    ("PATCH" , "/v1/networks/a/na"                     , AUTO_ACCEPT , "admin"   , 200),
    ("PATCH" , "/v1/networks/a/na"                     , AUTO_ACCEPT , "tenant_a", 200),
    ("PATCH" , "/v1/networks/a/na"                     , AUTO_ACCEPT , "tenant_b", 404),
    ("PATCH" , "/v1/networks/a/na"                     , AUTO_ACCEPT , "host_x"  , 403),
    ("PATCH" , "/v1/networks/a/na"                     , AUTO_ACCEPT , "host_y"  , 403),
    # --- edge pools (issue #10): gateways and external networks are the operator's ---------
    ("POST"  , "/v1/externals"                             , NEW_EXT     , "admin"   , 201),
    ("POST"  , "/v1/externals"                             , NEW_EXT     , "tenant_a", 403),
    ("POST"  , "/v1/externals"                             , NEW_EXT     , "tenant_b", 403),
    ("POST"  , "/v1/externals"                             , NEW_EXT     , "host_x"  , 403),
    ("POST"  , "/v1/externals"                             , NEW_EXT     , "host_y"  , 403),
    ("GET"   , "/v1/externals"                             , None        , "admin"   , 200),
    ("GET"   , "/v1/externals"                             , None        , "tenant_a", 200),
    ("GET"   , "/v1/externals"                             , None        , "tenant_b", 200),
    ("GET"   , "/v1/externals"                             , None        , "host_x"  , 403),
    ("GET"   , "/v1/externals"                             , None        , "host_y"  , 403),
    ("DELETE", "/v1/externals/internet"                    , None        , "admin"   , 409),
    ("DELETE", "/v1/externals/internet"                    , None        , "tenant_a", 403),
    ("DELETE", "/v1/externals/internet"                    , None        , "tenant_b", 403),
    ("DELETE", "/v1/externals/internet"                    , None        , "host_x"  , 403),
    ("DELETE", "/v1/externals/internet"                    , None        , "host_y"  , 403),
    ("POST"  , "/v1/edge-pools"                            , NEW_EDGE    , "admin"   , 201),
    ("POST"  , "/v1/edge-pools"                            , NEW_EDGE    , "tenant_a", 201),
    ("POST"  , "/v1/edge-pools"                            , NEW_EDGE    , "tenant_b", 404),
    ("POST"  , "/v1/edge-pools"                            , NEW_EDGE    , "host_x"  , 403),
    ("POST"  , "/v1/edge-pools"                            , NEW_EDGE    , "host_y"  , 403),
    ("GET"   , "/v1/edge-pools"                            , None        , "admin"   , 200),
    ("GET"   , "/v1/edge-pools"                            , None        , "tenant_a", 200),
    ("GET"   , "/v1/edge-pools"                            , None        , "tenant_b", 200),
    ("GET"   , "/v1/edge-pools"                            , None        , "host_x"  , 200),
    ("GET"   , "/v1/edge-pools"                            , None        , "host_y"  , 200),
    ("GET"   , "/v1/edge-pools/a/na/ea"                    , None        , "admin"   , 200),
    ("GET"   , "/v1/edge-pools/a/na/ea"                    , None        , "tenant_a", 200),
    ("GET"   , "/v1/edge-pools/a/na/ea"                    , None        , "tenant_b", 404),
    ("GET"   , "/v1/edge-pools/a/na/ea"                    , None        , "host_x"  , 200),
    ("GET"   , "/v1/edge-pools/a/na/ea"                    , None        , "host_y"  , 200),
    ("PATCH" , "/v1/edge-pools/a/na/ea"                    , EDGE_HASH   , "admin"   , 200),
    ("PATCH" , "/v1/edge-pools/a/na/ea"                    , EDGE_HASH   , "tenant_a", 200),
    ("PATCH" , "/v1/edge-pools/a/na/ea"                    , EDGE_HASH   , "tenant_b", 404),
    ("PATCH" , "/v1/edge-pools/a/na/ea"                    , EDGE_HASH   , "host_x"  , 403),
    ("PATCH" , "/v1/edge-pools/a/na/ea"                    , EDGE_HASH   , "host_y"  , 403),
    ("DELETE", "/v1/edge-pools/a/na/ea"                    , None        , "admin"   , 409),
    ("DELETE", "/v1/edge-pools/a/na/ea"                    , None        , "tenant_a", 409),
    ("DELETE", "/v1/edge-pools/a/na/ea"                    , None        , "tenant_b", 404),
    ("DELETE", "/v1/edge-pools/a/na/ea"                    , None        , "host_x"  , 403),
    ("DELETE", "/v1/edge-pools/a/na/ea"                    , None        , "host_y"  , 403),
    ("POST"  , "/v1/edge-gateways?pool=a/na/ea"            , NEW_GW      , "admin"   , 201),
    ("POST"  , "/v1/edge-gateways?pool=a/na/ea"            , NEW_GW      , "tenant_a", 403),
    ("POST"  , "/v1/edge-gateways?pool=a/na/ea"            , NEW_GW      , "tenant_b", 403),
    ("POST"  , "/v1/edge-gateways?pool=a/na/ea"            , NEW_GW      , "host_x"  , 403),
    ("POST"  , "/v1/edge-gateways?pool=a/na/ea"            , NEW_GW      , "host_y"  , 403),
    ("PATCH" , "/v1/edge-gateways/g1?pool=a/na/ea"         , DRAIN       , "admin"   , 200),
    ("PATCH" , "/v1/edge-gateways/g1?pool=a/na/ea"         , DRAIN       , "tenant_a", 403),
    ("PATCH" , "/v1/edge-gateways/g1?pool=a/na/ea"         , DRAIN       , "tenant_b", 403),
    ("PATCH" , "/v1/edge-gateways/g1?pool=a/na/ea"         , DRAIN       , "host_x"  , 403),
    ("PATCH" , "/v1/edge-gateways/g1?pool=a/na/ea"         , DRAIN       , "host_y"  , 403),
    ("DELETE", "/v1/edge-gateways/g1?pool=a/na/ea"         , None        , "admin"   , 200),
    ("DELETE", "/v1/edge-gateways/g1?pool=a/na/ea"         , None        , "tenant_a", 403),
    ("DELETE", "/v1/edge-gateways/g1?pool=a/na/ea"         , None        , "tenant_b", 403),
    ("DELETE", "/v1/edge-gateways/g1?pool=a/na/ea"         , None        , "host_x"  , 403),
    ("DELETE", "/v1/edge-gateways/g1?pool=a/na/ea"         , None        , "host_y"  , 403),
    # --- gateway health (issue #10): reports from host principals only, each for itself;
    # reading it is the pool's tenant's or an admin's; rebalance as changing the pool --------
    ("POST"  , "/v1/hosts/x/gateways"                      , GW_REPORT   , "admin"   , 403),
    ("POST"  , "/v1/hosts/x/gateways"                      , GW_REPORT   , "tenant_a", 403),
    ("POST"  , "/v1/hosts/x/gateways"                      , GW_REPORT   , "tenant_b", 403),
    ("POST"  , "/v1/hosts/x/gateways"                      , GW_REPORT   , "host_x"  , 200),
    ("POST"  , "/v1/hosts/x/gateways"                      , GW_REPORT   , "host_y"  , 404),
    ("POST"  , "/v1/hosts/x/gateways"                      , GW_COUNTS   , "admin"   , 403),
    ("POST"  , "/v1/hosts/x/gateways"                      , GW_COUNTS   , "tenant_a", 403),
    ("POST"  , "/v1/hosts/x/gateways"                      , GW_COUNTS   , "tenant_b", 403),
    ("POST"  , "/v1/hosts/x/gateways"                      , GW_COUNTS   , "host_x"  , 400),
    ("POST"  , "/v1/hosts/x/gateways"                      , GW_COUNTS   , "host_y"  , 404),
    ("GET"   , "/v1/edge-gateways?pool=a/na/ea"            , None        , "admin"   , 200),
    ("GET"   , "/v1/edge-gateways?pool=a/na/ea"            , None        , "tenant_a", 200),
    ("GET"   , "/v1/edge-gateways?pool=a/na/ea"            , None        , "tenant_b", 404),
    ("GET"   , "/v1/edge-gateways?pool=a/na/ea"            , None        , "host_x"  , 403),
    ("GET"   , "/v1/edge-gateways?pool=a/na/ea"            , None        , "host_y"  , 403),
    ("POST"  , "/v1/edge-pools/a/na/ea/rebalance"          , None        , "admin"   , 200),
    ("POST"  , "/v1/edge-pools/a/na/ea/rebalance"          , None        , "tenant_a", 200),
    ("POST"  , "/v1/edge-pools/a/na/ea/rebalance"          , None        , "tenant_b", 404),
    ("POST"  , "/v1/edge-pools/a/na/ea/rebalance"          , None        , "host_x"  , 403),
    ("POST"  , "/v1/edge-pools/a/na/ea/rebalance"          , None        , "host_y"  , 403),
    ("POST"  , "/v1/routes"                                , NEW_ROUTE   , "admin"   , 201),
    ("POST"  , "/v1/routes"                                , NEW_ROUTE   , "tenant_a", 201),
    ("POST"  , "/v1/routes"                                , NEW_ROUTE   , "tenant_b", 404),
    ("POST"  , "/v1/routes"                                , NEW_ROUTE   , "host_x"  , 403),
    ("POST"  , "/v1/routes"                                , NEW_ROUTE   , "host_y"  , 403),
    ("GET"   , "/v1/routes?network=a/na"                   , None        , "admin"   , 200),
    ("GET"   , "/v1/routes?network=a/na"                   , None        , "tenant_a", 200),
    ("GET"   , "/v1/routes?network=a/na"                   , None        , "tenant_b", 404),
    ("GET"   , "/v1/routes?network=a/na"                   , None        , "host_x"  , 200),
    ("GET"   , "/v1/routes?network=a/na"                   , None        , "host_y"  , 200),
    ("DELETE", "/v1/routes?network=a/na&prefix=30.0.0.0/16"  , None        , "admin"   , 204),
    ("DELETE", "/v1/routes?network=a/na&prefix=30.0.0.0/16"  , None        , "tenant_a", 204),
    ("DELETE", "/v1/routes?network=a/na&prefix=30.0.0.0/16"  , None        , "tenant_b", 404),
    ("DELETE", "/v1/routes?network=a/na&prefix=30.0.0.0/16"  , None        , "host_x"  , 403),
    ("DELETE", "/v1/routes?network=a/na&prefix=30.0.0.0/16"  , None        , "host_y"  , 403),
    # --- firewall rules and public IPs: the tenant's, like its edge pools and nodes --------
    ("POST"  , "/v1/edge-pools/a/na/ea/rules"              , NEW_RULE    , "admin"   , 201),
    ("POST"  , "/v1/edge-pools/a/na/ea/rules"              , NEW_RULE    , "tenant_a", 201),
    ("POST"  , "/v1/edge-pools/a/na/ea/rules"              , NEW_RULE    , "tenant_b", 404),
    ("POST"  , "/v1/edge-pools/a/na/ea/rules"              , NEW_RULE    , "host_x"  , 403),
    ("POST"  , "/v1/edge-pools/a/na/ea/rules"              , NEW_RULE    , "host_y"  , 403),
    ("GET"   , "/v1/edge-pools/a/na/ea/rules"              , None        , "admin"   , 200),
    ("GET"   , "/v1/edge-pools/a/na/ea/rules"              , None        , "tenant_a", 200),
    ("GET"   , "/v1/edge-pools/a/na/ea/rules"              , None        , "tenant_b", 404),
    ("GET"   , "/v1/edge-pools/a/na/ea/rules"              , None        , "host_x"  , 200),
    ("GET"   , "/v1/edge-pools/a/na/ea/rules"              , None        , "host_y"  , 200),
    ("DELETE", f"/v1/edge-pools/a/na/ea/rules/{RULE_ID}"   , None        , "admin"   , 204),
    ("DELETE", f"/v1/edge-pools/a/na/ea/rules/{RULE_ID}"   , None        , "tenant_a", 204),
    ("DELETE", f"/v1/edge-pools/a/na/ea/rules/{RULE_ID}"   , None        , "tenant_b", 404),
    ("DELETE", f"/v1/edge-pools/a/na/ea/rules/{RULE_ID}"   , None        , "host_x"  , 403),
    ("DELETE", f"/v1/edge-pools/a/na/ea/rules/{RULE_ID}"   , None        , "host_y"  , 403),
    ("POST"  , "/v1/nodes/a/na/a2/public-ips"              , NEW_PUBLIC  , "admin"   , 201),
    ("POST"  , "/v1/nodes/a/na/a2/public-ips"              , NEW_PUBLIC  , "tenant_a", 201),
    ("POST"  , "/v1/nodes/a/na/a2/public-ips"              , NEW_PUBLIC  , "tenant_b", 404),
    ("POST"  , "/v1/nodes/a/na/a2/public-ips"              , NEW_PUBLIC  , "host_x"  , 403),
    ("POST"  , "/v1/nodes/a/na/a2/public-ips"              , NEW_PUBLIC  , "host_y"  , 403),
    ("GET"   , "/v1/nodes/a/na/a1/public-ips"              , None        , "admin"   , 200),
    ("GET"   , "/v1/nodes/a/na/a1/public-ips"              , None        , "tenant_a", 200),
    ("GET"   , "/v1/nodes/a/na/a1/public-ips"              , None        , "tenant_b", 404),
    ("GET"   , "/v1/nodes/a/na/a1/public-ips"              , None        , "host_x"  , 200),
    ("GET"   , "/v1/nodes/a/na/a1/public-ips"              , None        , "host_y"  , 404),
    ("DELETE", "/v1/nodes/a/na/a1/public-ips/30.0.100.50"  , None        , "admin"   , 204),
    ("DELETE", "/v1/nodes/a/na/a1/public-ips/30.0.100.50"  , None        , "tenant_a", 204),
    ("DELETE", "/v1/nodes/a/na/a1/public-ips/30.0.100.50"  , None        , "tenant_b", 404),
    ("DELETE", "/v1/nodes/a/na/a1/public-ips/30.0.100.50"  , None        , "host_x"  , 403),
    ("DELETE", "/v1/nodes/a/na/a1/public-ips/30.0.100.50"  , None        , "host_y"  , 403),
    # --- status is the operator's; events by visibility, none for hosts -----------------------
    ("GET",    "/v1/status",              None,         "admin",    200),
    ("GET",    "/v1/status",              None,         "tenant_a", 403),
    ("GET",    "/v1/status",              None,         "tenant_b", 403),
    ("GET",    "/v1/status",              None,         "host_x",   403),
    ("GET",    "/v1/status",              None,         "host_y",   403),
    ("GET",    "/v1/events",              None,         "admin",    200),
    ("GET",    "/v1/events",              None,         "tenant_a", 200),
    ("GET",    "/v1/events",              None,         "tenant_b", 200),
    ("GET",    "/v1/events",              None,         "host_x",   403),
    ("GET",    "/v1/events",              None,         "host_y",   403),
    ("GET",    "/v1/events/stream",       None,         "admin",    200),
    ("GET",    "/v1/events/stream",       None,         "tenant_a", 200),
    ("GET",    "/v1/events/stream",       None,         "tenant_b", 200),
    ("GET",    "/v1/events/stream",       None,         "host_x",   403),
    ("GET",    "/v1/events/stream",       None,         "host_y",   403),
]
# fmt: on

# Whoever has no token, or one the manager never issued, gets 401 on every request above.
STRANGERS = ("none", "garbage")


def distinct_requests(rows: list[Row]) -> list[tuple[str, str, Body]]:
    seen: dict[str, tuple[str, str, Body]] = {}
    for method, path, body, _, _ in rows:
        seen.setdefault(f"{method} {path} {body!r}", (method, path, body))
    return list(seen.values())


ANONYMOUS: list[Row] = [
    (method, path, body, stranger, 401)
    for method, path, body in distinct_requests(MATRIX)
    for stranger in STRANGERS
]
PRINCIPALS = ("admin", "tenant_a", "tenant_b", "host_x", "host_y", *STRANGERS)


def row_id(row: Row) -> str:
    method, path, body, who, status = row
    what = "" if body is None else f" {body.get('name') or body.get('requester') or ''}"
    return f"{who} {method} {path}{what} -> {status}"


@pytest.fixture(scope="module")
def template() -> Iterator[tuple[Store, World]]:
    store = Store("sqlite://")
    store.migrate()
    world = build_world(store)
    with store.write(ADMIN_PRINCIPAL, NOW) as tx:  # edge objects (issue #10)
        externals.create(tx, "internet", "30.0.0.0/16")
        hosts.create(tx, "gw", prefix_at(1, rack=9), role="edge", external="internet")
        edge_pools.create(tx, "ea", "a/na", {})
        edge_pools.add_gateway(tx, "a/na/ea", "g1", "gw", "30.0.100.1")
        routes.add(tx, "a/na", "30.0.0.0/16", "ea")
        rule = edge_rules.add(tx, "a/na/ea", "egress", "allow")
        tx.connection.execute(
            update(tables.edge_rules).where(tables.edge_rules.c.id == rule.id).values(id=RULE_ID)
        )
        public_ips.add(tx, "a/na/a1", "ea", "30.0.100.50")
    yield store, world
    store.dispose()


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[Context, TestClient]]:
    """One app for the module; each row points its context at a fresh copy of the world."""
    context = Context(Store("sqlite://"), clock=Clock(), poll_interval=0.02)
    with TestClient(create_app(context), raise_server_exceptions=False) as client:
        yield context, client


@pytest.fixture
def call(template: tuple[Store, World], shared: tuple[Context, TestClient]) -> Iterator[Any]:
    """`call(method, path, body, who)`: the response, on a fresh copy of the world."""
    source, world = template
    context, client = shared
    ids = {
        name: getattr(world, name).id
        for name in ("a", "b", "x", "y", "z", "na", "nb", "empty", "a1", "a2", "b1")
    }
    with source.read(ADMIN_PRINCIPAL, NOW) as tx:
        ids["g1"] = edge_pools.detail(tx, "a/na/ea").gateways[0].id
    headers = {
        **{who: bearer(token) for who, token in world.tokens.items()},
        "none": {},
        "garbage": bearer("onm_admin_" + "x" * 43),
    }
    context.store.dispose()
    context.store = clone(source)
    context.clock = Clock()
    context.limiter = Limiter()  # rows are independent: no row spends another's budget

    def request(method: str, path: str, body: Body, who: str) -> tuple[int, str]:
        target = path.format(**ids)
        streamed = target.partition("?")[0].endswith("/stream")
        if streamed and who not in STRANGERS:
            app = client.app
            assert isinstance(app, FastAPI)
            status, chunk = first_streamed_chunk(app, target, world.tokens[who])
            return status, chunk.decode()
        if body is not None:  # ids in bodies too (a gateway report names its gateways by id)
            body = json.loads(json.dumps(body).replace("{g1}", ids["g1"]))
        response = client.request(method, target, json=body, headers=headers[who])
        return response.status_code, response.text

    yield request


@pytest.mark.parametrize("row", MATRIX + ANONYMOUS, ids=row_id)
def test_matrix(call: Any, row: Row) -> None:
    method, path, body, who, expected = row
    status, text = call(method, path, body, who)
    assert status == expected, text
    if status >= 400:
        assert '"error"' in text and "Traceback" not in text


def test_matrix_covers_every_route_for_every_principal() -> None:
    app = create_app(Context(Store("sqlite://")))
    routes = [route for route in app.routes if isinstance(route, APIRoute)]
    missing = []
    for route in routes:
        for method in route.methods or ():
            for who in PRINCIPALS:
                if not any(
                    m == method and w == who and route.path_regex.match(p.partition("?")[0])
                    for m, p, _, w, _ in MATRIX + ANONYMOUS
                ):
                    missing.append(f"{who} {method} {route.path}")
    assert missing == []


def test_matrix_has_both_outcomes_for_every_principal() -> None:
    for who in ("tenant_a", "tenant_b", "host_x", "host_y"):
        statuses = {status for _, _, _, w, status in MATRIX if w == who}
        assert statuses >= {200, 403, 404}, who
    assert {status for *_, w, status in MATRIX if w == "admin"} >= {200, 201, 204, 400, 404, 409}


# --- what each caller's lists contain ---------------------------------------------------------


def names(call: Any, path: str, who: str) -> list[str]:
    status, text = call("GET", path, None, who)
    assert status == 200, text
    return sorted(item["name"] for item in json.loads(text))


@pytest.mark.parametrize(
    ("who", "path", "expected"),
    [
        ("admin", "/v1/tenants", ["a", "b", "spare"]),
        ("tenant_a", "/v1/tenants", ["a"]),
        ("tenant_b", "/v1/tenants", ["b"]),
        ("admin", "/v1/networks", ["empty", "na", "nb"]),
        ("tenant_a", "/v1/networks", ["empty", "na"]),
        ("tenant_b", "/v1/networks", ["nb"]),
        ("admin", "/v1/nodes", ["a1", "a2", "b1"]),
        ("tenant_a", "/v1/nodes", ["a1", "a2"]),
        ("tenant_b", "/v1/nodes", ["b1"]),
        ("tenant_a", "/v1/nodes?host=y", ["a2"]),
        ("tenant_b", "/v1/nodes?host=x", []),
        ("host_x", "/v1/nodes", ["a1"]),
        ("host_y", "/v1/nodes", ["a2", "b1"]),
        ("host_y", "/v1/nodes?network=a/na", ["a2"]),
        ("admin", "/v1/hosts", ["gw", "x", "y", "z"]),
        ("tenant_a", "/v1/hosts", ["gw", "x", "y", "z"]),
        ("host_x", "/v1/hosts", ["x"]),
        ("host_y", "/v1/hosts", ["y"]),
    ],
)
def test_lists_show_only_what_the_caller_may_see(
    call: Any, who: str, path: str, expected: list[str]
) -> None:
    assert names(call, path, who) == expected


@pytest.mark.parametrize("who", ["tenant_a", "tenant_b"])
def test_tenant_events_are_its_own(call: Any, template: tuple[Store, World], who: str) -> None:
    _, world = template
    tenant = world.a if who == "tenant_a" else world.b
    status, text = call("GET", "/v1/events?after=0&limit=1000", None, who)
    assert status == 200
    found = json.loads(text)
    assert found, "the world's creation is visible to its tenants"
    assert {e["tenant_id"] for e in found} == {tenant.id}


def test_resolution_by_host_is_remembered_only_for_that_host(call: Any) -> None:
    assert call("POST", "/v1/resolve", A1_ASKS, "host_x")[0] == 200
    x = json.loads(call("GET", "/v1/hosts/x/snapshot", None, "host_x")[1])
    y = json.loads(call("GET", "/v1/hosts/y/snapshot", None, "host_y")[1])
    assert [g["target_ip"] for g in x["grants"]] == ["10.0.0.12"]
    assert y["grants"] == []


# --- what each caller sees of the substrate (issue #7 defect 8) -------------------------------

HOST_PREFIXES = [prefix_at(node) for node in (1, 2, 3)] + [prefix_at(1, rack=9)]  # gw: edge
PUBLIC_HOST_FIELDS = {"id", "name", "location", "created_at"}


def hosts_seen(call: Any, path: str, who: str) -> list[dict[str, Any]]:
    status, text = call("GET", path, None, who)
    assert status == 200, text
    found = json.loads(text)
    return found if isinstance(found, list) else [found]


@pytest.mark.parametrize("who", ["tenant_a", "tenant_b"])
@pytest.mark.parametrize("path", ["/v1/hosts", "/v1/hosts/x", "/v1/hosts/{y}"])
def test_tenants_see_hosts_without_their_substrate_prefix(call: Any, path: str, who: str) -> None:
    for host in hosts_seen(call, path, who):
        assert set(host) == PUBLIC_HOST_FIELDS, host
        assert set(host["location"]) == {"locale", "area", "rack", "node"}


@pytest.mark.parametrize("who", ["admin", "host_x"])
def test_admins_and_hosts_see_the_prefix(call: Any, who: str) -> None:
    for path in ("/v1/hosts", "/v1/hosts/x"):
        for host in hosts_seen(call, path, who):
            assert set(host) == PUBLIC_HOST_FIELDS | {"prefix", "role", "external_id"}
            assert host["prefix"] in HOST_PREFIXES


@pytest.mark.parametrize("who", ["tenant_a", "tenant_b"])
def test_nothing_a_tenant_may_read_names_a_host_prefix(call: Any, who: str) -> None:
    """Every GET the matrix lets this tenant make: no host /64 anywhere in the answers."""
    readable = {
        path for method, path, _, w, status in MATRIX if (method, w, status) == ("GET", who, 200)
    }
    assert {"/v1/hosts", "/v1/nodes", "/v1/events?after=0&limit=1000"} & readable
    for path in sorted(readable | {"/v1/events?after=0&limit=1000"}):
        if path.startswith("/v1/events/stream"):
            continue  # the same events as the list, as a stream
        status, text = call("GET", path, None, who)
        assert status == 200, (path, text)
        for prefix in HOST_PREFIXES:
            assert prefix.removesuffix("/64") not in text, (path, prefix)
