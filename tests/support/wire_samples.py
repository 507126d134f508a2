"""Sample wire documents (the manager's JSON as an agent receives it), shared by the wire
decoder's tests, the manager link's tests and the fuzz seeds: one host, one network, one
resident; each call returns a fresh copy to mutate."""

from __future__ import annotations

from typing import Any

SUBSTRATE = "fd00:0:102:300:0:7:a00:2"
"""A resident's substrate address inside the sample host's /64 (network id 7, 10.0.0.2)."""


def snapshot_document(substrate: str = SUBSTRATE) -> dict[str, Any]:
    """A host snapshot (`SnapshotOut`) at revision 3."""
    return {
        "revision": 3,
        "host": {
            "id": "h-1",
            "name": "host-a",
            "location": {"locale": 0, "area": 1, "rack": 2, "node": 3},
            "prefix": "fd00:0:102:300::/64",
            "created_at": "2026-01-01T00:00:00Z",
        },
        "networks": [
            {
                "id": "n-1",
                "name": "blue",
                "tenant_id": "t-1",
                "vni": 7,
                "cidrs": ["10.0.0.0/24"],
                "encoding": "siit",
                "gateway": "10.0.0.254",
                "gateways": ["10.0.0.254"],
                "created_at": "2026-01-01T00:00:00Z",
            }
        ],
        "nodes": [],
        "residents": [
            {
                "network_id": "n-1",
                "ip": "10.0.0.2",
                "substrate_address": substrate,
                "mac": "02:00:00:00:00:02",
            }
        ],
        "grants": [],
    }


def resolution_document(substrate: str = SUBSTRATE) -> dict[str, Any]:
    """A resolution answer (`ResolutionOut`) for 10.0.0.2 in the sample network."""
    return {
        "network_id": "n-1",
        "requester_id": "nd-1",
        "target_ip": "10.0.0.2",
        "target_id": "nd-2",
        "substrate_address": substrate,
        "mac": "02:00:00:00:00:02",
        "expires_at": "2026-01-01T00:00:00Z",
    }
