"""What a starting eBPF agent does with the maps an earlier agent left pinned: the decision, pure.

Static stability (issue #11): an agent's maps and programs are pinned under
`<base>/<key>/maps/<map>` and `<base>/<key>/programs/<program>` (base /sys/fs/bpf/onm, key the
host's network namespace, else its name), and its programs stay attached when it stops. The
next agent of that host looks at what is pinned and `plan` decides:

- FRESH: nothing pinned. New maps, pinned; a node's port forwards only once its entries are
  written.
- ADOPT: every map of `layout.MAPS` is pinned with the kind, key and value sizes, size and flags
  the layout says. The new programs are loaded onto those maps (their entries read back first,
  so only differences are written) and swapped in place: the old programs keep forwarding with
  the old entries meanwhile.
- REPLACE: something is pinned but not all of it matches (another layout, a map missing, one
  too many): the pins are removed and the start is a fresh one, each reason named.

The I/O around it (bpffs, reading the pins, cleanup) is `onm.agent.datapath.ebpf.pinning`'s.
"""

from __future__ import annotations

import ctypes
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from onm.agent.datapath.ebpf import layout
from onm.errors import InvalidInputError

DEFAULT_BASE: Final = Path("/sys/fs/bpf/onm")
"""Where every onm agent of this machine pins, one directory per agent (`pin_key`)."""
MAPS_DIR: Final = "maps"
PROGRAMS_DIR: Final = "programs"

# include/uapi/linux/bpf.h: enum bpf_map_type, and the map_flags bit BPF_F_NO_PREALLOC.
KERNEL_MAP_TYPE: Final = {
    layout.MapKind.HASH: 1,
    layout.MapKind.ARRAY: 2,
    layout.MapKind.PERCPU_HASH: 5,
    layout.MapKind.PERCPU_ARRAY: 6,
    layout.MapKind.LRU_HASH: 9,
    layout.MapKind.LPM_TRIE: 11,
}
KERNEL_MAP_FLAG: Final = {"BPF_F_NO_PREALLOC": 1 << 0}


@dataclass(frozen=True, slots=True)
class MapShape:
    """What makes a pinned map usable by programs built from `layout`."""

    kind: int
    """`enum bpf_map_type`."""
    key_size: int
    value_size: int
    max_entries: int
    flags: int


class Action(enum.Enum):
    FRESH = "fresh"
    ADOPT = "adopt"
    REPLACE = "replace"


@dataclass(frozen=True, slots=True)
class Plan:
    action: Action
    why: tuple[str, ...] = ()
    """For REPLACE: each map that does not match, and how."""


def wanted() -> dict[str, MapShape]:
    """Every map as `layout.MAPS` declares it."""
    shapes = {}
    for spec in layout.MAPS:
        flags = 0
        for name in filter(None, (part.strip() for part in spec.flags.split("|"))):
            flags |= KERNEL_MAP_FLAG[name]
        shapes[spec.name] = MapShape(
            KERNEL_MAP_TYPE[spec.kind],
            ctypes.sizeof(spec.key),
            ctypes.sizeof(spec.value),
            spec.max_entries,
            flags,
        )
    return shapes


_FIELDS: Final = ("kind", "key_size", "value_size", "max_entries", "flags")


def plan(found: Mapping[str, MapShape], want: Mapping[str, MapShape]) -> Plan:
    """FRESH when nothing is pinned, ADOPT when every wanted map is and matches, else REPLACE."""
    if not found:
        return Plan(Action.FRESH)
    why = []
    for name, shape in want.items():
        have = found.get(name)
        if have is None:
            why.append(f"{name}: not pinned")
            continue
        for field in _FIELDS:
            if getattr(have, field) != getattr(shape, field):
                why.append(
                    f"{name}: {field} {getattr(have, field)}, layout {getattr(shape, field)}"
                )
    why.extend(f"{name}: not in the layout" for name in sorted(set(found) - set(want)))
    return Plan(Action.REPLACE, tuple(why)) if why else Plan(Action.ADOPT)


def pin_key(host: str, netns: str | None) -> str:
    """The agent's directory name under the base: its host's namespace, else the host's name
    (one agent per host of a machine, one per namespace in a lab)."""
    key = netns or host
    if not key or key in (".", "..") or "/" in key or "\0" in key:
        field = "netns" if netns else "host"
        raise InvalidInputError(field, f"{key!r} cannot name a directory of eBPF pins")
    return key


def pin_dir(base: Path, host: str, netns: str | None) -> Path:
    return base / pin_key(host, netns)


def bpffs_at(mounts: str, path: Path) -> bool:
    """Is `path` on a bpf filesystem, by the mount table `mounts` (/proc/self/mounts' text)?
    The longest mount point that holds it decides."""
    best: tuple[int, str] | None = None
    target = path.as_posix().rstrip("/") or "/"
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= best[0]):
            best = (len(point), fields[2])
    return best is not None and best[1] == "bpf"
