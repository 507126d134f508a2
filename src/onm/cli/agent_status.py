"""`onm agent status --metrics HOST:PORT`: what a running agent's datapath is doing, read from
its Prometheus endpoint (the one way in an operator already has; nothing is asked of bpf()).

`summary` is pure: the exposition text in, a `Status` out. What an agent on userspace does not
export (programs, maps, the kernel's counters) is empty, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from onm.errors import InvalidInputError


@dataclass(frozen=True)
class Program:
    program: str
    interface: str
    id: int
    """The kernel's program id (`bpftool prog show id ID`)."""


@dataclass(frozen=True)
class Status:
    datapath: str
    programs: tuple[Program, ...] = ()
    map_entries: dict[str, int] = field(default_factory=dict)
    """Entries the agent wrote, by map."""
    kernel_drops: dict[str, int] = field(default_factory=dict)
    """What the programs dropped, by reason (not zero only)."""
    slow_path: dict[str, int] = field(default_factory=dict)
    """What the programs handed to the userspace core, by reason (not zero only)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "datapath": self.datapath,
            "programs": [vars(p) for p in self.programs],
            "map_entries": self.map_entries,
            "kernel_drops": self.kernel_drops,
            "slow_path": self.slow_path,
        }

    def lines(self) -> list[str]:
        def counts(values: dict[str, int]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(values.items())) or "none"

        attached = [f"{p.program} (id {p.id}) on {p.interface}" for p in self.programs]
        shown = [f"datapath: {self.datapath}"]
        if self.datapath == "ebpf":
            shown += [
                f"programs: {'; '.join(attached) or 'none'}",
                f"map entries: {counts(self.map_entries)}",
                f"kernel drops: {counts(self.kernel_drops)}",
                f"slow path: {counts(self.slow_path)}",
            ]
        return shown


def summary(text: str) -> Status:
    """The status an agent's /metrics text says (it must carry `onm_agent_datapath`)."""
    datapath = None
    programs: list[Program] = []
    entries: dict[str, int] = {}
    drops: dict[str, int] = {}
    slow: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels, value = sample.labels, int(sample.value)
            match sample.name:
                case "onm_agent_datapath" if value:
                    datapath = labels["datapath"]
                case "onm_agent_ebpf_program" if value:
                    programs.append(
                        Program(labels["program"], labels["interface"], int(labels["id"]))
                    )
                case "onm_agent_ebpf_map_entries":
                    entries[labels["map"]] = value
                case "onm_agent_ebpf_drops_total" if value:
                    drops[labels["reason"]] = value
                case "onm_agent_ebpf_slowpath_total" if value:
                    slow[labels["reason"]] = value
    if datapath is None:
        raise InvalidInputError("metrics", "no onm_agent_datapath sample: not an onm agent's")
    programs.sort(key=lambda p: (p.interface, p.program))
    return Status(datapath, tuple(programs), entries, drops, slow)
