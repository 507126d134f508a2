"""Pins against the kernel (onm.agent.datapath.ebpf.pinning): one shared map set, pinned,
adopted by the next load with its entries read back, replaced when its layout differs, and
removed with the programs by `onm agent cleanup`.

Pins go under a bpffs directory of this test's own (/sys/fs/bpf/onm-test-pn<pid>), tc hooks in
a namespace of its own; both are removed by name however a test ends.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP

from onm.agent.datapath.ebpf import layout, pinning
from onm.agent.datapath.ebpf.libbpf import BPFFS, TC_ACT_SHOT, BpfObject, TcAttachPoint, TcHook
from onm.agent.datapath.ebpf.maps import DatapathMaps
from onm.agent.datapath.ebpf.pinning import NODE_PROGRAM, SUBSTRATE_PROGRAM
from onm.agent.datapath.ebpf.pins import MAPS_DIR, PROGRAMS_DIR, Action, pin_dir, plan, wanted
from onm.agent.io.netns import run_in_netns_value
from onm.packet.drop import DropReason
from support.bpf_harness import BUILD, NODE, PORT_MAC, TARGET_MAC, ethernet

TAG = f"{os.environ.get('ONM_TEST_LAB_PREFIX', '')}pins{os.getpid()}"
NODE_O = BUILD / f"{NODE_PROGRAM[0]}.o"
SUB_O = BUILD / f"{SUBSTRATE_PROGRAM[0]}.o"


@pytest.fixture
def base() -> Iterator[Path]:
    where = BPFFS / f"onm-test-{TAG}"
    pinning.ensure_bpffs(where)
    try:
        yield where
    finally:
        for agent in list(where.iterdir()) if where.is_dir() else []:
            pinning.remove(agent)
        if where.is_dir():
            where.rmdir()


def _loaded(reuse: dict[str, int] | None = None) -> tuple[BpfObject, BpfObject]:
    node = BpfObject(NODE_O, reuse)
    shared = {spec.name: node.map(spec.name).fd for spec in layout.MAPS}
    return node, BpfObject(SUB_O, shared)


def _port(ifindex: int) -> tuple[layout.PortKey, layout.PortValue]:
    return layout.PortKey(ifindex), layout.PortValue(vni=7)


def test_both_objects_share_one_map_set_pinned_then_adopted_with_entries(base: Path) -> None:
    directory = pin_dir(base, "r", None)
    node, sub = _loaded()
    try:
        key, value = _port(42)
        DatapathMaps(node)["onm_ports"].update(key, value)
        # what one object writes the other's program sees: they are one map
        assert DatapathMaps(sub)["onm_ports"].entries() == {bytes(key): bytes(value)}
        pinning.pin_maps(directory, DatapathMaps(node))
        pinning.pin_programs(directory, (node.program(NODE_PROGRAM[1]),))
    finally:
        node.close()
        sub.close()
    # the objects are gone; the pins keep the maps and the program
    assert sorted(p.name for p in (directory / PROGRAMS_DIR).iterdir()) == [NODE_PROGRAM[1]]
    found = pinning.found(directory)
    assert plan(found, wanted()).action is Action.ADOPT
    fds = pinning.opened(directory, wanted())
    try:
        node, sub = _loaded(fds)
    finally:
        for fd in fds.values():
            os.close(fd)
    try:
        assert DatapathMaps(node)["onm_ports"].entries() == {bytes(key): bytes(value)}
        assert DatapathMaps(sub)["onm_ports"].entries() == {bytes(key): bytes(value)}
        pinning.pin_programs(directory, (node.program(NODE_PROGRAM[1]),))  # in place of the old
    finally:
        node.close()
        sub.close()
    assert pinning.remove(directory)
    assert not directory.exists()
    assert not pinning.remove(directory)


def test_pins_of_another_layout_are_replaced_naming_the_map(base: Path) -> None:
    directory = pin_dir(base, "s", None)
    with BpfObject(NODE_O) as node, BpfObject(SUB_O) as other:
        pinning.pin_maps(directory, DatapathMaps(node))
        (directory / MAPS_DIR / "onm_ports").unlink()
        other.map("onm_drops").pin(directory / MAPS_DIR / "onm_ports")  # a per-CPU array
    decided = plan(pinning.found(directory), wanted())
    assert decided.action is Action.REPLACE
    assert decided.why[0] == "onm_ports: kind 6, layout 1"
    assert all(why.startswith("onm_ports: ") for why in decided.why)
    assert pinning.remove(directory)  # what the agent does then, before a fresh start
    assert plan(pinning.found(directory), wanted()).action is Action.FRESH


CHILD = """
import sys
from pathlib import Path
from onm.agent.datapath.ebpf.libbpf import BpfObject, TcAttachPoint, TcHook
with BpfObject(Path(sys.argv[1])) as node, BpfObject(Path(sys.argv[2])) as sub:
    for ifindex, obj, name in ((int(sys.argv[3]), node, "onm_node_ingress"),
                               (int(sys.argv[4]), sub, "onm_substrate_ingress")):
        hook = TcHook(ifindex, TcAttachPoint.INGRESS)
        hook.create()
        hook.attach(obj.program(name))
