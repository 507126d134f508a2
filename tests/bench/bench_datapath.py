"""Benchmark of onm's datapaths against native routing and kernel VXLAN, in one run (#4, #11).

Not part of the pass/fail suite (`make bench-datapath`, as root). Every column is one way from a
node a to a node g, measured in the same run, alternating, and printed with its ratio to native;
the ratio is what to compare between runs, the machine being shared and noisy:

- native: namespaces `onmbn<pid>a` and `onmbn<pid>g` joined through a router namespace
  `onmbn<pid>r` (IPv4 forwarding) by two plain veth pairs, MTU 1500, the kernel's default
  offloads (as the lab's node interfaces have).
- native, lab's shape: the lab's hops without the overlay: a -- host r -- a bridge (the
  substrate switch, `onmbn<pid>ssw`) -- host s -- g, IPv4 routed by r and s, MTU 1500. The
  lab's path has these hops (three veth pairs and a bridge); the native column two veth pairs.
- kernel VXLAN/IPv6, the peer a user would pick instead: the same shape (`onmbn<pid>va`, `vr`,
  `vg`) over IPv6 with a kernel VXLAN device in a and g (RFC 7348: 70 octets of overhead over
  IPv6), substrate MTU 1570 so the inner MTU is 1500 like every other column's (the lab's
  substrate is 1520 because SIIT adds 20). The endpoints are the tunnel ends themselves, one
  veth hop fewer each side than a host-side VTEP: VXLAN at its cheapest.
- onm userspace: the lab `tests/bench/datapath-lab.yaml` (named `bench<pid>`: the two-host
  shape of `examples/two-hosts.yaml`, a on host r, g on host s, with a pool and an edge pool
  beside it), its agents on `--datapath userspace`.
- onm ebpf: the same lab (`bench<pid>-ebpf`) on `--datapath ebpf`, when the agent has that
  datapath (`onm.agent.service.DATAPATHS`); else the column says "n/a (not built yet)". Each
  agent's command line is checked for the datapath asked.

Metrics (client in node a, server in node g):
- TCP: one iperf3 stream, Gbit/s as iperf3's receiver reports it; median of the repetitions.
- 64-byte packets: iperf3 UDP `-b 0 -l 18`: an 18-octet payload makes a 46-octet IPv4 packet,
  a 64-octet Ethernet frame counting the FCS. Packets per second *received* (the server's
  byte count / 18, over its own measuring time); median of the repetitions.
- RTT: median of the round-trip times of `ping -c 20 -i 0.05`.
The same three metrics on three more ways through each lab, each beside its native baseline:
- to a pool member: a -> the pool svc's address 10.0.0.10, whose one member m is on host s;
  the baseline is the native column above (a plain routed node).
- through an edge gateway: a -> server web (30.0.2.2) on the internet, through gateway e1 on
  edge host gw1, which SNATs (nftables); the baseline is the native shape with the router
  masquerading out of its server side (`onmbn<pid>ma`, `mr`, `mg`), as a gateway does.
- on an encapsulated network (RFC 2473): node ea on host r -> node eg on host s, network enet
  (MTU 1480: the 40-octet IPv6 header on the 1520 substrate); the baseline is the native column.
Then the targets: issue #4's (userspace TCP >= 0.15 native) and, with an ebpf column, issue
#11's (TCP >= 0.95, 64-byte packets >= 0.90 and >= 1.3x VXLAN's, RTT <= 1.05x native), judged
against both native columns.

The namespaces are made over netlink (`onm.netlink`); a name that exists already is refused,
not adopted. Labs and namespaces are removed at the end, by exact name, whatever happens
(errors, Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from onm.agent.datapath.choice import DATAPATHS
from onm.lab.runner import DATAPATH_ENV
from onm.netlink import helper
from onm.netlink import kernel as nl
from onm.netlink.errors import KernelError
from onm.netlink.kernel import IPAddress, IPNetwork, Kernel
from onm.netlink.vxlan import OVERHEAD, Vxlan

REPO = Path(__file__).resolve().parents[2]
TOPOLOGY = REPO / "tests" / "bench" / "datapath-lab.yaml"
UDP_PAYLOAD = 18
"""Octets of UDP payload in a 64-octet Ethernet frame: 64 - 4 (FCS) - 14 - 20 - 8."""
PORT = 5201
PINGS = 20
INNER_MTU = 1500
"""The MTU of node a's and node g's interfaces in every column."""
VXLAN_SUBSTRATE_MTU = INNER_MTU + OVERHEAD[6]
"""1570: the inner MTU and a VXLAN's 70 octets over IPv6."""
VNI = 42
READY_TIMEOUT = 60.0
NODE_WAY, POOL_WAY, EDGE_WAY = "node", "pool member", "edge gateway (SNAT)"
ENCAP_WAY = "encap network"
WAYS = (NODE_WAY, POOL_WAY, EDGE_WAY, ENCAP_WAY)
POOL_IP, WEB, ENCAP_PEER = "10.0.0.10", "30.0.2.2", "10.1.0.3"


