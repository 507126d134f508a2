"""onm.agent.datapath.ebpf.pins: what a starting agent does with what an earlier one pinned."""

from __future__ import annotations

import ctypes
import dataclasses
from pathlib import Path

import pytest

from onm.agent.datapath.ebpf import layout, pins
from onm.agent.datapath.ebpf.pins import Action, MapShape, Plan, bpffs_at, pin_dir, plan
from onm.cli.agent import DEFAULT_PINS
from onm.errors import InvalidInputError

WANT = pins.wanted()


def test_the_wanted_shapes_are_the_layouts() -> None:
    assert set(WANT) == {spec.name for spec in layout.MAPS}
    ports = WANT["onm_ports"]
    assert ports == MapShape(
        1, ctypes.sizeof(layout.PortKey), ctypes.sizeof(layout.PortValue), 4096, 0
    )
    assert WANT["onm_routes"].kind == 11 and WANT["onm_routes"].flags == 1  # LPM, no prealloc
    assert WANT["onm_drops"].kind == 6 and WANT["onm_pins"].kind == 9


def test_nothing_pinned_is_a_fresh_start() -> None:
    assert plan({}, WANT) == Plan(Action.FRESH)


def test_every_map_pinned_as_the_layout_says_is_adopted() -> None:
    assert plan(dict(WANT), WANT) == Plan(Action.ADOPT)


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("key_size", 99, "onm_ports: key_size 99, layout 4"),
        ("value_size", 1, "onm_ports: value_size 1"),
        ("max_entries", 1024, "onm_ports: max_entries 1024, layout 4096"),
        ("kind", 2, "onm_ports: kind 2, layout 1"),
        ("flags", 1, "onm_ports: flags 1, layout 0"),
    ],
)
def test_a_map_of_another_shape_replaces_all_naming_it(field: str, value: int, said: str) -> None:
    found = dict(WANT)
    found["onm_ports"] = dataclasses.replace(WANT["onm_ports"], **{field: value})
    decided = plan(found, WANT)
    assert decided.action is Action.REPLACE
    [why] = decided.why
    assert why.startswith(said)


def test_a_missing_or_unknown_map_replaces_all() -> None:
    found = {name: shape for name, shape in WANT.items() if name != "onm_sources"}
    found["onm_old"] = WANT["onm_ports"]
    assert plan(found, WANT) == Plan(
        Action.REPLACE, ("onm_sources: not pinned", "onm_old: not in the layout")
    )


def test_the_key_is_the_namespace_else_the_host() -> None:
    base = Path("/sys/fs/bpf/onm")
    assert pin_dir(base, "r", "onm-lab-h-r") == base / "onm-lab-h-r"
    assert pin_dir(base, "r", None) == base / "r"
    with pytest.raises(InvalidInputError, match="host"):
        pin_dir(base, "../etc", None)
    with pytest.raises(InvalidInputError, match="netns"):
        pin_dir(base, "r", "..")


MOUNTS = """\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
bpf /sys/fs/bpf bpf rw,nosuid,nodev,noexec,relatime,mode=700 0 0
tmpfs /sys/fs/bpf/odd tmpfs rw 0 0
"""


def test_bpffs_is_told_by_the_longest_mount_holding_the_path() -> None:
    assert bpffs_at(MOUNTS, Path("/sys/fs/bpf"))
    assert bpffs_at(MOUNTS, Path("/sys/fs/bpf/onm/r"))
    assert not bpffs_at(MOUNTS, Path("/sys/fs/bpf/odd/onm"))
    assert not bpffs_at(MOUNTS, Path("/sys/fs/bpfx"))
    assert not bpffs_at(MOUNTS.splitlines()[0], Path("/sys/fs/bpf/onm"))


def test_the_cli_default_is_the_pins_default() -> None:
    assert DEFAULT_PINS == pins.DEFAULT_BASE
