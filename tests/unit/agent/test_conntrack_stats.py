"""An edge host's conntrack counters (onm.agent.io.conntrack): the kernel's per-CPU lines of
/proc/net/stat/nf_conntrack summed, `entries` taken once; and the file read again through a
descriptor opened once (a sample as Linux 6.x writes it, with two CPUs)."""

from __future__ import annotations

import os
from pathlib import Path

from onm.agent.io.conntrack import ConntrackStats, parse, read_stats

# net/netfilter/nf_conntrack_standalone.c, ct_cpu_seq_show (Linux 6.x): a header, a line per CPU.
SAMPLE = (
    "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop "
    "early_drop icmp_error  expect_new expect_create expect_delete search_restart\n"
    "0000002a  00000000 00000000 00000000 00000003 00000000 00000000 00000000 00000000 "
    "00000005 00000001 00000000 00000000  00000000 00000000 00000000 00000000\n"
    "0000002a  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 "
    "00000010 00000000 00000002 00000000  00000000 00000000 00000000 00000000\n"
)


def test_per_cpu_counters_are_summed_and_entries_taken_once() -> None:
    assert parse(SAMPLE) == ConntrackStats(entries=42, insert_failed=21, drop=1, early_drop=2)


def test_a_layout_we_do_not_know_is_none() -> None:
    assert parse("") is None
    assert parse("entries drop\n00000001 00000002\n") is None  # no insert_failed column
    assert parse(SAMPLE.replace("0000002a", "zz", 1)) is None
    assert parse(SAMPLE.split("\n")[0] + "\n") is None  # no CPU line


def test_read_again_from_one_descriptor(tmp_path: Path) -> None:
    path = tmp_path / "nf_conntrack"
    path.write_text(SAMPLE)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert read_stats(fd) == read_stats(fd) == parse(SAMPLE)
    finally:
        os.close(fd)
    assert read_stats(fd) is None  # closed: unreadable, not an exception
