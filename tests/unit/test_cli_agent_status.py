"""onm.cli.agent_status: an agent's /metrics text read back as its datapath's status."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from onm.agent.counters import Counters
from onm.agent.datapath.ebpf.layout import SlowPath
from onm.agent.metrics import Metrics
from onm.cli.agent_status import Program, summary
from onm.errors import InvalidInputError
from onm.packet.drop import DropReason


class _Kernel:
    def drops(self) -> dict[DropReason, int]:
        return {DropReason.TTL_EXPIRED: 4}

    def slow_paths(self) -> dict[SlowPath, int]:
        return {SlowPath.ARP: 3, SlowPath.NO_MAPPING: 1}

    def programs(self) -> list[tuple[str, str, int]]:
        return [("onm_substrate_ingress", "sub0", 7), ("onm_node_ingress", "p1", 9)]

    def map_entries(self) -> dict[str, int]:
        return {"onm_mappings": 2, "onm_ports": 1}


def _text(metrics: Metrics) -> str:
    metrics.publish(Counters(), ports=1, revision=1, connected=True)
    registry = CollectorRegistry()
    registry.register(metrics)
    return generate_latest(registry).decode()


def test_an_ebpf_agent_shows_its_programs_maps_and_the_kernels_counters() -> None:
    status = summary(_text(Metrics(kernel=_Kernel(), datapath="ebpf")))
    assert status.datapath == "ebpf"
    assert status.programs == (
        Program("onm_node_ingress", "p1", 9),
        Program("onm_substrate_ingress", "sub0", 7),
    )
    assert status.map_entries == {"onm_mappings": 2, "onm_ports": 1}
    assert status.kernel_drops == {"ttl_expired": 4}
    assert status.slow_path == {"arp": 3, "no_mapping": 1}
    assert "programs: onm_node_ingress (id 9) on p1; onm_substrate_ingress (id 7) on sub0" in (
        status.lines()
    )
    assert status.as_json()["programs"][0] == {
        "program": "onm_node_ingress",
        "interface": "p1",
        "id": 9,
    }


def test_a_userspace_agent_shows_only_its_datapath() -> None:
    status = summary(_text(Metrics()))
    assert status.lines() == ["datapath: userspace"]
    assert status.as_json()["programs"] == []


def test_text_from_something_else_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidInputError, match="metrics"):
        summary("# HELP other_total x\n# TYPE other_total counter\nother_total 1.0\n")