def run(args: Sequence[str], timeout: float = 60.0, check: bool = True) -> str:
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"`{' '.join(args)}` failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def in_ns(namespace: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", namespace, *args]


@dataclass
class Pair:
    """One way from node a to node g: its namespaces and g's address."""

    label: str
    client_ns: str
    server_ns: str
    server_ip: str
    tcp: list[float] = field(default_factory=list)
    pps: list[float] = field(default_factory=list)
    rtt: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    missing: str | None = None
    """Why this column is not measured at all ("not built yet")."""
    way: str = NODE_WAY
    """What a sends to: a node, a pool's address, an external server through a gateway."""
    bind: str | None = None
    """The server's address to listen on (a pool member's UDP answers must come from the
    pool's address, which a server bound to all of them would not choose)."""


# --- the set-ups -----------------------------------------------------------------------------
class Namespaces:
    """The namespaces this run made, over netlink (`onm.netlink`, as the lab does). A name that
    exists already is refused, never adopted: it is another run's (or a crashed one's, left for
    whoever made it). At the end each one made is deleted by its exact name."""

    def __init__(self) -> None:
        self.made: list[str] = []
        self.kernels: dict[str, Kernel] = {}

    def make(self, name: str, sysctls: Sequence[tuple[str, int]] = ()) -> Kernel:
        if not nl.ensure_netns(name):
            raise RuntimeError(f"namespace {name} exists already (not this run's): left alone")
        self.made.append(name)
        nl.ensure_sysctls(name, list(sysctls))
        kernel = self.kernels[name] = Kernel(name)
        kernel.set_link("lo")
        return kernel

    def remove(self) -> None:
        for kernel in self.kernels.values():
            kernel.close()  # a socket would keep its namespace alive
        self.kernels.clear()
        for name in reversed(self.made):
            try:
                nl.delete_netns(name)
            except KernelError as error:
                print(f"namespace {name}: not deleted: {error}", file=sys.stderr)
        self.made.clear()
        helper.close()


FORWARDING = {4: "net.ipv4.ip_forward", 6: "net.ipv6.conf.all.forwarding"}
DEFAULT_ROUTE = {4: ipaddress.ip_network("0.0.0.0/0"), 6: ipaddress.ip_network("::/0")}


