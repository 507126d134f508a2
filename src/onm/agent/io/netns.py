"""Run a little work inside another network namespace without ever moving the agent there.

The agent stays in the namespace it started in (STYLE rule 9). When it needs a socket inside
another namespace (the lab host's, `/run/netns/NAME`), a short-lived child is forked: the child
enters the namespace with setns(2), calls the opener, passes the sockets' file descriptors back
over an AF_UNIX socketpair with SCM_RIGHTS (unix(7)) and leaves with `os._exit`. A socket keeps
the namespace it was created in for its whole life, so the parent can use it from anywhere.
`run_in_netns_value` does the same for a small picklable result (interface facts, say).

Rules:
- The parent never calls setns; only the child does, and the child never returns into the
  caller's code: whatever happens it ends with `os._exit` (no atexit handlers, no stdio flush).
- The child is always reaped, and killed first if it has not answered within `timeout`.
- Any failure (no such namespace, setns refused, the opener raised) becomes a `NamespaceError`
  naming the namespace and carrying the child's error text; the child's exception itself is
  attached as `__cause__` when it can be pickled.
- Only O_NONBLOCK travels with a descriptor (it belongs to the open file); a Python-level socket
  timeout set by the opener does not.
- The child is made with fork(2), so call these before starting threads where possible: the
  child only runs the opener, but that opener must not need a lock another thread was holding.

`netns` is a name under /run/netns (what `ip netns add` creates) or an absolute path to a
namespace file such as /proc/PID/ns/net; None means "here" and runs the work in-process.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import pickle
import signal
import socket
import struct
from collections.abc import Callable
from typing import NoReturn, TypeVar, cast

from onm.agent.io.errors import NamespaceError

T = TypeVar("T")

NETNS_RUN_DIR = "/run/netns"
"""Where `ip netns add NAME` bind-mounts the namespace file (ip-netns(8))."""

CLONE_NEWNET = 0x40000000
"""setns(2) nstype for a network namespace (include/uapi/linux/sched.h)."""

SCM_MAX_FD = 253
"""Most descriptors one SCM_RIGHTS message may carry (include/net/scm.h)."""

DEFAULT_TIMEOUT = 10.0
"""Seconds the parent waits for the child's answer before killing it."""

# The child's one reply: status byte, number of descriptors, payload length; then the payload.
_HEADER = struct.Struct("!BHI")
_OK = 0
_FAILED = 1
_SILENT = 2  # not sent by the child: it closed the socketpair without a reply

# Loaded once, in the parent: dlopen in a forked child could wait on a lock it will never get.
_libc = ctypes.CDLL(None, use_errno=True)
_libc_setns = _libc.setns
_libc_setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc_setns.restype = ctypes.c_int


def netns_path(netns: str) -> str:
    """The namespace file for `netns`: /run/netns/NAME, or `netns` itself if it is absolute."""
    if netns.startswith("/"):
        return netns
    if netns in ("", ".", "..") or "/" in netns or "\0" in netns:
        raise NamespaceError(netns, "not a valid namespace name")
    return os.path.join(NETNS_RUN_DIR, netns)