"""


def _ingress(namespace: str, interface: str) -> str:
    return subprocess.run(
        ["tc", "-n", namespace, "filter", "show", "dev", interface, "ingress"],
        capture_output=True,
        text=True,
    ).stdout


def test_cleanup_detaches_the_programs_a_stopped_agent_left_and_removes_its_pins(
    base: Path,
) -> None:
    namespace = TAG
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        subprocess.run(
            ["ip", "-n", namespace, "link", "add", "port0", "type", "veth", "peer", "sub0"],
            check=True,
        )
        index = run_in_netns_value(namespace, _indexes)
        # the "agent" attaches and exits: its programs stay, as they do after SIGKILL
        subprocess.run(
            ["ip", "netns", "exec", namespace, sys.executable, "-c", CHILD,
             str(NODE_O), str(SUB_O), str(index["port0"]), str(index["sub0"])],
            check=True,
        )  # fmt: skip
        assert "onm_node_ingres" in _ingress(namespace, "port0")
        assert "onm_substrate_i" in _ingress(namespace, "sub0")
        with BpfObject(NODE_O) as node:
            pinning.pin_maps(pin_dir(base, "h", namespace), DatapathMaps(node))
        result = subprocess.run(
            [sys.executable, "-m", "onm.cli", "agent", "cleanup", "--host", "h",
             "--netns", namespace, "--bpf-pins", str(base)],
            capture_output=True, text=True,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "detached port0:onm_node_ingres" in result.stdout
        assert "detached sub0:onm_substrate_i" in result.stdout
        assert f"removed {base / namespace}" in result.stdout
        assert _ingress(namespace, "port0") == _ingress(namespace, "sub0") == ""
        assert not (base / namespace).exists()
        qdiscs = subprocess.run(
            ["tc", "-n", namespace, "qdisc", "show"], capture_output=True, text=True
        ).stdout
        assert "clsact" in qdiscs and qdiscs.count("clsact") == 1  # the substrate's stays
        again = run_in_netns_value(namespace, _query_both)
        assert again == (None, None)
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=False)


def _indexes() -> dict[str, int]:
    import socket

    return {name: index for index, name in socket.if_nameindex()}


def _query_both() -> tuple[int | None, int | None]:
    index = _indexes()
    return tuple(  # type: ignore[return-value]
        TcHook(index[name], TcAttachPoint.INGRESS).query() for name in ("port0", "sub0")
    )


def test_a_fresh_start_forwards_nothing_until_a_port_is_written(base: Path) -> None:
    """Fresh maps: the node program drops every frame of a port onm_ports does not know (the
    agent attaches it to a port only after that port's entries are written)."""
    frame = ethernet(TARGET_MAC, PORT_MAC, 0x0800, bytes(IP(src=NODE, dst="10.0.0.3") / UDP()))
    node, sub = _loaded()
    try:
        maps = DatapathMaps(node)
        assert maps["onm_ports"].entries() == {} and maps["onm_sources"].entries() == {}
        out = node.program(NODE_PROGRAM[1]).test_run(frame)
        assert out.verdict == TC_ACT_SHOT
        assert maps.drops() == {DropReason.UNKNOWN_PORT: 1}
    finally:
        node.close()
        sub.close()


def test_a_userspace_start_removes_what_an_ebpf_agent_left(
    base: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert pinning.clear_stale("u", None, base) is None  # nothing there: nothing done
    with BpfObject(NODE_O) as node:
        pinning.pin_maps(pin_dir(base, "u", None), DatapathMaps(node))
    with caplog.at_level(logging.WARNING, logger="onm.agent.datapath"):
        cleaned = pinning.clear_stale("u", None, base)
    assert cleaned is not None and cleaned.removed
    assert not pin_dir(base, "u", None).exists()
    [record] = caplog.records
    assert "pins of an earlier agent" in record.getMessage()