def routed_pair(
    spaces: Namespaces, prefix: str, subnets: tuple[IPNetwork, IPNetwork], mtu: int
) -> tuple[Kernel, Kernel, IPAddress, IPAddress]:
    """PREFIXa:eth0 (.2 of the first subnet) -- PREFIXr (forwarding; .1 of each) -- PREFIXg:eth0
    (.2 of the second), one veth pair each side, MTU `mtu`, default routes via r; the kernels
    and addresses of a and g."""
    version = subnets[0].version
    a = spaces.make(f"{prefix}a")
    r = spaces.make(f"{prefix}r", [(FORWARDING[version], 1)])
    g = spaces.make(f"{prefix}g")
    ends: list[IPAddress] = []
    for kernel, peer, subnet in ((a, "ra", subnets[0]), (g, "rg", subnets[1])):
        router, end = subnet[1], subnet[2]
        kernel.ensure_veth("eth0", peer, f"{prefix}r")
        kernel.set_link("eth0", mtu=mtu)
        r.set_link(peer, mtu=mtu)
        kernel.ensure_address("eth0", ipaddress.ip_interface(f"{end}/{subnet.prefixlen}"))
        r.ensure_address(peer, ipaddress.ip_interface(f"{router}/{subnet.prefixlen}"))
        kernel.ensure_route(DEFAULT_ROUTE[version], router, "eth0")
        ends.append(end)
    return a, g, ends[0], ends[1]


def native_up(spaces: Namespaces, prefix: str) -> Pair:
    """a:eth0 10.77.1.2/24 -- r (forwarding) -- g:eth0 10.77.2.2/24, MTU 1500 everywhere."""
    subnets = (ipaddress.ip_network("10.77.1.0/24"), ipaddress.ip_network("10.77.2.0/24"))
    _, _, _, server = routed_pair(spaces, prefix, subnets, INNER_MTU)
    return Pair("native", f"{prefix}a", f"{prefix}g", str(server))


def switched_up(spaces: Namespaces, prefix: str) -> Pair:
    """The lab's shape with no overlay: a:eth0 10.80.1.2/24 -- host r (forwarding) -- a bridge
    (namespace `PREFIXsw`, the substrate switch) -- host s (forwarding) -- g:eth0 10.80.2.2/24;
    r 10.80.0.1 and s 10.80.0.2 on the switch, MTU 1500, a route each way."""
    subnets = {"a": ipaddress.ip_network("10.80.1.0/24"), "g": ipaddress.ip_network("10.80.2.0/24")}
    switch = spaces.make(f"{prefix}sw")
    switch.ensure_bridge("br0", INNER_MTU)
    hosts = {"r": ("a", 1), "s": ("g", 2)}
    for host, (node, index) in hosts.items():
        kernel = spaces.make(f"{prefix}{host}", [(FORWARDING[4], 1)])
        end = spaces.make(f"{prefix}{node}")
        subnet = subnets[node]
        end.ensure_veth("eth0", f"n{node}", f"{prefix}{host}")
        end.set_link("eth0", mtu=INNER_MTU)
        kernel.set_link(f"n{node}", mtu=INNER_MTU)
        end.ensure_address("eth0", ipaddress.ip_interface(f"{subnet[2]}/24"))
        kernel.ensure_address(f"n{node}", ipaddress.ip_interface(f"{subnet[1]}/24"))
        end.ensure_route(DEFAULT_ROUTE[4], subnet[1], "eth0")
        kernel.ensure_veth("sub0", f"p{host}", f"{prefix}sw")
        kernel.set_link("sub0", mtu=INNER_MTU)
        switch.set_link(f"p{host}", mtu=INNER_MTU, master="br0")
        kernel.ensure_address("sub0", ipaddress.ip_interface(f"10.80.0.{index}/24"))
    for host, other, peer in (("r", "g", 2), ("s", "a", 1)):
        via = ipaddress.ip_address(f"10.80.0.{peer}")
        spaces.kernels[f"{prefix}{host}"].ensure_route(subnets[other], via, "sub0")
    return Pair(NATIVE_SWITCHED, f"{prefix}a", f"{prefix}g", str(subnets["g"][2]))


MASQUERADE = """\
table ip onmbench {
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "rg" masquerade
    }
}
"""