def run_in_netns(
    netns: str | None,
    opener: Callable[[], list[socket.socket]],
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[socket.socket]:
    """Sockets made by `opener` inside `netns`, handed back to this process (order kept)."""
    if netns is None:
        return opener()

    def work() -> tuple[bytes, list[int], object]:
        sockets = opener()
        if not isinstance(sockets, list) or not all(
            isinstance(sock, socket.socket) for sock in sockets
        ):
            raise TypeError("the opener must return a list of sockets")
        if len(sockets) > SCM_MAX_FD:
            raise ValueError(f"at most {SCM_MAX_FD} sockets can be passed back at once")
        # `sockets` is returned as the keep-alive so the descriptors stay open until sent.
        return b"", [sock.fileno() for sock in sockets], sockets

    _payload, fds = _run_child(netns, work, timeout)
    result: list[socket.socket] = []
    try:
        while fds:
            sock = socket.socket(fileno=fds[0])
            fds.pop(0)
            result.append(sock)
            # The open file's O_NONBLOCK came along; make Python's view of the socket agree.
            if not os.get_blocking(sock.fileno()):
                sock.setblocking(False)
    except BaseException:
        for sock in result:
            sock.close()
        for fd in fds:
            os.close(fd)
        raise
    return result


def run_in_netns_fds(
    netns: str | None, opener: Callable[[], list[int]], *, timeout: float = DEFAULT_TIMEOUT
) -> list[int]:
    """File descriptors that are not sockets (a TUN device, say) opened by `opener` inside
    `netns` and handed back; the caller owns (and closes) them."""
    if netns is None:
        return opener()

    def work() -> tuple[bytes, list[int], object]:
        fds = opener()
        if len(fds) > SCM_MAX_FD:
            raise ValueError(f"at most {SCM_MAX_FD} descriptors can be passed back at once")
        return b"", fds, None

    _payload, fds = _run_child(netns, work, timeout)
    return fds


def run_in_netns_value(
    netns: str | None, fn: Callable[[], T], *, timeout: float = DEFAULT_TIMEOUT
) -> T:
    """What `fn()` returns when called inside `netns`; the result must be picklable and small."""
    if netns is None:
        return fn()

    def work() -> tuple[bytes, list[int], object]:
        return pickle.dumps(fn()), [], None

    payload, _fds = _run_child(netns, work, timeout)
    return cast(T, pickle.loads(payload))


def _run_child(
    netns: str, work: Callable[[], tuple[bytes, list[int], object]], timeout: float
) -> tuple[bytes, list[int]]:
    """Fork, enter `netns` in the child, run `work` there; the payload and descriptors sent."""
    path = netns_path(netns)
    try:
        ns_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NamespaceError(netns, f"does not exist (no {path})") from None
    except OSError as error:
        raise NamespaceError(netns, f"cannot open {path}: {error.strerror}") from error
    try:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    except BaseException:
        os.close(ns_fd)
        raise
    try:
        pid = os.fork()
    except BaseException:
        os.close(ns_fd)
        ours.close()
        theirs.close()
        raise
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        ours.close()
        _child(ns_fd, theirs, work)
    os.close(ns_fd)
    theirs.close()
    answered = False
    try:
        ours.settimeout(timeout)
        try:
            status, payload, fds = _receive_reply(ours)
        except TimeoutError:
            raise NamespaceError(
                netns, f"the helper child did not answer within {timeout}s"
            ) from None
        except OSError as error:
            raise NamespaceError(netns, f"bad reply from the helper child: {error}") from error
        answered = True
    finally:
        ours.close()
        exit_status = _reap(pid, kill=not answered)
    if status == _FAILED:
        for fd in fds:
            os.close(fd)
        remote_type, text, original = _load_failure(payload)
        raise NamespaceError(netns, f"{remote_type}: {text}", remote_type=remote_type) from original
    if status == _SILENT:
        raise NamespaceError(
            netns, f"the helper child ended without answering (exit status {exit_status})"
        )
    return payload, fds


def _child(
    ns_fd: int, sock: socket.socket, work: Callable[[], tuple[bytes, list[int], object]]
) -> NoReturn:  # pragma: no cover - runs in the forked child only
    keep_alive: object = None
    try:
        if _libc_setns(ns_fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns(CLONE_NEWNET) failed: {os.strerror(err)}")
        os.close(ns_fd)
        payload, fds, keep_alive = work()
        status = _OK
    except BaseException as error:
        status, payload, fds = _FAILED, _dump_failure(error), []
    code = 2
    try:
        _send_reply(sock, status, payload, fds)
        code = 0 if status == _OK else 1
    finally:
        del keep_alive
        os._exit(code)


def _send_reply(sock: socket.socket, status: int, payload: bytes, fds: list[int]) -> None:
    header = _HEADER.pack(status, len(fds), len(payload))
    if fds:
        # The descriptors ride on the header bytes; the payload follows on the stream.
        sent = socket.send_fds(sock, [header], fds)
    else:
        sent = sock.send(header)
    sock.sendall(header[sent:] + payload)


def _receive_reply(sock: socket.socket) -> tuple[int, bytes, list[int]]:
    """The child's status, payload and descriptors (all closed again if anything is wrong)."""
    data, fds, flags, _address = socket.recv_fds(
        sock, _HEADER.size, SCM_MAX_FD, socket.MSG_CMSG_CLOEXEC
    )
    try:
        if not data:
            return _SILENT, b"", []
        if flags & socket.MSG_CTRUNC:
            raise OSError(errno.EMSGSIZE, "descriptors from the helper child were truncated")
        header = data + _receive_exactly(sock, _HEADER.size - len(data))
        status, count, length = _HEADER.unpack(header)
        if count != len(fds):
            raise OSError(errno.EPROTO, f"expected {count} descriptors, got {len(fds)}")
        return status, _receive_exactly(sock, length), fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    while size > 0:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise OSError(errno.EPROTO, "the helper child's reply was cut short")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _dump_failure(error: BaseException) -> bytes:
    """Type name, text and (when it survives a round trip) the exception itself, pickled."""
    carried: BaseException | None = error
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        carried = None
    try:
        return pickle.dumps((type(error).__name__, str(error), carried))
    except Exception:
        return pickle.dumps((type(error).__name__, str(error), None))


def _load_failure(payload: bytes) -> tuple[str, str, BaseException | None]:
    try:
        remote_type, text, original = pickle.loads(payload)
    except Exception:
        return "UnreadableError", "the helper child's error could not be decoded", None
    return str(remote_type), str(text), original if isinstance(original, BaseException) else None


def _reap(pid: int, *, kill: bool) -> int | None:
    """Wait for the child (killing it first if asked); its exit status, None if unknown."""
    if kill:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    try:
        _pid, wait_status = os.waitpid(pid, 0)
    except ChildProcessError:
        # Someone else (a SIGCHLD handler calling waitpid(-1)) reaped it first.
        return None
    return os.waitstatus_to_exitcode(wait_status)
