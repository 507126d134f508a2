"""`onm demo`'s part from seed 1 (US9356860), FIG. 2C: node A reaches external computer system
C (30.0.2.2, server `www` on the lab's internet) through the edge pool `egress` of three edge
devices. Each flow's gateway is picked by A's own agent from the pool's Maglev table (the
5-tuple hashed), C sees every flow from its gateway's SNAT address, and one gateway dying
moves its own flows only, while a download through another carries on. Then A gets a public IP
on the pool: C connects to A by it and A sees C's own address, and A's flows leave from it.

As in `onm.lab.demo`, every line printed is read off the running system (the manager's API,
what C saw, the agents' logs); the shares and the moves are compared with the Maglev table
computed here the way every agent computes it.
"""

from __future__ import annotations

import ipaddress
import select
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from onm.lab import processes
from onm.lab.demo import Demo, DemoError
from onm.lab.plan import Role
from onm.lab.state import process_key
from onm.model.edge_pool import HashField
from onm.selection import maglev, public_ip
from onm.selection.flow import Flow, flow_hash

C = "30.0.2.2"
SERVER_NAME = "www"
POOL = "znet/egress"
A_IP = bytes([10, 0, 0, 2])
FLOW_PORTS = range(47000, 47030)
DOWNLOAD = (2_000_000, 3.0)
"""Bytes, and the seconds C takes to send them."""
PUBLIC = ipaddress.IPv4Address("30.0.100.50")
"""A's public IP (the external network's, no gateway's)."""

SERVER = r"""
import socketserver, sys, threading, time
tell = "--tell" in sys.argv  # also print each GET / peer on stdout (A's server: what A sees)
class Http(socketserver.StreamRequestHandler):
    # GET / -> the peer's address; GET /big?n=N&t=T -> N bytes over T s, the peer in X-Peer
    def handle(self):
        words = self.rfile.readline().split()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        path = words[1].decode() if len(words) > 1 else "/"
        peer = self.client_address[0].encode()
        if path.startswith("/big"):
            query = dict(p.split("=") for p in path.partition("?")[2].split("&"))
            size, seconds = int(query["n"]), float(query["t"])
            head = b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\nX-Peer: %s\r\n\r\n" % (size, peer)
            self.wfile.write(head)
            chunk = b"x" * (size // 30)
            for _ in range(30):
                self.wfile.write(chunk)
                self.wfile.flush()
                time.sleep(seconds / 30)
            self.wfile.write(b"x" * (size - 30 * len(chunk)))
        else:
            self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(peer) + peer)
            if tell:
                print(peer.decode(), flush=True)
class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
threading.Thread(target=Server(("0.0.0.0", 80), Http).serve_forever, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""
"""C's web server (and, with --tell, A's): it answers with the peer's address it saw."""

FLOWS = r"""
import socket, sys, threading
target, ports, seen = sys.argv[1], [int(p) for p in sys.argv[2:]], {}
def one(port):
    try:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", port))
            s.settimeout(3)
            s.connect((target, 80))
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
            seen[port] = data.split(b"\r\n\r\n", 1)[1].decode()
    except (OSError, IndexError):
        seen[port] = "failed"
threads = [threading.Thread(target=one, args=(p,)) for p in ports]
for t in threads: t.start()
for t in threads: t.join()
for port in sorted(seen): print(port, seen[port])
"""
"""One connection from each source port at once, from a node: PORT and what C saw, a line each."""