def masquerade_up(spaces: Namespaces, prefix: str) -> Pair:
    """The native shape (10.79.1.0/24, 10.79.2.0/24) with r masquerading what leaves toward g
    (kernel NAT and conntrack, as an edge gateway's SNAT is): the edge gateway's baseline."""
    subnets = (ipaddress.ip_network("10.79.1.0/24"), ipaddress.ip_network("10.79.2.0/24"))
    _, _, _, server = routed_pair(spaces, prefix, subnets, INNER_MTU)
    done = subprocess.run(
        in_ns(f"{prefix}r", "nft", "-f", "-"), input=MASQUERADE, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"nft in {prefix}r: {done.stderr.strip()}")
    return Pair(NATIVE, f"{prefix}a", f"{prefix}g", str(server), way=EDGE_WAY)


def vxlan_up(spaces: Namespaces, prefix: str) -> Pair:
    """The same shape over IPv6 (fd00:77:1::/64, fd00:77:2::/64, MTU 1570), with a VXLAN
    device vx0 in a and in g (VNI 42, to each other, port 4789, the kernel's defaults
    otherwise) carrying 10.78.0.0/24 at MTU 1500: the tunnel ends are the endpoints
    themselves, the cheapest place a VXLAN can be."""
    subnets = (ipaddress.ip_network("fd00:77:1::/64"), ipaddress.ip_network("fd00:77:2::/64"))
    a, g, a6, g6 = routed_pair(spaces, prefix, subnets, VXLAN_SUBSTRATE_MTU)
    for kernel, here, there, inner in ((a, a6, g6, "10.78.0.1/24"), (g, g6, a6, "10.78.0.2/24")):
        tunnel = Vxlan(VNI, here, there, "eth0")
        kernel.ensure_vxlan("vx0", tunnel)
        kernel.set_link("vx0", mtu=VXLAN_SUBSTRATE_MTU - tunnel.overhead)
        kernel.ensure_address("vx0", ipaddress.ip_interface(inner))
    return Pair("kernel VXLAN/IPv6", f"{prefix}a", f"{prefix}g", "10.78.0.2")


def lab_up(lab: str, datapath: str) -> list[Pair]:
    """The lab with its agents on `datapath` (the lab's `ONM_LAB_DATAPATH` in the
    environment, and `onm lab up --datapath` should the lab have that option): its three
    ways, a to node g, to the pool's address, to server web."""
    print(f"lab {lab} ({datapath}): up ...", flush=True)
    cli = [sys.executable, "-m", "onm.cli", "lab"]
    option = ["--datapath", datapath] if "--datapath" in run([*cli, "up", "--help"]) else []
    environment = os.environ | {DATAPATH_ENV: datapath}
    done = subprocess.run(
        [*cli, "up", str(TOPOLOGY), "--name", lab, *option],
        capture_output=True,
        text=True,
        timeout=180,
        env=environment,
    )
    if done.returncode != 0:
        raise RuntimeError(f"lab {lab}: up failed: {(done.stderr or done.stdout).strip()}")
    label, client = f"onm {datapath}", f"onm-{lab}-n-a"
    pairs = [
        Pair(label, client, f"onm-{lab}-n-g", "10.0.0.3"),
        Pair(label, client, f"onm-{lab}-n-m", POOL_IP, way=POOL_WAY, bind=POOL_IP),
        Pair(label, client, f"onm-{lab}-s-web", WEB, way=EDGE_WAY),
        Pair(label, f"onm-{lab}-n-ea", f"onm-{lab}-n-eg", ENCAP_PEER, way=ENCAP_WAY),
    ]
    status = json.loads(run([*cli, "status", "--name", lab, "--json"]))
    agents = [p for p in status["processes"] if p["role"] == "agent"]
    if not agents or any(agent_datapath(p["pid"]) != datapath for p in agents):
        for pair in pairs:  # a figure would be mislabelled
            pair.missing = f"agents not on --datapath {datapath}"
    return pairs


