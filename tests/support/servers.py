"""Programs the system tests run inside namespaces: a background process list, and a small
HTTP server for nodes."""

from __future__ import annotations

import subprocess
from typing import Any

from support.netns_tools import in_netns


class Background:
    """Programs started inside namespaces (`ip netns exec` execs them: the pid is theirs)."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[str]] = []

    def start(self, namespace: str, *command: str, **options: Any) -> subprocess.Popen[str]:
        process = subprocess.Popen(in_netns(namespace, *command), text=True, **options)
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)


SERVE = """\
import functools, http.server, socketserver, sys

class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True

address, port, directory = sys.argv[1], int(sys.argv[2]), sys.argv[3]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
Server((address, port), handler).serve_forever()
"""
"""`python -m http.server` on a plain TCPServer: http.server's own HTTPServer looks its address
up in DNS (`socket.getfqdn`) before it listens, and a node has no DNS server to answer."""
