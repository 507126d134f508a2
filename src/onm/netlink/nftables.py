"""onm's nftables table in a network namespace, through libnftables (ctypes over
`libnftables.so.1`, Debian package libnftables1): no `nft` command is run.

A libnftables context talks to the kernel over a netlink socket opened in the namespace of the
thread that uses it, so every call is made inside the namespace by a **forked child** that enters
it with setns(2), makes a fresh context, runs the JSON commands, sends back nft's output or error
text over a pipe and leaves with `os._exit`. Why a child rather than a thread that setns'es or
one context per namespace kept in this process:
- the caller never changes namespace, not even one thread of it (STYLE rule 9);
- libnftables keeps process-wide state and is not documented thread-safe, and it can abort on
  input its evaluator does not expect; in a child an abort is a `KernelError`, not a dead agent;
- a table is applied now and then and counters are read every few seconds: a fork per call
  (milliseconds) costs nothing that matters.
The library is loaded in the parent (dlopen in a forked child of a threaded process could wait
on a loader lock no thread will release); the child only calls into it.

Rules:
- `apply` is one transaction: the ruleset's own `add table` + `flush table` + objects; chains and
  counters of onm's table that the ruleset no longer has (or whose hook changed) are deleted in
  the same transaction, after the flush. Named counters kept by the ruleset keep their values,
  and conntrack state is not touched.
- `delete` removes onm's table only (`add` + `delete` in one transaction: absent is success).
- Every failure is a `KernelError` carrying nft's own message.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import signal
import time
from collections.abc import Callable
from typing import Any, Final

from onm.netlink import helper
from onm.netlink.errors import KernelError
from onm.netlink.gateway_plan import TABLE_FAMILY, TABLE_NAME

LIBRARY: Final = "libnftables.so.1"
NFT_CTX_DEFAULT: Final = 0
"""nft_ctx_new() flags (include/nftables/libnftables.h)."""
NFT_CTX_OUTPUT_JSON: Final = 1 << 4
"""Output as JSON; in libnftables 1.0.6 this also makes input parse as JSON first
(libnftables.h; src/libnftables.c, nft_run_cmd_from_buffer)."""
CLONE_NEWNET: Final = 0x40000000
"""setns(2) nstype of a network namespace (include/uapi/linux/sched.h)."""
TIMEOUT: Final = 10.0
"""Seconds one call may take before its child is killed."""
SUBJECT: Final = f"nftables table {TABLE_FAMILY} {TABLE_NAME}"

_TABLE: Final = {"family": TABLE_FAMILY, "name": TABLE_NAME}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_nft: ctypes.CDLL | None = None


class _NftError(Exception):
    """nft refused a command; the text is nft's own (child only)."""


def _library(netns: str | None) -> ctypes.CDLL:
    """libnftables, loaded once in this process, its functions typed."""
    global _nft
    if _nft is None:
        try:
            lib = ctypes.CDLL(LIBRARY)
        except OSError as error:
            raise KernelError(
                SUBJECT,
                netns,
                f"libnftables is not installed ({LIBRARY}: Debian package libnftables1): {error}",
            ) from error
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_free.restype = None
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.nft_ctx_output_set_flags.restype = None
        for name in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
            getattr(lib, name).restype = ctypes.c_int
        for name in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
            getattr(lib, name).restype = ctypes.c_char_p
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        _nft = lib
    return _nft


def _run(lib: ctypes.CDLL, commands: dict[str, Any]) -> dict[str, Any]:
    """Run JSON `commands` in a fresh context (child only): nft's JSON output ({} if none)."""
    ctx = lib.nft_ctx_new(NFT_CTX_DEFAULT)
    if not ctx:
        raise _NftError("nft_ctx_new failed")
    try:
        lib.nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON)
        if lib.nft_ctx_buffer_output(ctx) != 0 or lib.nft_ctx_buffer_error(ctx) != 0:
            raise _NftError("cannot buffer libnftables output")
        code = lib.nft_run_cmd_from_buffer(ctx, json.dumps(commands).encode())
        output = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode(errors="replace")
        if code != 0:
            error = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace")
            raise _NftError(error.strip() or f"nft_run_cmd_from_buffer returned {code}")
    finally:
        lib.nft_ctx_free(ctx)
    parsed: dict[str, Any] = json.loads(output) if output.strip() else {}
    return parsed


def _listing(lib: ctypes.CDLL) -> list[dict[str, Any]] | None:
    """The objects of onm's table as nft lists them (child only); None if there is none."""
    tables = _run(lib, {"nftables": [{"list": {"tables": None}}]})
    present = any(
        "table" in item
        and item["table"].get("family") == TABLE_FAMILY
        and item["table"].get("name") == TABLE_NAME
        for item in tables.get("nftables", [])
    )
    if not present:
        return None
    listed = _run(lib, {"nftables": [{"list": {"table": dict(_TABLE)}}]})
    items: list[dict[str, Any]] = listed.get("nftables", [])
    return items


def _in_namespace(netns: str | None, work: Callable[[ctypes.CDLL], Any]) -> Any:
    """`work(libnftables)` run in a child inside `netns` (here when None); its JSON result."""
    lib = _library(netns)
    fd = -1
    if netns is not None:
        path = helper.netns_path(netns)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as error:
            raise KernelError(SUBJECT, netns, f"cannot open {path}: {error.strerror}") from error
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except BaseException:
        for descriptor in (read_end, write_end, fd):
            if descriptor >= 0:
                os.close(descriptor)
        raise
    if pid == 0:  # pragma: no cover - runs in the child only
        _child(fd, write_end, lambda: work(lib))
    os.close(write_end)
    if fd >= 0:
        os.close(fd)
    try:
        data = _read_all(read_end, time.monotonic() + TIMEOUT)
    finally:
        os.close(read_end)
        _reap(pid, kill=True)
    if data is None:
        raise KernelError(SUBJECT, netns, f"libnftables did not answer within {TIMEOUT}s")
    if not data:
        raise KernelError(SUBJECT, netns, "libnftables ended without an answer (crashed?)")
    reply: dict[str, Any] = json.loads(data)
    if not reply.get("ok"):
        raise KernelError(SUBJECT, netns, str(reply.get("error")))
    return reply.get("result")


