"""A thin, typed binding of libbpf (`libbpf.so.1`, Debian 12: 1.1) through ctypes.

Only what the eBPF datapath needs: open and load an object file, find its programs and maps,
read, write and list map entries, pin and unpin under bpffs, load an object onto maps another
object (or a pin) holds (`bpf_map__reuse_fd`), describe a pinned map or program (its kind,
sizes, name), attach, query and detach programs at tc hooks (clsact) and run a program on a
packet (`BPF_PROG_TEST_RUN`). libbpf 1.x reports failures as a negative
errno (or NULL with errno set); every one becomes a `BpfError` naming the object, program or map
and what was being done. libbpf's own log lines (the verifier's among them) are collected and
attached to the error of a failed load.

Nothing here parses ELF or runs `tc`/`bpftool`: libbpf does the loading, the kernel the rest.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import errno
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from onm.errors import OnmError

BPFFS: Final = Path("/sys/fs/bpf")
TC_ACT_OK: Final = 0
TC_ACT_SHOT: Final = 2
TC_ACT_REDIRECT: Final = 7
BPF_ANY: Final = 0
BPF_TC_F_REPLACE: Final = 1 << 0


class BpfError(OnmError):
    """A libbpf call failed: `what` names the object, program or map, `errno` the cause."""

    def __init__(self, what: str, action: str, code: int, log: str = "") -> None:
        detail = f"{what}: {action} failed: {os.strerror(code)} (errno {code})"
        if log:
            detail += "\n" + log
        super().__init__(detail)
        self.what = what
        self.action = action
        self.errno = code
        self.log = log


class TcAttachPoint(enum.IntEnum):
    """`enum bpf_tc_attach_point`."""

    INGRESS = 1 << 0
    EGRESS = 1 << 1


class _TcHook(ctypes.Structure):
    _fields_ = (
        ("sz", ctypes.c_size_t),
        ("ifindex", ctypes.c_int),
        ("attach_point", ctypes.c_int),
        ("parent", ctypes.c_uint32),
    )


class _TcOpts(ctypes.Structure):
    _fields_ = (
        ("sz", ctypes.c_size_t),
        ("prog_fd", ctypes.c_int),
        ("flags", ctypes.c_uint32),
        ("prog_id", ctypes.c_uint32),
        ("handle", ctypes.c_uint32),
        ("priority", ctypes.c_uint32),
    )


class _TestRunOpts(ctypes.Structure):
    _fields_ = (
        ("sz", ctypes.c_size_t),
        ("data_in", ctypes.c_void_p),
        ("data_out", ctypes.c_void_p),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_void_p),
        ("ctx_out", ctypes.c_void_p),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("repeat", ctypes.c_int),
        ("duration", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
    )


_LIBBPF_DEBUG: Final = 2  # enum libbpf_print_level: WARN, INFO, DEBUG
_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_P = ctypes.c_void_p
_I = ctypes.c_int
_S = ctypes.c_char_p
_SIGNATURES: Final[dict[str, tuple[object, tuple[object, ...]]]] = {
    "bpf_object__open_file": (_P, (_S, _P)),
    "bpf_object__load": (_I, (_P,)),
    "bpf_object__close": (None, (_P,)),
    "bpf_object__find_program_by_name": (_P, (_P, _S)),
    "bpf_object__find_map_by_name": (_P, (_P, _S)),
    "bpf_program__fd": (_I, (_P,)),
    "bpf_program__pin": (_I, (_P, _S)),
    "bpf_program__unpin": (_I, (_P, _S)),
    "bpf_map__fd": (_I, (_P,)),
    "bpf_map__key_size": (ctypes.c_uint32, (_P,)),
    "bpf_map__value_size": (ctypes.c_uint32, (_P,)),
    "bpf_map__max_entries": (ctypes.c_uint32, (_P,)),
    "bpf_map__pin": (_I, (_P, _S)),
    "bpf_map__unpin": (_I, (_P, _S)),
    "bpf_map__reuse_fd": (_I, (_P, _I)),
    "bpf_map_get_next_key": (_I, (_I, _P, _P)),
    "bpf_obj_get_info_by_fd": (_I, (_I, _P, ctypes.POINTER(ctypes.c_uint32))),
    "bpf_prog_get_fd_by_id": (_I, (ctypes.c_uint32,)),
    "bpf_tc_query": (_I, (_P, _P)),
    "bpf_map_update_elem": (_I, (_I, _P, _P, ctypes.c_uint64)),
    "bpf_map_lookup_elem": (_I, (_I, _P, _P)),
    "bpf_map_delete_elem": (_I, (_I, _P)),
    "bpf_map_lookup_batch": (_I, (_I, _P, _P, _P, _P, ctypes.POINTER(ctypes.c_uint32), _P)),
    "bpf_obj_get": (_I, (_S,)),
    "bpf_tc_hook_create": (_I, (_P,)),
    "bpf_tc_hook_destroy": (_I, (_P,)),
    "bpf_tc_attach": (_I, (_P, _P)),
    "bpf_tc_detach": (_I, (_P, _P)),
    "bpf_prog_test_run_opts": (_I, (_I, _P)),
    "libbpf_num_possible_cpus": (_I, ()),
    "libbpf_set_print": (_P, (_PRINT_FN,)),
}


_NO_BATCH: Final = frozenset({errno.EINVAL, errno.EOPNOTSUPP, 524})
"""What a map without batch lookups answers (524: the kernel's own ENOTSUPP, as an LPM trie's
`map_lookup_batch` is missing, include/linux/errno.h)."""


class _Library:
    """libbpf.so.1 and libc (for formatting libbpf's log lines), loaded once, typed."""

    def __init__(self) -> None:
        try:
            self.so = ctypes.CDLL("libbpf.so.1", use_errno=True)
        except OSError as exc:
            raise BpfError("libbpf.so.1", "load", errno.ENOENT, str(exc)) from None
        for name, (restype, argtypes) in _SIGNATURES.items():
            function = getattr(self.so, name)
            function.restype = restype
            function.argtypes = argtypes
        self.libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.libc.vsnprintf.restype = ctypes.c_int
        self.libc.vsnprintf.argtypes = (ctypes.c_char_p, ctypes.c_size_t, _S, _P)
        self.log: list[str] = []
        self._printer = _PRINT_FN(self._print)  # kept alive as long as libbpf may call it
        self.so.libbpf_set_print(self._printer)

    def _print(self, level: int, fmt: bytes | None, args: int | None) -> int:
        if level >= _LIBBPF_DEBUG:
            return 0
        buffer = ctypes.create_string_buffer(4096)
        self.libc.vsnprintf(buffer, len(buffer), fmt, args)
        self.log.append(buffer.value.decode(errors="replace"))
        del self.log[:-200]  # the latest lines are the ones that explain a failure
        return 0

    def take_log(self) -> str:
        text = "".join(self.log).strip()
        self.log.clear()
        return text


_LIBRARY: _Library | None = None


def _lib() -> _Library:
    global _LIBRARY
    if _LIBRARY is None:
        _LIBRARY = _Library()
    return _LIBRARY


def _check(what: str, action: str, result: int) -> int:
    """A libbpf int return: >= 0 is the answer, < 0 a negative errno."""
    if result < 0:
        raise BpfError(what, action, -result)
    return result


def _pointer(what: str, action: str, result: int | None) -> int:
    """A libbpf pointer return: NULL means failure, with errno set."""
    if not result:
        raise BpfError(what, action, ctypes.get_errno() or errno.EINVAL, _lib().take_log())
    _lib().take_log()
    return result


def possible_cpus() -> int:
    """How many per-CPU slots a per-CPU map's value has."""
    return _check("libbpf", "count possible CPUs", _lib().so.libbpf_num_possible_cpus())


class BpfMap:
    """A map of a loaded object: typed by its key and value sizes, checked on each call."""

    def __init__(self, name: str, handle: int) -> None:
        so = _lib().so
        self.name = name
        self._handle = handle
        self.fd: int = so.bpf_map__fd(handle)
        self.key_size: int = so.bpf_map__key_size(handle)
        self.value_size: int = so.bpf_map__value_size(handle)
        self.max_entries: int = so.bpf_map__max_entries(handle)

    def _sized(
        self, what: str, data: ctypes.Structure | ctypes.Array[ctypes.c_char], size: int
    ) -> None:
        if ctypes.sizeof(data) != size:
            raise BpfError(
                f"map {self.name}",
                f"use a {what} of {ctypes.sizeof(data)} octets",
                errno.EINVAL,
                f"the map's {what} has {size}",
            )

    def update(
        self,
        key: ctypes.Structure,
        value: ctypes.Structure | ctypes.Array[ctypes.c_char],
        flags: int = BPF_ANY,
    ) -> None:
        self._sized("key", key, self.key_size)
        so = _lib().so
        _check(
            f"map {self.name}",
            "update",
            so.bpf_map_update_elem(self.fd, ctypes.byref(key), ctypes.byref(value), flags),
        )

    def lookup_raw(self, key: ctypes.Structure, size: int) -> bytes | None:
        """The value's octets (`size` of them: per-CPU maps hold one slot per CPU), or None."""
        self._sized("key", key, self.key_size)
        buffer = ctypes.create_string_buffer(size)
        result = _lib().so.bpf_map_lookup_elem(self.fd, ctypes.byref(key), buffer)
        if result == -errno.ENOENT:
            return None
        _check(f"map {self.name}", "lookup", result)
        return buffer.raw

    def keys(self, limit: int | None = None) -> list[bytes]:
        """The keys held now (at most `limit`, by default `max_entries`): a walk with
        `bpf_map_get_next_key`, so entries added or removed meanwhile may be missed or seen
        twice (the kernel's documented behaviour; callers count, they do not depend on it)."""
        so = _lib().so
        found: list[bytes] = []
        here = ctypes.create_string_buffer(self.key_size)
        nxt = ctypes.create_string_buffer(self.key_size)
        previous: ctypes.Array[ctypes.c_char] | None = None
        for _ in range(self.max_entries if limit is None else limit):
            result = so.bpf_map_get_next_key(self.fd, previous, nxt)
            if result == -errno.ENOENT:
                break
            _check(f"map {self.name}", "walk", result)
            found.append(nxt.raw)
            ctypes.memmove(here, nxt, self.key_size)
            previous = here
        return found

    def entries(self) -> dict[bytes, bytes]:
        """Every entry of a (non per-CPU) map: key octets -> value octets (`items`)."""
        return dict(self.items())

    def items(self, batch: int = 4096) -> list[tuple[bytes, bytes]]:
        """Every (key, value) held now, `batch` at a time (`bpf_map_lookup_batch`: one
        syscall a batch, not two an entry), for a hash, LRU or array map; a kernel without batch
        lookups gets a walk (`keys`, then a lookup each)."""
        so = _lib().so
        keys = ctypes.create_string_buffer(self.key_size * batch)
        values = ctypes.create_string_buffer(self.value_size * batch)
        tokens = [ctypes.create_string_buffer(max(self.key_size, 8)) for _ in range(2)]
        found: list[tuple[bytes, bytes]] = []
        start: ctypes.Array[ctypes.c_char] | None = None
        while len(found) < self.max_entries:
            count = ctypes.c_uint32(batch)
            out = tokens[0] if start is not tokens[0] else tokens[1]
            result = so.bpf_map_lookup_batch(
                self.fd, start, out, keys, values, ctypes.byref(count), None
            )
            if result < 0 and result not in (-errno.ENOENT,):
                if not found and -result in _NO_BATCH:
                    return self._walked()
                _check(f"map {self.name}", "read in batches", result)
            k, v = keys.raw, values.raw
            ks, vs = self.key_size, self.value_size
            found.extend(
                (k[i * ks : (i + 1) * ks], v[i * vs : (i + 1) * vs]) for i in range(count.value)
            )
            if result == -errno.ENOENT:
                break
            start = out
        return found

    def _walked(self) -> list[tuple[bytes, bytes]]:
        found = []
        for octets in self.keys():
            key = (ctypes.c_char * self.key_size).from_buffer_copy(octets)
            value = ctypes.create_string_buffer(self.value_size)
            if _lib().so.bpf_map_lookup_elem(self.fd, key, value) == 0:
                found.append((octets, value.raw))
        return found

    def delete(self, key: ctypes.Structure) -> bool:
        """Remove an entry; False when there was none."""
        self._sized("key", key, self.key_size)
        result = _lib().so.bpf_map_delete_elem(self.fd, ctypes.byref(key))
        if result == -errno.ENOENT:
            return False
        _check(f"map {self.name}", "delete", result)
        return True

    def pin(self, path: Path) -> None:
        _check(
            f"map {self.name}",
            f"pin at {path}",
            _lib().so.bpf_map__pin(self._handle, str(path).encode()),
        )

    def unpin(self, path: Path) -> None:
        _check(
            f"map {self.name}",
            f"unpin {path}",
            _lib().so.bpf_map__unpin(self._handle, str(path).encode()),
        )


@dataclass(frozen=True, slots=True)
class TestRun:
    """What a program did to one packet under `BPF_PROG_TEST_RUN`."""

    verdict: int
    packet: bytes
    duration_ns: int


class BpfProgram:
    """A loaded program: attach it to tc, pin it, or run it on a packet."""

    def __init__(self, name: str, handle: int) -> None:
        self.name = name
        self._handle = handle
        self.fd: int = _lib().so.bpf_program__fd(handle)

    def test_run(self, packet: bytes, repeat: int = 1, room: int = 256) -> TestRun:
        """Run the program on `packet` (an Ethernet frame for tc), which may grow by `room`."""
        data_in = ctypes.create_string_buffer(packet, len(packet))
        data_out = ctypes.create_string_buffer(len(packet) + room)
        opts = _TestRunOpts(
            sz=ctypes.sizeof(_TestRunOpts),
            data_in=ctypes.cast(data_in, ctypes.c_void_p),
            data_out=ctypes.cast(data_out, ctypes.c_void_p),
            data_size_in=len(packet),
            data_size_out=len(data_out),
            repeat=repeat,
        )
        _check(
            f"program {self.name}",
            "test run",
            _lib().so.bpf_prog_test_run_opts(self.fd, ctypes.byref(opts)),
        )
        return TestRun(opts.retval, data_out.raw[: opts.data_size_out], opts.duration)

    def pin(self, path: Path) -> None:
        _check(
            f"program {self.name}",
            f"pin at {path}",
            _lib().so.bpf_program__pin(self._handle, str(path).encode()),
        )

    def unpin(self, path: Path) -> None:
        _check(
            f"program {self.name}",
            f"unpin {path}",
            _lib().so.bpf_program__unpin(self._handle, str(path).encode()),
        )


class BpfObject:
    """An object file opened and loaded into the kernel; `close()` (or `with`) releases it."""

    def __init__(self, path: Path, reuse: Mapping[str, int] | None = None) -> None:
        """`reuse`: map name -> descriptor of a map (another object's, or a pin) this object's
        map of that name becomes instead of a new one (libbpf dups the descriptor)."""
        self.path = path
        so = _lib().so
        _lib().take_log()
        ctypes.set_errno(0)
        self._handle: int | None = _pointer(
            f"object {path}", "open", so.bpf_object__open_file(str(path).encode(), None)
        )
        try:
            for name, fd in (reuse or {}).items():
                found = _pointer(
                    f"map {name} of {path}",
                    "find",
                    so.bpf_object__find_map_by_name(self._handle, name.encode()),
                )
                _check(
                    f"map {name} of {path}", "reuse a descriptor", so.bpf_map__reuse_fd(found, fd)
                )
        except BaseException:
            self.close()
            raise
        result = so.bpf_object__load(self._handle)
        if result < 0:
            log = _lib().take_log()
            self.close()
            raise BpfError(f"object {path}", "load", -result, log)

    def _live(self) -> int:
        if self._handle is None:
            raise BpfError(f"object {self.path}", "use", errno.EBADF, "it is closed")
        return self._handle

    def program(self, name: str) -> BpfProgram:
        handle = _lib().so.bpf_object__find_program_by_name(self._live(), name.encode())
        return BpfProgram(name, _pointer(f"program {name} of {self.path}", "find", handle))

    def map(self, name: str) -> BpfMap:
        handle = _lib().so.bpf_object__find_map_by_name(self._live(), name.encode())
        return BpfMap(name, _pointer(f"map {name} of {self.path}", "find", handle))

    def close(self) -> None:
        if self._handle is not None:
            _lib().so.bpf_object__close(self._handle)
            self._handle = None

    def __enter__(self) -> BpfObject:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def pinned_fd(path: Path) -> int:
    """A descriptor of a pinned program or map (the caller closes it)."""
    return _check(f"pin {path}", "open", _lib().so.bpf_obj_get(str(path).encode()))


def ensure_loaded() -> None:
    """Load libbpf now, in this process: a child forked later (to enter a namespace) must not
    be the one to dlopen it (it could wait on a lock it will never get)."""
    _lib()


@dataclass(frozen=True, slots=True)
class MapInfo:
    """What the kernel says of a map (the head of `struct bpf_map_info`, uapi linux/bpf.h)."""

    kind: int
    """`enum bpf_map_type`."""
    id: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int


@dataclass(frozen=True, slots=True)
class ProgramInfo:
    """What the kernel says of a program (`struct bpf_prog_info`: type, id, name)."""

    kind: int
    id: int
    name: str
    """The first BPF_OBJ_NAME_LEN - 1 (15) characters of the program's name."""


_MAP_INFO_SIZE: Final = 40  # type, id, key_size, value_size, max_entries, map_flags, name[16]
_PROG_INFO_SIZE: Final = 80  # up to and with name[16] at offset 64
_PROG_NAME_AT: Final = 64


def _info(fd: int, size: int, what: str) -> bytes:
    buffer = ctypes.create_string_buffer(size)
    length = ctypes.c_uint32(size)
    _check(what, "describe", _lib().so.bpf_obj_get_info_by_fd(fd, buffer, ctypes.byref(length)))
    return buffer.raw


def map_info(fd: int) -> MapInfo:
    """The kind and sizes of the map `fd` is a descriptor of."""
    raw = _info(fd, _MAP_INFO_SIZE, f"map fd {fd}")
    kind, ident, key, value, entries, flags = (
        int.from_bytes(raw[i : i + 4], "little") for i in range(0, 24, 4)
    )
    return MapInfo(kind, ident, key, value, entries, flags)


def program_info(fd: int) -> ProgramInfo:
    raw = _info(fd, _PROG_INFO_SIZE, f"program fd {fd}")
    name = raw[_PROG_NAME_AT : _PROG_NAME_AT + 16].split(b"\0", 1)[0].decode(errors="replace")
    return ProgramInfo(int.from_bytes(raw[0:4], "little"), int.from_bytes(raw[4:8], "little"), name)


def program_info_by_id(ident: int) -> ProgramInfo | None:
    """The program of kernel id `ident` (None: gone meanwhile)."""
    result = _lib().so.bpf_prog_get_fd_by_id(ident)
    if result == -errno.ENOENT:
        return None
    fd = _check(f"program id {ident}", "open", result)
    try:
        return program_info(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class TcHook:
    """A clsact hook of one interface and direction."""

    ifindex: int
    attach_point: TcAttachPoint

    def _struct(self) -> _TcHook:
        return _TcHook(
            sz=ctypes.sizeof(_TcHook), ifindex=self.ifindex, attach_point=self.attach_point
        )

    def create(self) -> None:
        """Add the clsact qdisc; one that exists already is success (idempotent)."""
        result = _lib().so.bpf_tc_hook_create(ctypes.byref(self._struct()))
        if result != -errno.EEXIST:
            _check(f"tc hook of ifindex {self.ifindex}", "create", result)

    def destroy(self) -> None:
        """Remove the clsact qdisc (both directions' filters with it)."""
        hook = _TcHook(
            sz=ctypes.sizeof(_TcHook),
            ifindex=self.ifindex,
            attach_point=TcAttachPoint.INGRESS | TcAttachPoint.EGRESS,
        )
        result = _lib().so.bpf_tc_hook_destroy(ctypes.byref(hook))
        if result not in (-errno.ENOENT, -errno.EINVAL):
            _check(f"tc hook of ifindex {self.ifindex}", "destroy", result)

    def attach(self, program: BpfProgram, handle: int = 1, priority: int = 1) -> int:
        """Attach (or atomically replace: BPF_TC_F_REPLACE) the filter at (handle, priority);
        returns the program id the kernel reports."""
        opts = _TcOpts(
            sz=ctypes.sizeof(_TcOpts),
            prog_fd=program.fd,
            flags=BPF_TC_F_REPLACE,
            handle=handle,
            priority=priority,
        )
        _check(
            f"program {program.name} on ifindex {self.ifindex}",
            "tc attach",
            _lib().so.bpf_tc_attach(ctypes.byref(self._struct()), ctypes.byref(opts)),
        )
        return int(opts.prog_id)

    def query(self, handle: int = 1, priority: int = 1) -> int | None:
        """The id of the program attached at (handle, priority), or None when there is none
        (or no clsact qdisc at all)."""
        opts = _TcOpts(sz=ctypes.sizeof(_TcOpts), handle=handle, priority=priority)
        result = _lib().so.bpf_tc_query(ctypes.byref(self._struct()), ctypes.byref(opts))
        if result in (-errno.ENOENT, -errno.EINVAL):
            return None
        _check(f"tc filter {handle}:{priority} on ifindex {self.ifindex}", "query", result)
        return int(opts.prog_id)

    def detach(self, handle: int = 1, priority: int = 1) -> None:
        opts = _TcOpts(sz=ctypes.sizeof(_TcOpts), handle=handle, priority=priority)
        _check(
            f"tc filter {handle}:{priority} on ifindex {self.ifindex}",
            "detach",
            _lib().so.bpf_tc_detach(ctypes.byref(self._struct()), ctypes.byref(opts)),
        )
