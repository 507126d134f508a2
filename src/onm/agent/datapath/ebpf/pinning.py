"""The agent's pins on bpffs and its programs on tc hooks, as files and kernel objects: read,
made, removed. The decisions are `onm.agent.datapath.ebpf.pins`' (pure).

- `ensure_bpffs` mounts a bpf filesystem on /sys/fs/bpf when none is there (the pins' base must
  be on one: a plain directory would hold nothing across a restart).
- `found` describes what an agent's directory holds (`pins.MapShape` per pinned map), `opened`
  gives descriptors of those maps for a new object to load onto (`BpfObject(reuse=...)`).
- `cleanup` is `onm agent cleanup`'s and `onm lab down`'s: every onm program is detached from
  the host's interfaces (found by the kernel's name of the program each interface's filter
  runs, so one an earlier agent left behind is found too) and the pins removed. A userspace
  agent starting where pins are does the same (`clear_stale`): otherwise the old programs
  would go on forwarding behind its back.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from onm.agent.datapath.ebpf.libbpf import (
    BPFFS,
    BpfError,
    BpfProgram,
    TcAttachPoint,
    TcHook,
    ensure_loaded,
    map_info,
    pinned_fd,
    program_info_by_id,
)
from onm.agent.datapath.ebpf.maps import DatapathMaps
from onm.agent.datapath.ebpf.pins import MAPS_DIR, PROGRAMS_DIR, MapShape, bpffs_at, pin_dir
from onm.agent.io.netns import netns_path, run_in_netns_value
from onm.errors import OnmError

log = logging.getLogger("onm.agent.datapath")

NODE_PROGRAM: Final = ("node_ingress", "onm_node_ingress")
SUBSTRATE_PROGRAM: Final = ("substrate_ingress", "onm_substrate_ingress")
GATEWAY_PROGRAM: Final = ("gateway_egress", "onm_gateway_egress")
"""(object file stem, program name) of each attach point (the gateway's: tc egress of a served
network's TUN, which goes with the agent that made it: nothing to detach after it)."""
KERNEL_NAME: Final = 15
"""The kernel keeps a program's name to BPF_OBJ_NAME_LEN - 1 characters."""
OWNS_QDISC: Final = {NODE_PROGRAM[1][:KERNEL_NAME]: True, SUBSTRATE_PROGRAM[1][:KERNEL_NAME]: False}
"""Our programs by their kernel name, and whether the clsact qdisc they sit on is ours (a node
port's is; the substrate interface's is left, only our filter goes)."""

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = (*(ctypes.c_char_p,) * 3, ctypes.c_ulong, ctypes.c_void_p)
_libc.mount.restype = ctypes.c_int


def ensure_bpffs(base: Path) -> None:
    """`base` on a bpf filesystem, made if missing; /sys/fs/bpf mounted first if it is none."""
    mounts = Path("/proc/self/mounts").read_text()
    if not bpffs_at(mounts, base):
        if base.is_relative_to(BPFFS) and not bpffs_at(mounts, BPFFS):
            if _libc.mount(b"bpf", str(BPFFS).encode(), b"bpf", 0, None) != 0:
                code = ctypes.get_errno()
                raise OnmError(f"mounting bpffs on {BPFFS} failed: {os.strerror(code)}")
            log.info("mounted a bpf filesystem on %s", BPFFS)
        if not bpffs_at(Path("/proc/self/mounts").read_text(), base):
            raise OnmError(f"--bpf-pins {base} is not on a bpf filesystem (mount -t bpf)")
    base.mkdir(parents=True, exist_ok=True, mode=0o700)


def found(directory: Path) -> dict[str, MapShape]:
    """Each map pinned in the agent's `directory`, as the kernel describes it."""
    maps = directory / MAPS_DIR
    if not maps.is_dir():
        return {}
    shapes = {}
    for path in sorted(maps.iterdir()):
        fd = pinned_fd(path)
        try:
            info = map_info(fd)
        finally:
            os.close(fd)
        shapes[path.name] = MapShape(
            info.kind, info.key_size, info.value_size, info.max_entries, info.flags
        )
    return shapes


def opened(directory: Path, names: Iterable[str]) -> dict[str, int]:
    """Descriptors of the pinned maps `names` (the caller closes them)."""
    fds: dict[str, int] = {}
    try:
        for name in names:
            fds[name] = pinned_fd(directory / MAPS_DIR / name)
    except BaseException:
        for fd in fds.values():
            os.close(fd)
        raise
    return fds


def pin_maps(directory: Path, maps: DatapathMaps) -> None:
    (directory / MAPS_DIR).mkdir(parents=True, exist_ok=True, mode=0o700)
    for name, bpf_map in maps.maps.items():
        bpf_map.pin(directory / MAPS_DIR / name)


def pin_programs(directory: Path, programs: Iterable[BpfProgram]) -> None:
    """Pin `programs` by name, each in place of the pin an earlier agent left."""
    (directory / PROGRAMS_DIR).mkdir(parents=True, exist_ok=True, mode=0o700)
    for program in programs:
        path = directory / PROGRAMS_DIR / program.name
        path.unlink(missing_ok=True)
        program.pin(path)


def remove(directory: Path) -> bool:
    """Unpin everything under the agent's `directory` and remove it; False if there was none."""
    if not directory.exists():
        return False
    for sub in (MAPS_DIR, PROGRAMS_DIR):
        if (directory / sub).is_dir():
            for path in (directory / sub).iterdir():
                path.unlink(missing_ok=True)
            (directory / sub).rmdir()
    directory.rmdir()
    return True


def _detach_here() -> list[str]:
    """Detach our programs from every interface of the current namespace; what was detached."""
    done = []
    for index, name in socket.if_nameindex():
        hook = TcHook(index, TcAttachPoint.INGRESS)
        try:
            ident = hook.query()
            info = None if ident is None else program_info_by_id(ident)
            if info is None or info.name not in OWNS_QDISC:
                continue
            if OWNS_QDISC[info.name]:
                hook.destroy()
            else:
                hook.detach()
        except BpfError as error:  # the interface went meanwhile
            if error.errno not in (errno.ENODEV, errno.ENOENT):
                raise
            continue
        done.append(f"{name}:{info.name}")
    return done


def detach(netns: str | None) -> list[str]:
    """Every onm program detached from the host's interfaces (none when `netns` is gone)."""
    if netns is not None and not Path(netns_path(netns)).exists():
        return []  # its interfaces, and the filters with them, went with it
    ensure_loaded()
    return run_in_netns_value(netns, _detach_here)


@dataclass(frozen=True, slots=True)
class Cleaned:
    detached: tuple[str, ...]
    """interface:program of each filter removed."""
    removed: bool
    """There were pins, and they are gone."""


def cleanup(host: str, netns: str | None, base: Path) -> Cleaned:
    """The host's programs detached and its pins removed (`onm agent cleanup`)."""
    detached = tuple(detach(netns))
    return Cleaned(detached, remove(pin_dir(base, host, netns)))


def clear_stale(host: str, netns: str | None, base: Path) -> Cleaned | None:
    """Where pins are (an eBPF agent ran here), `cleanup`, with one log line; else nothing
    (and no bpf() call: a userspace agent on a kernel without eBPF never makes one)."""
    if not pin_dir(base, host, netns).exists():
        return None
    cleaned = cleanup(host, netns, base)
    log.warning(
        "eBPF pins of an earlier agent at %s removed and its programs detached (%s): "
        "this agent forwards in userspace",
        pin_dir(base, host, netns),
        ", ".join(cleaned.detached) or "none attached",
    )
    return cleaned
