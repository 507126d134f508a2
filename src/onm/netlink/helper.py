"""Sockets opened, and sysctls written, inside other network namespaces by one helper child.

The caller never changes namespace (STYLE rule 9). A helper child is forked on first need and
kept: for each request it enters the namespace with setns(2) (the child may move; it runs
nothing else), opens the socket or writes the sysctls there, and passes the descriptor back
over an AF_UNIX SOCK_SEQPACKET pair with SCM_RIGHTS (unix(7)). A socket keeps the namespace it
was made in for its whole life. One fork serves a whole `onm lab up` instead of one fork per
namespace and per sysctl (a fork of a large Python process costs milliseconds).

Rules:
- The child closes every descriptor it inherited except its end of the pair, so it holds no
  pipe, socket or lock file of the parent's; it dies with its parent (PR_SET_PDEATHSIG: with
  the thread that forked it, after which the next request makes a new one) and ends when the
  parent closes the pair; it never returns into the caller's code (`os._exit`).
- Requests are serialised by a lock; a failure in the child comes back as a `KernelError`
  naming the namespace and the kernel's reason, and the child carries on.
- A helper forked by another process (this one was forked since) is never used: a new one is
  made.

`netns` is a name under /run/netns or an absolute path to a namespace file such as
/proc/PID/ns/net; None means "here" and needs no helper.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno as errnos
import json
import os
import signal
import socket
import threading
from typing import Any, Final

from onm.netlink.errors import KernelError

NETNS_RUN_DIR: Final = "/run/netns"
"""Where named namespaces are bind-mounted (ip-netns(8))."""
CLONE_NEWNET: Final = 0x40000000
"""setns(2) nstype of a network namespace (include/uapi/linux/sched.h)."""
MS_BIND: Final = 4096
MS_REC: Final = 16384
MS_SHARED: Final = 1 << 20
"""mount(2) flags (include/uapi/linux/mount.h)."""
PR_SET_PDEATHSIG: Final = 1
"""prctl(2): the signal the child gets when its parent dies."""
TIMEOUT: Final = 10.0
"""Seconds one request may take before the helper is given up (and killed)."""
MESSAGE: Final = 1 << 16
"""Largest request or reply, bytes."""

# Loaded in the parent: dlopen in a forked child could wait on a lock it will never get.
_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_void_p,
]


def netns_path(netns: str) -> str:
    """The namespace file: /run/netns/NAME, or `netns` itself if it is a path."""
    if netns.startswith("/"):
        return netns
    if netns in ("", ".", "..") or "/" in netns or "\0" in netns:
        raise KernelError("namespace", netns, "not a valid namespace name")
    return os.path.join(NETNS_RUN_DIR, netns)


class _Helper:
    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child only
            ours.close()
            _serve(theirs, parent)
        theirs.close()
        ours.settimeout(TIMEOUT)
        self.pid = pid
        self.owner = os.getpid()
        self.sock = ours

    def ask(self, request: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
        self.sock.sendall(json.dumps(request).encode())
        data, fds, _flags, _address = socket.recv_fds(self.sock, MESSAGE, 4)
        if not data:
            raise OSError(errnos.EPIPE, "the namespace helper ended")
        reply: dict[str, Any] = json.loads(data)
        return reply, fds

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


_lock = threading.Lock()
_helper: _Helper | None = None


def _request(netns: str, subject: str, request: dict[str, Any]) -> list[int]:
    """Send `request` (about `netns`) to the helper; the descriptors it answered with."""
    global _helper
    request["path"] = netns_path(netns)
    with _lock:
        if _helper is not None and _helper.owner != os.getpid():
            _helper = None  # inherited through a fork: the child belongs to our parent
        for attempt in (1, 2):
            fresh = _helper is None
            try:
                if _helper is None:
                    _helper = _Helper()
                reply, fds = _helper.ask(request)
                break
            except (OSError, ValueError) as error:
                if _helper is not None:
                    _helper.close()
                    _helper = None
                # A helper that served before may have ended with the thread that forked it
                # (PR_SET_PDEATHSIG follows the thread): one more try with a new one.
                if fresh or attempt == 2:
                    raise KernelError(subject, netns, f"namespace helper: {error}") from error
    if not reply.get("ok"):
        for fd in fds:
            os.close(fd)
        code = reply.get("errno")
        raise KernelError(subject, netns, str(reply.get("reason")), errno=code)
    return fds


def socket_in(
    netns: str | None, family: int, kind: int, proto: int = 0, *, subject: str = "socket"
) -> socket.socket:
    """A socket made inside `netns` (here when None)."""
    if netns is None:
        return socket.socket(family, kind, proto)
    request = {"op": "socket", "family": family, "type": kind, "proto": proto}
    fds = _request(netns, subject, request)
    if len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise KernelError(subject, netns, f"namespace helper sent {len(fds)} descriptors")
    return socket.socket(fileno=fds[0])


def write_sysctls(netns: str, settings: list[tuple[str, int]]) -> None:
    """Write each `key` (`net.ipv6.conf.all.forwarding`) = value inside `netns`, in order."""
    items = [["/proc/sys/" + key.replace(".", "/"), f"{value}\n"] for key, value in settings]
    subject = "sysctl " + ", ".join(key for key, _ in settings)
    _request(netns, subject, {"op": "sysctl", "items": items})


def create_netns(name: str) -> None:
    """Make the named namespace as `ip netns add` does: a new one bind-mounted on
    /run/netns/NAME (the run directory a shared mount point). KernelError (EEXIST) if it is."""
    _request(name, "namespace", {"op": "create"})


def close() -> None:
    """End the helper (a new one is made when next needed)."""
    global _helper
    with _lock:
        if _helper is not None and _helper.owner == os.getpid():
            _helper.close()
        _helper = None


def _serve(sock: socket.socket, parent: int) -> None:  # pragma: no cover - runs in the child
    code = 0
    try:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            return  # the parent died before the line above (finally: os._exit)
        keep = sock.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
        while data := sock.recv(MESSAGE):
            made: socket.socket | None = None
            try:
                made = _handle(json.loads(data))
                reply: dict[str, Any] = {"ok": True}
            except OSError as error:
                reply = {"ok": False, "errno": error.errno, "reason": error.strerror or str(error)}
            except Exception as error:
                reply = {"ok": False, "errno": None, "reason": f"{type(error).__name__}: {error}"}
            payload = json.dumps(reply).encode()
            if made is not None:
                socket.send_fds(sock, [payload], [made.fileno()])
                made.close()
            else:
                sock.send(payload)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _check(result: int, what: str) -> None:  # pragma: no cover - child only
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _create(path: str) -> None:  # pragma: no cover - child only
    """ip-netns(8)'s `add`, step by step (iproute2 ip/ipnetns.c, netns_add)."""
    directory = os.path.dirname(path).encode()
    os.makedirs(directory, exist_ok=True)
    if _libc.mount(b"", directory, b"none", MS_SHARED | MS_REC, None) != 0:
        _check(_libc.mount(directory, directory, b"none", MS_BIND | MS_REC, None), "bind run dir")
        _check(_libc.mount(b"", directory, b"none", MS_SHARED | MS_REC, None), "share run dir")
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    try:
        _check(_libc.unshare(CLONE_NEWNET), "unshare")
        _check(_libc.mount(b"/proc/self/ns/net", path.encode(), b"none", MS_BIND, None), "mount")
    except OSError:
        os.unlink(path)
        raise


def _handle(request: dict[str, Any]) -> socket.socket | None:  # pragma: no cover - child only
    if request["op"] == "create":
        _create(request["path"])
        return None
    fd = os.open(request["path"], os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns: {os.strerror(err)}")
    finally:
        os.close(fd)
    if request["op"] == "socket":
        return socket.socket(request["family"], request["type"], request["proto"])
    for path, text in request["items"]:
        try:
            with open(path, "w") as file:
                file.write(text)
        except OSError as error:
            raise OSError(error.errno, f"{path}: {error.strerror}") from None
    return None