def _child(fd: int, out: int, work: Callable[[], Any]) -> None:  # pragma: no cover - child
    code = 1
    try:
        try:
            if fd >= 0 and _libc.setns(fd, CLONE_NEWNET) != 0:
                raise _NftError(f"setns: {os.strerror(ctypes.get_errno())}")
            reply: dict[str, Any] = {"ok": True, "result": work()}
        except _NftError as error:
            reply = {"ok": False, "error": str(error)}
        except BaseException as error:
            reply = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        data = json.dumps(reply).encode()
        while data:
            data = data[os.write(out, data) :]
        code = 0
    finally:
        os._exit(code)


def _read_all(fd: int, deadline: float) -> bytes | None:
    """Everything until end of file; None if `deadline` passes first."""
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _reap(pid: int, *, kill: bool) -> None:
    if kill:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


# --- the transaction (pure) ----------------------------------------------------------------------
def _ours(item: dict[str, Any], kind: str) -> dict[str, Any] | None:
    body = item.get(kind)
    ours = isinstance(body, dict) and (body.get("family"), body.get("table")) == _KEY
    return body if ours else None


_KEY: Final = (TABLE_FAMILY, TABLE_NAME)
_HOOK_KEYS: Final = ("type", "hook", "prio")


def with_stale_removed(
    ruleset: dict[str, Any], present: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """`ruleset` with, after its `flush table`, a `delete` for each chain or counter of onm's
    table in `present` (nft's listing) that it does not add, or adds with another hook."""
    commands: list[dict[str, Any]] = list(ruleset["nftables"])
    wanted: dict[tuple[str, str], tuple[object, ...]] = {}
    for command in commands:
        add = command.get("add", {})
        for kind in ("chain", "counter"):
            body = _ours(add, kind)
            if body is not None:
                wanted[(kind, body["name"])] = tuple(body.get(k) for k in _HOOK_KEYS)
    deletes: list[dict[str, Any]] = []
    for item in present or ():
        for kind in ("chain", "counter"):
            body = _ours(item, kind)
            if body is None:
                continue
            shape = tuple(body.get(k) for k in _HOOK_KEYS) if kind == "chain" else (None,) * 3
            if wanted.get((kind, body["name"])) != shape:
                target = {"family": TABLE_FAMILY, "table": TABLE_NAME, "name": body["name"]}
                deletes.append({"delete": {kind: target}})
    # Regular chains may be jumped to only from rules, all flushed: delete them after the
    # base chains' rules are gone (the flush), base and regular alike.
    flush = next(
        (i for i, c in enumerate(commands) if c.get("flush", {}).get("table") == _TABLE), None
    )
    if flush is None:
        raise KernelError(SUBJECT, None, "the ruleset does not flush onm's table")
    return {"nftables": [*commands[: flush + 1], *deletes, *commands[flush + 1 :]]}


def counters_of(listing: list[dict[str, Any]] | None) -> dict[str, tuple[int, int]]:
    """Named counters of onm's table in nft's listing: name -> (packets, bytes)."""
    found: dict[str, tuple[int, int]] = {}
    for item in listing or ():
        body = _ours(item, "counter")
        if body is not None:
            found[str(body["name"])] = (int(body.get("packets", 0)), int(body.get("bytes", 0)))
    return found


# --- the API ---------------------------------------------------------------------------------
def apply(namespace: str | None, ruleset_json: str) -> None:
    """Replace onm's table in `namespace` by `ruleset_json` (libnftables JSON that adds and
    flushes the table, as `gateway_plan.realise` makes it), atomically."""
    try:
        ruleset = json.loads(ruleset_json)
    except ValueError as error:
        raise KernelError(SUBJECT, namespace, f"ruleset is not JSON: {error}") from error

    def work(lib: ctypes.CDLL) -> None:
        _run(lib, with_stale_removed(ruleset, _listing(lib)))

    with_stale_removed(ruleset, None)  # refuse a ruleset without its flush here, not in a child
    _in_namespace(namespace, work)


def counters(namespace: str | None) -> dict[str, tuple[int, int]]:
    """Every named counter of onm's table in `namespace`: name -> (packets, bytes); empty when
    there is no such table."""

    def work(lib: ctypes.CDLL) -> dict[str, list[int]]:
        return {k: list(v) for k, v in counters_of(_listing(lib)).items()}

    found: dict[str, list[int]] = _in_namespace(namespace, work)
    return {name: (int(p), int(b)) for name, (p, b) in found.items()}


def listing(namespace: str | None) -> list[dict[str, Any]] | None:
    """onm's table in `namespace` as nft lists it (JSON objects); None if there is none."""
    result: list[dict[str, Any]] | None = _in_namespace(namespace, _listing)
    return result


def delete(namespace: str | None) -> None:
    """Remove onm's table from `namespace` (and nothing else); absent is success."""
    commands = {"nftables": [{"add": {"table": dict(_TABLE)}}, {"delete": {"table": dict(_TABLE)}}]}

    def work(lib: ctypes.CDLL) -> None:
        _run(lib, commands)

    _in_namespace(namespace, work)
