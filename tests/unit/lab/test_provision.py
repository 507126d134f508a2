"""Tests for onm.lab.provision against a real manager process (no namespaces, no root): the
edge example's externals, edge hosts, edge pool, gateways and route are made once, kept on a
second run, and a manager that disagrees with the file is a clear error."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from onm.api.client import Client
from onm.errors import ConflictError
from onm.lab.provision import provision
from onm.lab.topology import Topology, load
from support.manager import ManagerProcess, running_manager

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[ManagerProcess]:
    with running_manager(tmp_path / "manager") as started:
        yield started


@pytest.fixture
def client(manager: ManagerProcess) -> Iterator[Client]:
    with Client(manager.url, manager.admin_token) as admin:
        yield admin


def run(client: Client, topology: Topology, state_dir: Path) -> list[str]:
    said: list[str] = []
    provision(client, topology, state_dir, said.append)
    return said


def test_the_edge_example_is_made_once_and_kept(client: Client, tmp_path: Path) -> None:
    topology = load(EXAMPLES / "edge.yaml")
    said = run(client, topology, tmp_path / "lab")
    assert "external network internet (30.0.0.0/16)" in said
    assert said.index("external network internet (30.0.0.0/16)") < next(
        i for i, line in enumerate(said) if line.startswith("host ")
    )  # externals before the hosts on them

    [internet] = client.list_externals()
    assert (internet.name, internet.cidr) == ("internet", "30.0.0.0/16")
    hosts = {h.name: h for h in client.list_hosts()}
    for name in ("gw1", "gw2", "gw3"):
        host = hosts[name]
        assert getattr(host, "role", None) == "edge"
        assert getattr(host, "external_id", None) == internet.id
    assert getattr(hosts["h1"], "role", None) == "node"
    [pool] = client.list_edge_pools()
    assert (pool.name, pool.network, pool.nat, pool.hash_fields) == (
        "egress",
        "znet",
        "snat",
        ["src", "dst"],
    )
    assert pool.choice == "hash" and pool.mode == "direct"  # the manager's defaults
    by_host = {h.id: h.name for h in hosts.values()}
    assert [(g.name, by_host[g.host_id], g.external_ip) for g in pool.gateways] == [
        ("e1", "gw1", "30.0.100.1"),
        ("e2", "gw2", "30.0.100.2"),
        ("e3", "gw3", "30.0.100.3"),
    ]
    [route] = client.list_routes(pool.network_id)
    assert (route.prefix, route.edge_pool_id) == ("0.0.0.0/0", pool.id)

    assert run(client, topology, tmp_path / "lab") == []  # a second time: nothing to do
    assert [p.id for p in client.list_edge_pools()] == [pool.id]
    assert len(client.list_routes(pool.network_id)) == 1


def test_a_setting_follows_the_file_and_a_missing_gateway_comes_back(
    client: Client, tmp_path: Path
) -> None:
    topology = load(EXAMPLES / "edge.yaml")
    run(client, topology, tmp_path / "lab")
    [pool] = client.list_edge_pools()
    client.update_edge_pool(pool.id, {"hash": ["src"], "choice": "random"})
    client.remove_gateway(pool.id, "e2")
    said = run(client, topology, tmp_path / "lab")
    assert said == [
        "edge pool egress: settings as the file says",
        "edge pool egress: gateway e2 on gw2 (30.0.100.2)",
    ]
    [again] = client.list_edge_pools()
    assert again.hash_fields == ["src", "dst"]
    assert again.choice == "random"  # the file does not say: left as it is
    assert [g.name for g in again.gateways] == ["e1", "e2", "e3"]


def test_a_manager_that_disagrees_is_an_error(client: Client, tmp_path: Path) -> None:
    topology = load(EXAMPLES / "edge.yaml")
    run(client, topology, tmp_path / "lab")
    [pool] = client.list_edge_pools()
    client.update_gateway(pool.id, "e1", external_ip="30.0.100.9")
    with pytest.raises(
        ConflictError, match=re.escape("gateway e1 of edge pool egress is 30.0.100.9")
    ):
        run(client, topology, tmp_path / "lab")
    client.update_gateway(pool.id, "e1", external_ip="30.0.100.1")

    other = client.create_edge_pool("other", pool.network_id, {})
    client.delete_route(pool.network_id, "0.0.0.0/0")
    client.add_route(pool.network_id, "0.0.0.0/0", other.id)
    with pytest.raises(
        ConflictError, match=re.escape("route 0.0.0.0/0 of network znet goes through")
    ):
        run(client, topology, tmp_path / "lab")


def test_an_external_with_another_cidr_is_an_error(client: Client, tmp_path: Path) -> None:
    client.create_external("internet", "40.0.0.0/16")
    topology = load(EXAMPLES / "edge.yaml")
    with pytest.raises(ConflictError, match=re.escape("external network internet is 40.0.0.0/16")):
        run(client, topology, tmp_path / "lab")


def test_a_host_in_another_role_is_an_error(client: Client, tmp_path: Path) -> None:
    topology = load(EXAMPLES / "edge.yaml")
    run(client, topology, tmp_path / "lab")
    gw3 = next(h for h in client.list_hosts() if h.name == "gw3")
    [pool] = client.list_edge_pools()
    client.remove_gateway(pool.id, "e3")
    client.delete_host(gw3.id)
    client.create_host("gw3", prefix=str(topology.host("gw3").prefix))  # a node host now
    with pytest.raises(ConflictError, match="host gw3 is in role node in the lab's manager"):
        run(client, topology, tmp_path / "lab")
