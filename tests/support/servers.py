"""Programs the system tests run inside namespaces, and a background process list to run them
in: a small HTTP server for nodes (`SERVE`), an external server that tells its peer's address
(`EXTERNAL`), and many concurrent connections to it from one node (`CONNECTIONS`)."""

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


EXTERNAL = r"""
import socketserver, sys, threading, time

class Http(socketserver.StreamRequestHandler):
    # GET /        -> the peer's address, as this host sees it (?t=T: after T seconds)
    # GET /big?n=N&t=T -> N bytes, spread evenly over T seconds (the peer in X-Peer)
    def handle(self):
        words = self.rfile.readline().split()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        path = words[1].decode() if len(words) > 1 else "/"
        query = dict(p.split("=") for p in path.partition("?")[2].split("&") if p)
        peer = self.client_address[0].encode()
        if path.startswith("/big"):
            size, seconds = int(query["n"]), float(query["t"])
            self.wfile.write(
                b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\nX-Peer: %s\r\n\r\n" % (size, peer)
            )
            chunk = b"x" * (size // 50)
            for _ in range(50):
                self.wfile.write(chunk)
                self.wfile.flush()
                time.sleep(seconds / 50)
            self.wfile.write(b"x" * (size - 50 * len(chunk)))
        else:
            time.sleep(float(query.get("t", 0)))
            self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(peer) + peer)

class Banner(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(b"220 " + self.client_address[0].encode() + b"\r\n")

class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

for port, handler in ((80, Http), (25, Banner)):
    server = Server(("0.0.0.0", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""
"""An HTTP server that answers with the peer's address (or a long body) and a port-25
listener that greets with it: both tell the test what source address arrived."""


CONNECTIONS = r"""
import socket, sys, threading
# One connection from each source port at once: what the server saw for each
target, path, ports = sys.argv[1], sys.argv[2], [int(p) for p in sys.argv[3:]]
seen = {}
def one(port):
    try:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", port))
            s.settimeout(10)
            s.connect((target, 80))
            s.sendall(b"GET " + path.encode() + b" HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            seen[port] = data.split(b"\r\n\r\n", 1)[1].decode()
    except (OSError, IndexError) as error:
        seen[port] = f"failed:{error!r}".replace(" ", "_")
threads = [threading.Thread(target=one, args=(p,)) for p in ports]
for t in threads: t.start()
for t in threads: t.join()
for port in sorted(seen): print(port, seen[port])
"""
"""Run in a node: `CONNECTIONS TARGET PATH PORT...`, one HTTP GET to TARGET:80 from each source
port at once; prints `PORT BODY` for each (`EXTERNAL` answers `/` with the address it saw, so
the flow's SNAT address; `failed:ERROR` when it did not complete). `support.edge_lab` runs it."""
