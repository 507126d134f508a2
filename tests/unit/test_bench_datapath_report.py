"""tests/bench/bench_datapath.py's report (pure): each column's figure with its ratio to native,
"n/a (why)" for a column not measured, and issue #11's targets only when there is an ebpf
column."""

from __future__ import annotations

from bench.bench_datapath import (
    EBPF,
    EDGE_WAY,
    NATIVE,
    NATIVE_SWITCHED,
    POOL_WAY,
    USERSPACE,
    VXLAN,
    Pair,
    table,
)


def _pair(label: str, tcp: float, pps: float, rtt: float) -> Pair:
    return Pair(label, "a", "g", "10.0.0.3", tcp=[tcp, tcp + 1, tcp - 1], pps=[pps], rtt=[rtt])


def _row(lines: list[str], start: str) -> str:
    [found] = [line for line in lines if line.startswith(start)]
    return found


def test_without_ebpf_its_column_says_why_and_its_targets_are_not_checked() -> None:
    paths = [
        _pair(NATIVE, 20.0, 600_000, 0.050),
        _pair(VXLAN, 16.0, 390_000, 0.065),
        _pair(USERSPACE, 6.0, 45_000, 1.1),
        Pair(EBPF, "", "", "", missing="not built yet"),
    ]
    lines = table(paths, 5, 3)
    tcp = _row(lines, "TCP 1 stream")
    cells = ["20.000", "16.000", "(0.800)", "6.000", "(0.300)", "n/a", "(not", "built", "yet)"]
    assert tcp.split()[4:] == cells
    assert "390,000 (0.650)" in _row(lines, "64-byte packets/s")
    assert "1.100 (22.000)" in _row(lines, "ping RTT")
    assert "issue #4 target userspace TCP >= 0.15x native: yes" in lines
    assert not [line for line in lines if line.startswith("issue #11 target ")]
    assert "issue #11 targets: not checked (no onm ebpf column)" in lines
    assert (
        "  kernel VXLAN/IPv6: TCP runs [16.000, 17.000, 15.000] Gbit/s; "
        "UDP runs [390,000] packets/s" in lines
    )


def test_with_ebpf_each_target_is_a_yes_or_a_no() -> None:
    native, vxlan = _pair(NATIVE, 20.0, 600_000, 0.050), _pair(VXLAN, 16.0, 400_000, 0.065)
    ebpf = _pair(EBPF, 19.0, 510_000, 0.0525)  # 0.95x, 0.85x (1.275x VXLAN), exactly 1.05x
    slow = _pair(USERSPACE, 2.0, 45_000, 1.1)
    slow.failures.append("udp: the server went away")
    lines = table([native, vxlan, slow, ebpf], 5, 3)
    assert [line for line in lines if line.startswith("issue #")] == [
        "issue #4 target userspace TCP >= 0.15x native: no",
        "issue #11 target ebpf TCP >= 0.95x native: yes",
        "issue #11 target ebpf 64-byte packets/s >= 0.90x native: no",
        "issue #11 target ebpf 64-byte packets/s >= 1.3x VXLAN: no",
        "issue #11 target ebpf RTT <= 1.05x native: yes",
    ]
    assert "  onm userspace: FAILED udp: the server went away" in lines
    ebpf.rtt, ebpf.pps = [], [800_000]
    lines = table([native, vxlan, slow, ebpf], 5, 3)
    assert "issue #11 target ebpf RTT <= 1.05x native: no" in lines  # no figure is no
    assert "issue #11 target ebpf 64-byte packets/s >= 1.3x VXLAN: yes" in lines


def test_the_pool_and_edge_ways_have_their_own_baselines_and_the_lab_shape_its_targets() -> None:
    native, switched = (
        _pair(NATIVE, 20.0, 600_000, 0.050),
        _pair(NATIVE_SWITCHED, 16.0, 500_000, 0.080),
    )
    masquerade = _pair(NATIVE, 10.0, 400_000, 0.060)
    masquerade.way = EDGE_WAY
    ebpf = _pair(EBPF, 16.0, 450_000, 0.082)
    pool = _pair(EBPF, 15.0, 300_000, 0.1)
    pool.way = POOL_WAY
    edge = _pair(EBPF, 1.0, 40_000, 0.6)
    edge.way = EDGE_WAY
    lines = table([native, switched, masquerade, ebpf, pool, edge], 5, 3)
    assert "15.000 (0.750)" in _row(lines, "pool member: TCP")  # to the routed node's native
    assert "1.000 (0.100)" in _row(lines, "edge gateway (SNAT): TCP")  # to the masquerade's
    assert "n/a (not measured)" in _row(lines, "edge gateway (SNAT): TCP")  # no userspace
    assert "issue #11 target ebpf TCP >= 0.95x native, lab's shape: yes" in lines
    assert "issue #11 target ebpf TCP >= 0.95x native: no" in lines
    assert "issue #11 target ebpf RTT <= 1.05x native, lab's shape: yes" in lines