class EdgeStory:
    """FIG. 2C told with `demo`'s lab, client and narration."""

    def __init__(self, demo: Demo) -> None:
        self.demo = demo
        self.server: subprocess.Popen[str] | None = None
        self.a_server: subprocess.Popen[str] | None = None
        self.names: dict[str, str] = {}
        """SNAT address -> gateway name."""
        self.ids: dict[str, str] = {}
        """Gateway name -> id."""
        self.hosts: dict[str, str] = {}
        """Gateway name -> its edge host's name."""
        self.table: list[str] = []
        self.fields: frozenset[HashField] = frozenset()

    def run(self) -> None:
        try:
            self.start_server()
            self.reach()
            before = self.shares()
            self.a_gateway_dies(before)
            self.public_ip()
        finally:
            for server in (self.server, self.a_server):
                if server is not None:
                    server.terminate()
                    server.wait(timeout=5)

    # --- helpers -----------------------------------------------------------------------------

    def start_in(self, role: Role, owner: str, *command: str) -> subprocess.Popen[str]:
        """`command` started inside a node's or server's namespace, as a user would."""
        return subprocess.Popen(
            ["ip", "netns", "exec", self.demo.namespace(role, owner), *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def start_server(self) -> None:
        self.server = self.start_in(Role.SERVER, SERVER_NAME, sys.executable, "-c", SERVER)
        assert self.server.stdout is not None
        if self.server.stdout.readline().strip() != "ready":
            raise DemoError("C's web server did not start")

    def start_a_server(self) -> subprocess.Popen[str]:
        """The same web server inside node A, printing each peer it sees."""
        self.a_server = self.start_in(Role.NODE, "a", sys.executable, "-c", SERVER, "--tell")
        assert self.a_server.stdout is not None
        if self.a_server.stdout.readline().strip() != "ready":
            raise DemoError("A's web server did not start")
        return self.a_server

    def judged_down(self, gateway: str) -> str:
        """Wait until the manager judges `gateway` down (its prober's report, or its agent's
        silence); why it does."""
        client = self.demo.client
        assert client is not None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            found = [g for g in client.gateway_health("znet/egress") if g.name == gateway]
            if found and found[0].health == "down":
                return found[0].why
            time.sleep(0.2)
        raise DemoError(f"the manager never judged {gateway} down")

    def run_in_c(self, *command: str) -> str:
        """`command`'s output, run inside C (the external server `www`)."""
        return self.demo.run_in(SERVER_NAME, *command, role=Role.SERVER).stdout.strip()

    def gateway_of(self, port: int) -> str:
        """The gateway (name) A's agent gives a new flow from `port` to C: the Maglev table's."""
        flow = Flow(A_IP, bytes([30, 0, 2, 2]), 6, port, 80)
        chosen = maglev.lookup(self.table, flow_hash(flow, self.fields))
        return {v: k for k, v in self.ids.items()}.get(chosen or "", "?")

    def flows(self, ports: range) -> dict[int, str]:
        """Source port -> the gateway C saw that connection from (by its SNAT address)."""
        done = self.demo.run_in("a", sys.executable, "-c", FLOWS, C, *map(str, ports))
        seen = {}
        for line in done.stdout.splitlines():
            port, address = line.split(" ", 1)
            seen[int(port)] = self.names.get(address, address)
        return seen

    @staticmethod
    def shares_of(seen: dict[int, str]) -> str:
        return ", ".join(
            f"{name} {count}" for name, count in sorted(Counter(seen.values()).items())
        )

    # --- the story ---------------------------------------------------------------------------

    def reach(self) -> None:
        client = self.demo.client
        assert client is not None
        self.demo.step(
            "Seed 1's FIG. 2C: A reaches external system C (30.0.2.2) through edge pool egress"
        )
        pool = client.get_edge_pool(POOL)
        hosts = {h.id: h.name for h in client.list_hosts()}
        gateways = sorted(pool.gateways, key=lambda g: g.id)
        self.names = {g.external_ip: g.name for g in gateways}
        self.ids = {g.name: g.id for g in gateways}
        self.hosts = {g.name: hosts[g.host_id] for g in gateways}
        self.table = list(maglev.build(g.id for g in gateways if g.state == "active"))
        self.fields = frozenset(HashField(f) for f in pool.hash_fields)
        shown = ", ".join(
            f"{g.name} {g.external_ip} on {hosts[g.host_id].upper()}"
            for g in sorted(gateways, key=lambda g: g.name)
        )
        self.demo.say(f"the manager's pool: {shown}; hashed on {','.join(pool.hash_fields)}")
        deadline, answer = time.monotonic() + 15, ""
        while not answer and time.monotonic() < deadline:
            answer = self.demo.run_in("a", "curl", "-s", "-m", "2", f"http://{C}/").stdout.strip()
        if answer not in self.names:
            raise DemoError(f"A did not reach C through a gateway (C saw {answer!r})")
        self.demo.say(
            f"A: GET http://{C}/ -> C saw it from {answer} ({self.names[answer]}): "
            "the gateway's own address, A's 10.0.0.2 never leaves the overlay"
        )

    def shares(self) -> dict[int, str]:
        seen = self.flows(FLOW_PORTS)
        agree = sum(seen.get(p) == self.gateway_of(p) for p in FLOW_PORTS)
        self.demo.say(
            f"A opens {len(FLOW_PORTS)} connections to C at once; C sees them from: "
            f"{self.shares_of(seen)}"
        )
        self.demo.say(
            f"each through the gateway A's agent picked from the pool's Maglev table "
            f"(computed here the same way: {agree} of {len(FLOW_PORTS)} agree)"
        )
        if agree != len(FLOW_PORTS) or len(set(seen.values())) < 2:
            raise DemoError(f"A's flows did not spread as the Maglev table says: {seen}")
        return seen

    def a_gateway_dies(self, before: dict[int, str]) -> None:
        demo = self.demo
        assert demo.state is not None
        victim, carrier = "e2", "e1"
        demo.step(f"Edge device {victim} dies: only its flows move, a download through e1 goes on")
        port = next(p for p in range(47100, 48000) if self.gateway_of(p) == carrier)
        size, seconds = DOWNLOAD
        download = self.start_in(
            Role.NODE,
            "a",
            *("curl", "-s", "-m", "20", "--local-port", str(port), "-o", "/dev/null"),
            *("-w", "%{size_download} %header{x-peer}"),
            f"http://{C}/big?n={size}&t={seconds}",
        )
        time.sleep(0.5)
        host = "gw2"  # e2's edge host (fig2a.yaml)
        record = demo.state.process(process_key("agent", host))
        if record is None:
            raise DemoError(f"the lab records no agent on {host}")
        agent_r = demo.state.process(process_key("agent", "r"))
        if agent_r is None:
            raise DemoError("the lab records no agent on r")
        stopped = time.monotonic()
        processes.stop(record)
        silent = self.silence_seen(Path(agent_r.log), self.ids[victim], stopped)
        demo.say(
            f"A downloads {size} bytes from C over {seconds:g} s through {carrier}; 0.5 s in, "
            f"{victim}'s agent on {host.upper()} is stopped; A's agent (R) finds {victim} "
            f"silent {silent:.2f} s later"
        )
        after = self.flows(FLOW_PORTS)
        moved = {p: g for p, g in after.items() if before.get(p) == victim}
        kept = [p for p in FLOW_PORTS if before.get(p) != victim and after.get(p) == before[p]]
        demo.say(
            f"A's {len(FLOW_PORTS)} connections again: the {len(moved)} through {victim} now "
            f"through {self.shares_of(moved) or 'none'}; "
            f"{len(kept)} of the {len(FLOW_PORTS) - len(moved)} others kept their gateway"
        )
        if victim in after.values() or len(kept) != len(FLOW_PORTS) - len(moved):
            raise DemoError(f"flows moved that should not have: before {before}, after {after}")
        out, _ = download.communicate(timeout=30)
        words = out.split()
        if download.returncode != 0 or words[:1] != [str(size)]:
            raise DemoError(f"the download through {carrier} broke: {out!r}")
        demo.say(
            f"the download: {words[0]} bytes, whole, seen by C from {words[1]} "
            f"({self.names.get(words[1], '?')}) all along"
        )

    def applied(self, hosts: tuple[str, ...]) -> float:
        """Seconds until the agents of `hosts` report the manager's revision of now applied
        (`onm status`): until then A's flows may still be hashed over the SNAT addresses."""
        client = self.demo.client
        assert client is not None
        started = time.monotonic()
        revision = client.status().revision
        while time.monotonic() - started < 15:
            found = {h.host: h.applied_revision for h in client.status().hosts}
            if all(found.get(host, -1) >= revision for host in hosts):
                return time.monotonic() - started
            time.sleep(0.05)
        raise DemoError(f"the agents of {', '.join(hosts)} never applied revision {revision}")

    def silence_seen(self, log: Path, gateway_id: str, since: float) -> float:
        """Seconds from `since` until agent R's log says `gateway_id` stopped answering."""
        line = f"edge gateway {gateway_id} "
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            tail = log.read_text(errors="replace").splitlines()[-50:]
            if any(line in t and "stopped answering" in t for t in tail):
                return time.monotonic() - since
            time.sleep(0.05)
        raise DemoError(f"agent R never found gateway {gateway_id} silent")

    def public_ip(self) -> None:
        """Issue #10: a public IP makes a node reachable from outside (1:1 NAT at the gateway
        holding it), and the node's own flows leave from it, not from the SNAT addresses."""
        client = self.demo.client
        assert client is not None
        stopped = "e2"  # a_gateway_dies stopped its agent for good
        self.demo.step("A public IP on egress makes node A reachable from outside (1:1 NAT)")
        server = self.start_a_server()
        why = self.judged_down(stopped)
        address = PUBLIC
        up = [i for name, i in self.ids.items() if name != stopped]
        names = {i: name for name, i in self.ids.items()}
        expected = names.get(public_ip.owner(address, up) or "", "none")
        added = client.add_public_ip("znet/a", "egress", str(address))
        self.demo.say(
            f"onm node public-ip add a --edge-pool egress --ip {added.ip} -> held by "
            f"{added.gateway} (the owner rule over the gateways up, computed here: {expected}; "
            f"{stopped} holds none: the manager judges it down, {why})"
        )
        if added.gateway != expected:
            raise DemoError(f"the manager put {address} on {added.gateway}, not {expected}")
        holder = self.hosts[expected]
        took = self.applied(("r", holder))
        self.demo.say(
            f"A's agent (R) and {added.gateway}'s ({holder.upper()}) applied it {took:.2f} s "
            "after the add (onm status: neither lagging)"
        )
        url = f"http://{address}/"
        started, deadline, answer = time.monotonic(), time.monotonic() + 15, ""
        while not answer and time.monotonic() < deadline:
            answer = self.run_in_c("curl", "-s", "-m", "2", url)
        took = time.monotonic() - started
        assert server.stdout is not None
        ready, _, _ = select.select([server.stdout], [], [], 2)
        seen_by_a = server.stdout.readline().strip() if ready else ""
        if not answer or seen_by_a != C:
            raise DemoError(
                f"C did not reach A by {address}: C got {answer!r}, A saw {seen_by_a!r}"
            )
        self.demo.say(
            f"C (www): GET {url} -> answered by A's own web server {took:.2f} s later; "
            f"A saw the connection from {seen_by_a} (C's own address, untranslated; "
            f"C got back {answer})"
        )
        deadline, egress = time.monotonic() + 15, ""
        while egress != str(address) and time.monotonic() < deadline:
            egress = self.demo.run_in("a", "curl", "-s", "-m", "2", f"http://{C}/").stdout.strip()
        seen = self.flows(FLOW_PORTS)
        froms = Counter(seen.values())
        shown = ", ".join(f"{where} {n}" for where, n in sorted(froms.items()))
        snat = ", ".join(sorted(self.names))
        self.demo.say(
            f"A: GET http://{C}/ -> C saw it from {egress}; A's {len(FLOW_PORTS)} connections "
            f"at once, C sees them from: {shown} (A's public IP, not the SNAT addresses {snat})"
        )
        if egress != str(address) or froms != Counter({str(address): len(FLOW_PORTS)}):
            raise DemoError(f"A's flows do not leave from its public IP: {egress!r}, {seen}")