def agent_datapath(pid: int) -> str | None:
    """What `--datapath` the process `pid` was started with (None: none, or it is gone)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return None
    return argv[argv.index("--datapath") + 1] if "--datapath" in argv[:-1] else None


def lab_down(lab: str) -> None:
    cli = [sys.executable, "-m", "onm.cli", "lab"]
    done = subprocess.run([*cli, "down", "--name", lab], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"lab {lab}: down failed: {done.stderr.strip()}", file=sys.stderr)


def ebpf_missing() -> str | None:
    """Why there is no onm ebpf column (None: the agent has that datapath)."""
    return None if "ebpf" in DATAPATHS else "not built yet"


def wait_reachable(path: Pair) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    ping = in_ns(path.client_ns, "ping", "-c1", "-W1", path.server_ip)
    while subprocess.run(ping, capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path.label}: {path.server_ip} unreachable after {READY_TIMEOUT}s")
        time.sleep(0.2)


# --- measurements ----------------------------------------------------------------------------


def iperf3(path: Pair, seconds: float, extra: Sequence[str]) -> dict[str, object] | str:
    """iperf3's JSON report, or why there is none."""
    argv = in_ns(
        path.client_ns,
        *("iperf3", "-c", path.server_ip, "-p", str(PORT), "-t", f"{seconds:g}", "-J"),
        *extra,
    )
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    try:
        report: dict[str, object] = json.loads(done.stdout)
    except json.JSONDecodeError:
        return (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
    if "error" in report:
        return str(report["error"])
    return report


def _end(report: dict[str, object], key: str) -> dict[str, float]:
    end = report["end"]
    assert isinstance(end, dict)
    value: dict[str, float] = end[key]
    return value


def measure_tcp(path: Pair, seconds: float) -> None:
    report = iperf3(path, seconds, [])
    if isinstance(report, str):
        path.failures.append(f"tcp: {report}")
        return
    path.tcp.append(_end(report, "sum_received")["bits_per_second"] / 1e9)


def measure_pps(path: Pair, seconds: float) -> None:
    report = iperf3(path, seconds, ["-u", "-b", "0", "-l", str(UDP_PAYLOAD)])
    if isinstance(report, str):
        path.failures.append(f"udp: {report}")
        return
    received = _end(report, "sum_received")
    path.pps.append(received["bytes"] / UDP_PAYLOAD / received["seconds"])


RTT = re.compile(r"time=([0-9.]+) ms")


def measure_rtt(path: Pair) -> None:
    argv = in_ns(path.client_ns, "ping", "-n", "-c", str(PINGS), "-i", "0.05", path.server_ip)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    times = [float(t) for t in RTT.findall(done.stdout)]
    if len(times) < PINGS // 2:
        path.failures.append(f"ping: {len(times)} of {PINGS} answered")
    path.rtt.extend(times)


def start_server(path: Pair) -> subprocess.Popen[bytes]:
    bound = ["-B", path.bind] if path.bind else []
    argv = in_ns(path.server_ns, "iperf3", "-s", "-p", str(PORT), *bound)
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    probe = in_ns(path.server_ns, "ss", "-Htln", f"sport = :{PORT}")
    deadline = time.monotonic() + 10
    while not run(probe, check=False).strip():
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{path.label}: iperf3 server did not start")
        time.sleep(0.05)
    return server


# --- report ----------------------------------------------------------------------------------
NATIVE, VXLAN, USERSPACE, EBPF = "native", "kernel VXLAN/IPv6", "onm userspace", "onm ebpf"
NATIVE_SWITCHED = "native, lab's shape"
COLUMNS = (NATIVE, NATIVE_SWITCHED, VXLAN, USERSPACE, EBPF)
METRICS = (
    ("TCP 1 stream (Gbit/s)", "tcp", ".3f"),
    ("64-byte packets/s received", "pps", ",.0f"),
    ("ping RTT median (ms)", "rtt", ".3f"),
)
"""(row label, Pair field, format): one row per metric."""


@dataclass(frozen=True)
class Target:
    """`metric` of `column` >= (or, `at_most`, <=) `factor` x that of `reference`."""

    label: str
    column: str
    metric: str
    reference: str
    factor: float
    at_most: bool = False
    issue: int = 11


TARGETS = (
    Target("userspace TCP >= 0.15x native", USERSPACE, "tcp", NATIVE, 0.15, issue=4),
    Target("ebpf TCP >= 0.95x native", EBPF, "tcp", NATIVE, 0.95),
    Target("ebpf 64-byte packets/s >= 0.90x native", EBPF, "pps", NATIVE, 0.90),
    Target("ebpf 64-byte packets/s >= 1.3x VXLAN", EBPF, "pps", VXLAN, 1.3),
    Target("ebpf RTT <= 1.05x native", EBPF, "rtt", NATIVE, 1.05, at_most=True),
    Target("ebpf TCP >= 0.95x native, lab's shape", EBPF, "tcp", NATIVE_SWITCHED, 0.95),
    Target(
        "ebpf 64-byte packets/s >= 0.90x native, lab's shape", EBPF, "pps", NATIVE_SWITCHED, 0.9
    ),
    Target("ebpf RTT <= 1.05x native, lab's shape", EBPF, "rtt", NATIVE_SWITCHED, 1.05, True),
)
"""Issue #4's target, and issue #11's for the eBPF datapath with every check on: against the
two-hop native column, and against native routing in the lab's own shape (the same hops and
switch as the lab, without the overlay)."""


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def figure(path: Pair, metric: str) -> float | None:
    values: list[float] = getattr(path, metric)
    return median(values)


def cell(path: Pair, metric: str, native: float | None, unit_format: str) -> str:
    """`value (ratio to native)`, `n/a (why)` for a column not measured, `n/a` for no figure."""
    if path.missing is not None:
        return f"n/a ({path.missing})"
    value = figure(path, metric)
    if value is None:
        return "n/a"
    if path.label == NATIVE or native is None or native == 0:
        return format(value, unit_format)
    return f"{value:{unit_format}} ({value / native:.3f})"


def verdict(target: Target, paths: dict[str, Pair]) -> str | None:
    """ "yes" or "no", or None when the target's column is not measured."""
    column, reference = paths.get(target.column), paths.get(target.reference)
    if column is None or column.missing is not None or reference is None:
        return None
    value, base = figure(column, target.metric), figure(reference, target.metric)
    if value is None or base is None:
        return "no"
    bound = target.factor * base
    return "yes" if (value <= bound if target.at_most else value >= bound) else "no"


BASELINE_WAY = {POOL_WAY: NODE_WAY, EDGE_WAY: EDGE_WAY, ENCAP_WAY: NODE_WAY}
"""Each further way's native baseline: a plain routed node for a pool member and for a node of
an encapsulated network (its MTU 1480, the others' 1500), the masquerading router for an edge
gateway."""


def ways_table(paths: Sequence[Pair], width: int) -> list[str]:
    """The pool member's and the edge gateway's figures, each with its ratio to its baseline."""
    lines = [
        "",
        f"{'way, metric':40}" + "".join(f" {c:>{width}}" for c in (NATIVE, USERSPACE, EBPF)),
    ]
    for way, baseline_way in BASELINE_WAY.items():
        found = {(p.way, p.label): p for p in paths}
        native = found.get((baseline_way, NATIVE))
        if native is None:
            continue  # a report of the node way only
        columns = [native] + [
            found.get((way, label), Pair(label, "", "", "", missing="not measured", way=way))
            for label in (USERSPACE, EBPF)
        ]
        for name, metric, unit_format in METRICS:
            base = figure(native, metric)
            cells = (cell(path, metric, base, unit_format) for path in columns)
            lines.append(f"{f'{way}: {name}':40}" + "".join(f" {c:>{width}}" for c in cells))
    lines.append(
        f"  baselines: {POOL_WAY}, {ENCAP_WAY} (MTU 1480): native above; "
        f"{EDGE_WAY}: native with the router masquerading"
    )
    return lines


def table(paths: Sequence[Pair], seconds: float, repeat: int) -> list[str]:
    """The report's lines: the figures, each column's runs and failures, the targets."""
    everything, paths = paths, [path for path in paths if path.way == NODE_WAY]
    by_label = {path.label: path for path in paths}
    native = by_label[NATIVE]
    width = 21
    lines = [
        f"python {platform.python_version()}, kernel {platform.release()}, "
        f"{os.cpu_count()} CPUs; iperf3 {seconds:g} s x {repeat} (median), ping x {PINGS}",
        f"(ratio to native); inner MTU {INNER_MTU}, VXLAN substrate MTU {VXLAN_SUBSTRATE_MTU}",
        f"{'metric':28}" + "".join(f" {path.label:>{width}}" for path in paths),
    ]
    for name, metric, unit_format in METRICS:
        base = figure(native, metric)
        cells = (cell(path, metric, base, unit_format) for path in paths)
        lines.append(f"{name:28}" + "".join(f" {text:>{width}}" for text in cells))
    lines.extend(ways_table(everything, width))
    for path in everything:
        name = path.label if path.way == NODE_WAY else f"{path.label} ({path.way})"
        if path.missing is None:
            runs = ", ".join(f"{v:.3f}" for v in path.tcp)
            pps = ", ".join(f"{v:,.0f}" for v in path.pps)
            lines.append(f"  {name}: TCP runs [{runs}] Gbit/s; UDP runs [{pps}] packets/s")
        lines.extend(f"  {name}: FAILED {failure}" for failure in path.failures)
    for target in TARGETS:
        answer = verdict(target, by_label)
        if answer is not None:
            lines.append(f"issue #{target.issue} target {target.label}: {answer}")
    if by_label.get(EBPF) is None or by_label[EBPF].missing is not None:
        lines.append("issue #11 targets: not checked (no onm ebpf column)")
    return lines


def measured(paths: Sequence[Pair]) -> list[Pair]:
    return [path for path in paths if path.missing is None]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="iperf3 run length")
    parser.add_argument("--repeat", type=int, default=3, help="iperf3 runs per metric and path")
    options = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_datapath needs root (network namespaces)", file=sys.stderr)
        return 2

    def interrupted(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    prefix = f"onmbn{os.getpid()}"
    spaces = Namespaces()
    labs: list[str] = []
    servers: list[subprocess.Popen[bytes]] = []
    try:
        paths = [
            native_up(spaces, prefix),
            switched_up(spaces, f"{prefix}s"),
            vxlan_up(spaces, f"{prefix}v"),
            masquerade_up(spaces, f"{prefix}m"),
        ]
        for datapath, lab in (("userspace", f"bench{os.getpid()}"), ("ebpf", None)):
            missing = ebpf_missing() if datapath == "ebpf" else None
            if missing is not None:
                paths.extend(Pair(EBPF, "", "", "", missing=missing, way=w) for w in WAYS)
                continue
            lab = lab or f"bench{os.getpid()}-{datapath}"
            labs.append(lab)
            paths.extend(lab_up(lab, datapath))
        for path in measured(paths):
            wait_reachable(path)
            servers.append(start_server(path))
        steps: list[tuple[str, Callable[[Pair], None]]] = [
            ("ping", measure_rtt),
            ("tcp", lambda p: measure_tcp(p, options.seconds)),
            ("udp 64 B", lambda p: measure_pps(p, options.seconds)),
        ]
        for name, step in steps:
            for i in range(1 if name == "ping" else options.repeat):
                for path in measured(paths):  # alternating, so drift hits every column alike
                    print(f"{name} {i + 1}: {path.label}, {path.way}", flush=True)
                    step(path)
                    time.sleep(0.5)
        print()
        print("\n".join(table(paths, options.seconds, options.repeat)))
    except KeyboardInterrupt:
        print("interrupted: cleaning up", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for server in servers:
            server.terminate()
            try:
                server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.kill()
        for lab in labs:
            lab_down(lab)
        spaces.remove()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
