"""onm.agent.gateway's per-network counts: the core's own and the kernel's (the eBPF gateway
programs', read in with `carried`) summed for the metrics, neither changed by the sum."""

from __future__ import annotations

from onm.agent.gateway import Gateway, TenantCounts
from onm.agent.state import CoreState


def gateway() -> Gateway:
    return Gateway(CoreState.__new__(CoreState))  # the counts touch no state


def test_the_kernels_counts_add_to_the_cores() -> None:
    g = gateway()
    g.tenants[7] = TenantCounts(1, 100, 2, 200)
    g.carried({7: TenantCounts(10, 1000, 20, 2000), 9: TenantCounts(1, 60, 0, 0)})
    assert g.tenants_now() == {7: TenantCounts(11, 1100, 22, 2200), 9: TenantCounts(1, 60, 0, 0)}
    assert g.tenants[7] == TenantCounts(1, 100, 2, 200)  # the core's own, unchanged


def test_a_reading_replaces_the_last() -> None:
    g = gateway()
    g.carried({7: TenantCounts(10, 1000, 20, 2000)})
    g.carried({7: TenantCounts(12, 1100, 25, 2500)})
    assert g.tenants_now() == {7: TenantCounts(12, 1100, 25, 2500)}
