"""The kernel's connection tracking counters in an edge host's namespace, where its gateways'
SNAT and conntrack live (`onm.netlink.gateway_plan`): the honest signal of NAT trouble.

`/proc/net/stat/nf_conntrack` has a header line naming its columns, then one line of hex
counters per CPU (the kernel's `ct_cpu_seq_show`, net/netfilter/nf_conntrack_standalone.c).
What we take from it:
- `insert_failed`: new connections whose entry could not be inserted because an entry with the
  same tuple exists. With SNAT, that is the translated tuple clashing: no free source port for
  the (external address, destination) pair, i.e. NAT port exhaustion (or two packets of one new
  flow racing on two CPUs). The packet is dropped.
- `drop`: new connections dropped because the table was full (nf_conntrack_max) and no entry
  could be evicted early; `early_drop`: entries evicted early to make room.
- `entries`: the entries in the table now (every CPU's line repeats it).
The file shows the namespace of whoever opens it, so it is opened once inside the host's
namespace by a short-lived child (`run_in_netns_fds`) and read again from offset 0 each time:
the agent never changes namespace. The counters are the namespace's, all tenant networks
together (their conntrack zones share them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from onm.agent.io.netns import run_in_netns_fds

STATS = "/proc/net/stat/nf_conntrack"
SUMMED = ("insert_failed", "drop", "early_drop")
"""Per-CPU counters, summed over the CPUs."""


@dataclass(frozen=True, slots=True)
class ConntrackStats:
    entries: int
    insert_failed: int
    drop: int
    early_drop: int


def parse(text: str) -> ConntrackStats | None:
    """The counters of the file's content (None: not the layout described above)."""
    lines = text.split("\n")
    columns = lines[0].split()
    if "entries" not in columns or any(c not in columns for c in SUMMED):
        return None
    try:
        rows = [[int(v, 16) for v in line.split()] for line in lines[1:] if line.strip()]
    except ValueError:
        return None
    if not rows or any(len(r) != len(columns) for r in rows):
        return None
    total = {c: sum(r[columns.index(c)] for r in rows) for c in SUMMED}
    return ConntrackStats(rows[0][columns.index("entries")], **total)


def open_stats(netns: str | None) -> int:
    """The stats file of `netns` (the caller's namespace when None), opened for reading."""
    [fd] = run_in_netns_fds(netns, lambda: [os.open(STATS, os.O_RDONLY | os.O_CLOEXEC)])
    return fd


def read_stats(fd: int) -> ConntrackStats | None:
    """The counters now (None: unreadable, or a layout we do not know)."""
    try:
        return parse(os.pread(fd, 1 << 16, 0).decode("ascii", "replace"))
    except OSError:
        return None
