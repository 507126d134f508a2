"""`onm agent run`: wire the core, the manager link, the datapath and the metrics together."""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from onm.agent.core import AgentCore
from onm.agent.datapath.choice import DATAPATHS, DEFAULT, open_datapath
from onm.agent.datapath.ebpf.pins import DEFAULT_BASE
from onm.agent.io.interfaces import interface_info
from onm.agent.link import Inbox, ManagerLink
from onm.agent.metrics import Metrics, edge_published, serve
from onm.api.client import Client, read_token_file
from onm.api.listen import parse_listen
from onm.errors import InvalidInputError

log = logging.getLogger("onm.agent")

PUBLISH_INTERVAL = 0.5
"""Seconds between metric snapshots: `manager_connected` follows the link within this."""


@dataclass(frozen=True)
class AgentConfig:
    manager: str
    host: str
    token_file: Path
    substrate_if: str
    datapath: str = DEFAULT
    netns: str | None = None
    metrics: str | None = None
    state_dir: Path | None = None
    external_if: str = "ext0"
    """On an edge host: the interface on the external network."""
    bpf_objects: Path | None = None
    """Where node_ingress.o and substrate_ingress.o are (None: build/bpf of the checkout)."""
    bpf_pins: Path = DEFAULT_BASE
    """Where eBPF agents pin maps and programs, one directory per host (`ebpf.pins`)."""


def run(config: AgentConfig) -> None:
    if config.datapath not in DATAPATHS:
        raise InvalidInputError("datapath", f"{config.datapath!r} is not one of {DATAPATHS}")
    token = read_token_file(config.token_file)
    substrate = interface_info(config.substrate_if, netns=config.netns)
    core = AgentCore(substrate.mtu)
    inbox = Inbox()
    link = ManagerLink(lambda: Client(config.manager, token), config.host, inbox, config.state_dir)
    datapath = open_datapath(
        config.datapath,
        core,
        link,
        config.substrate_if,
        config.netns,
        config.external_if,
        config.bpf_objects,
        config.host,
        config.bpf_pins,
    )
    metrics = Metrics(datapath.edge.firewall_counts, datapath.kernel, datapath.name)
    link.firewall = datapath.edge.firewall_counts  # the gateway reports carry them too
    if config.metrics:
        host, port = parse_listen(config.metrics)
        serve(metrics, host, port)
    stop = threading.Event()

    def publish() -> None:
        while not stop.wait(PUBLISH_INTERVAL):
            edge = edge_published(
                core.egress, core.gateway.tenants_now(), datapath.edge.conntrack()
            )
            metrics.publish(
                core.counters, len(core.tables.ports), link.applied_revision, link.connected, edge
            )

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=publish, name="onm-metrics", daemon=True).start()
    log.info(
        "agent for host %s: %s datapath, substrate %s (mtu %d)%s, manager %s",
        config.host,
        datapath.name,
        config.substrate_if,
        substrate.mtu,
        f" in netns {config.netns}" if config.netns else "",
        config.manager,
    )
    link.start()
    started = time.monotonic()
    try:
        datapath.run(stop)
    finally:
        link.stop()
        datapath.close()
        log.info("stopped after %.0f s", time.monotonic() - started)
