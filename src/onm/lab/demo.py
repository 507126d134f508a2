"""`onm demo`: the seed's FIG. 2A and 2B examples brought up in the lab, with real traffic,
narrated: node-to-node traffic over the substrate, then 10.0.0.3 as a pool of G and H (nearest
member, failover with no ARP, a new member held back, an action on a criterion, a pool detected
from two nodes' claims); then seed 1's FIG. 2C (`onm.lab.demo_edge`): A's flows to an external
system through an edge pool of three gateways, one of which dies, then a public IP that makes
A reachable from outside and that A's flows leave from.

Every line the demo prints is read off the running system (the manager's API, the agents'
metrics, the nodes' kernels, a capture on the substrate), never written in advance: if
something did not happen, the demo says so and fails.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from onm.addressing import HostPrefix, SubstrateAddress
from onm.agent.io.cbpf import ipv6_dst_prefix_filter
from onm.agent.io.netns import run_in_netns
from onm.agent.io.packet_socket import open_packet_socket, recv_batch
from onm.api.client import Client, read_token_file
from onm.api.schemas import HostOut
from onm.errors import OnmError
from onm.lab import examples, runner
from onm.lab.plan import Role
from onm.lab.state import LabState
from onm.packet import ipv6

FETCH = (
    "curl -s -o /tmp/onm-demo-blob -w '%{http_code} %{size_download} %{time_total} ' "
    "http://10.0.0.3:8080/blob && sha256sum /tmp/onm-demo-blob; rm -f /tmp/onm-demo-blob"
)
# A plain file server on each pool member. Not `python -m http.server`: its HTTPServer looks up
# the host's name (getfqdn) when it binds, and a node namespace has no DNS to answer.
SERVE = (
    "import functools, http.server, socketserver, sys\n"
    "socketserver.TCPServer.allow_reuse_address = True\n"
    "class Quiet(http.server.SimpleHTTPRequestHandler):\n"
    "    def log_message(self, *args): pass\n"
    "handler = functools.partial(Quiet, directory=sys.argv[1])\n"
    "socketserver.ThreadingTCPServer(('0.0.0.0', 8080), handler).serve_forever()\n"
)
WHOAMI = "curl -s -m 1 http://10.0.0.3:8080/whoami.txt"
POOL = "znet/web"
EXAMPLE = "fig2a.yaml"
"""The seed's FIG. 2A topology, one of the examples shipped inside the package (`examples`)."""
LAB = "demo"


class DemoError(OnmError):
    """Something the demo expected to see did not happen."""


class Demo:
    def __init__(self, console: Console, lab: str = LAB, state_dir: Path | None = None) -> None:
        self.out = console
        self.lab = lab
        self.state_dir = state_dir
        self.state: LabState | None = None
        self.client: Client | None = None
        self.metrics_ports: dict[str, int] = {}
        self.services: dict[str, subprocess.Popen[bytes]] = {}
        self.www = Path(tempfile.mkdtemp(prefix="onm-demo-www-"))
        self.blob = secrets.token_bytes(256 * 1024)

    # --- helpers -----------------------------------------------------------------------------

    def step(self, title: str) -> None:
        self.out.print(f"\n[bold cyan]▶ {title}[/]")

    def say(self, line: str) -> None:
        self.out.print(f"  {line}")

    def namespace(self, role: Role, owner: str) -> str:
        assert self.state is not None
        name = self.state.namespace_of(role, owner)
        if name is None:
            raise DemoError(f"the lab has no {role.value} {owner}")
        return str(name)

    def run_in(
        self, node: str, *command: str, timeout: float = 20, role: Role = Role.NODE
    ) -> subprocess.CompletedProcess[str]:
        """`command` run inside a node's namespace (or an external server's, `role`)."""
        argv = ["ip", "netns", "exec", self.namespace(role, node), *command]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)

    def counters(self, host: str) -> dict[str, float]:
        port = self.metrics_ports[host]
        deadline = time.monotonic() + 15  # an agent serves metrics a moment after it starts
        while True:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                break
            except httpx.HTTPError as error:
                if time.monotonic() > deadline:
                    raise DemoError(f"agent {host}'s metrics do not answer: {error}") from None
                time.sleep(0.2)
        values: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                label = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                values[f"{sample.name}{{{label}}}" if label else sample.name] = sample.value
        return values

    def counters_after(self, host: str, before: dict[str, float], key: str) -> dict[str, float]:
        """Counters once `key` has moved past `before` (agents publish them every second)."""
        deadline = time.monotonic() + 3
        while True:
            now = self.counters(host)
            if now.get(key, 0) > before.get(key, 0) or time.monotonic() > deadline:
                return now
            time.sleep(0.2)

    # --- the story ---------------------------------------------------------------------------

    def run(self, keep: bool) -> None:
        from onm.lab.demo_edge import EdgeStory  # it narrates with this module's Demo

        started = time.monotonic()
        try:
            self.bring_up()
            self.start_services()
            self.show_topology()
            g_mac = self.arp()
            self.resolution(g_mac)
            self.ping_and_capture()
            self.http()
            self.isolation()
            self.nearest_member()
            self.failover()
            self.new_member()
            self.detection()
            EdgeStory(self).run()
            self.show_counters()
        finally:
            for name in list(self.services):
                self.stop_service(name)
            shutil.rmtree(self.www, ignore_errors=True)
            if self.client is not None:
                self.client.close()
            if keep:
                self.step(
                    f"Lab left up (KEEP): `onm lab exec --name {self.lab} a -- ping 10.0.0.3`, "
                    f"`onm lab down --name {self.lab}`"
                )
            else:
                self.step("Tearing the lab down")
                runner.down(self.lab, self.state_dir, lambda _line: None)
                self.say("every namespace and process the lab made is gone")
        self.out.print(f"\n[bold green]Demo finished in {time.monotonic() - started:.0f} s.[/]")

    def bring_up(self) -> None:
        self.step(
            "Building the seed's FIG. 2A in network namespaces: substrate, hosts R S T U, nodes"
            " (and FIG. 2C's edge hosts GW1-GW3, the internet)"
        )
        with examples.path(EXAMPLE) as topology:
            result = runner.up(topology, self.lab, self.state_dir, True, lambda _line: None)
        if result.exited:
            raise DemoError(f"agents exited at start: {[p.owner for p in result.exited]}")
        self.state = result.state
        for process in result.state.processes:
            if process.role == "agent":
                port = runner._metrics_port(process.argv)
                if port is not None:
                    self.metrics_ports[process.owner] = port
        token = read_token_file(Path(result.state.admin_token_file))
        self.client = Client(result.state.manager_url, token)
        self.say(
            f"manager at {result.state.manager_url}; one agent per host: "
            f"{', '.join(sorted(self.metrics_ports))}"
        )
        running = {host: self.datapath(host) for host in sorted(self.metrics_ports)}
        if len(set(running.values())) == 1:
            self.say(f"every agent runs the {next(iter(running.values()))} datapath")
        else:
            self.say("datapaths: " + ", ".join(f"{h} {d}" for h, d in running.items()))

    def datapath(self, host: str) -> str:
        """What `host`'s agent says it runs (`onm_agent_datapath`): ebpf, or userspace when
        `auto` fell back (its log says why)."""
        for key, value in self.counters(host).items():
            if key.startswith("onm_agent_datapath{datapath=") and value:
                return key.partition("=")[2].rstrip("}")
        raise DemoError(f"agent {host} does not say which datapath it runs")

    def start_service(self, node: str) -> None:
        where = self.www / node
        where.mkdir(exist_ok=True)
        (where / "healthz").write_text("ok")
        (where / "whoami.txt").write_text(node)
        (where / "blob").write_bytes(self.blob)
        self.services[node] = subprocess.Popen(
            [
                *("ip", "netns", "exec", self.namespace(Role.NODE, node)),
                *(sys.executable, "-c", SERVE, str(where)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop_service(self, node: str) -> None:
        server = self.services.pop(node)
        server.terminate()
        server.wait(timeout=5)

    def health(self) -> dict[str, str]:
        assert self.client is not None
        return {m.node: m.health for m in self.client.get_pool(POOL).members}

    def wait_health(self, wanted: dict[str, str], within: float = 15) -> dict[str, str]:
        deadline = time.monotonic() + within
        while True:
            seen = self.health()
            if all(seen.get(k) == v for k, v in wanted.items()):
                return seen
            if time.monotonic() > deadline:
                raise DemoError(f"pool web: wanted {wanted}, the manager says {seen}")
            time.sleep(0.1)

    def start_services(self) -> None:
        self.step(
            "Pool web (10.0.0.3): an HTTP service on members G and H, checked by their agents"
        )
        for node in ("g", "h"):
            self.start_service(node)
        seen = self.wait_health({"g": "up", "h": "up"})
        self.say(
            "health as the manager holds it (HTTP GET /healthz every 0.3 s by each member's "
            f"own agent): {', '.join(f'{k.upper()} {v}' for k, v in sorted(seen.items()))}"
        )

    def whoami(self, node: str, tries: int = 1) -> str:
        for _ in range(tries):
            answer = self.run_in(node, "sh", "-c", WHOAMI).stdout.strip()
            if answer:
                return answer
            time.sleep(0.1)
        return ""

    def pool_mac_seen(self, node: str) -> str:
        neigh = self.run_in(node, "ip", "neigh", "show", "10.0.0.3").stdout.split()
        return neigh[neigh.index("lladdr") + 1] if "lladdr" in neigh else ""

    def nearest_member(self) -> None:
        assert self.client is not None
        self.step("FIG. 2B: J (on U, second location) asks for 10.0.0.3; the nearest member is H")
        answer = self.client.resolve("z/znet", "j", "10.0.0.3")
        names = {n.id: n.name for n in self.client.list_nodes()}
        ranked = [names.get(a.node_id, a.node_id).upper() for a in answer.alternatives]
        self.say(
            f"the manager's answer for J: member {names.get(answer.target_id, '?').upper()}, "
            f"alternatives in order {', '.join(ranked)}, pool MAC {answer.mac}"
        )
        who = self.whoami("j", 30)
        self.say(f"J: GET http://10.0.0.3:8080/whoami.txt -> answered by {who.upper() or 'nobody'}")
        if who != "h":
            raise DemoError(f"J's request was answered by {who!r}, not by H (nearest J)")

    def failover(self) -> None:
        assert self.client is not None
        self.step("H's service dies: J's requests go to G, with no new ARP from J")
        ran = self.www / "action.json"
        action = {"on": "healthy<2", "run": f"sh -c 'cat > {ran}'"}
        self.client.update_pool(POOL, {"add_actions": [action]})
        self.say('the pool now carries an action: --on "healthy<2" --run CMD (on the manager)')
        mac = self.pool_mac_seen("j")
        before = self.counters("u").get("onm_agent_arp_answers_total", 0)
        self.stop_service("h")
        died = time.monotonic()
        who = ""
        while who != "g" and time.monotonic() - died < 10:
            who = self.whoami("j")
        took = time.monotonic() - died
        if who != "g":
            raise DemoError(f"after H died J's requests were answered by {who!r}, not G")
        arp = self.counters("u").get("onm_agent_arp_answers_total", 0) - before
        if self.pool_mac_seen("j") != mac:
            raise DemoError("J's ARP entry for the pool changed: it should never need to")
        states = ", ".join(f"{k.upper()} {v}" for k, v in sorted(self.health().items()))
        self.say(f"J answered by G {took:.2f} s after H's service died; health: {states}")
        self.say(
            f"J's ARP entry for 10.0.0.3: {self.pool_mac_seen('j')} (before: {mac}); "
            f"ARP requests agent U answered meanwhile: {arp:.0f}"
        )
        deadline = time.monotonic() + 10
        while not ran.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not ran.exists():
            raise DemoError("the healthy<2 action did not run")
        body = json.loads(ran.read_text())
        self.say(
            f"the action ran on the manager's host: {body['criterion']}, healthy {body['healthy']},"
            f" members {', '.join(m['node'].upper() + ' ' + m['health'] for m in body['members'])}"
        )
        self.start_service("h")
        self.wait_health({"h": "up"})
        back = time.monotonic()
        while (who := self.whoami("j")) != "h" and time.monotonic() - back < 10:
            time.sleep(0.05)
        if who != "h":
            raise DemoError(f"H is up again but J's requests are answered by {who!r}")
        self.say(
            f"H's service back: J answered by H again {time.monotonic() - back:.2f} s after the "
            "manager saw it up (nearest returns)"
        )

    def new_member(self) -> None:
        assert self.client is not None
        self.step("A new member B starts `initial` and gets no traffic until its check passes")
        added = self.client.add_member(POOL, "b")
        state = {m.node: m.health for m in added.members}["b"]
        self.say(f"onm pool member add web b -> B is {state}")
        answers = {self.whoami("j", 5) for _ in range(5)} | {self.whoami("a", 5) for _ in range(5)}
        seen = self.wait_health({"b": "down"})
        self.say(
            f"B runs no service: its check fails, B is {seen['b']}; requests meanwhile answered "
            f"by {', '.join(sorted(a.upper() for a in answers if a))} only"
        )
        if "b" in answers:
            raise DemoError("a request went to the new member B before its check passed")
        self.client.remove_member(POOL, "b")

    def detection(self) -> None:
        assert self.client is not None
        self.step("Two nodes configured by hand with one address (10.0.0.77): a detected pool")
        before = self.counters("r").get("onm_agent_drops_total{reason=arp_spoofed}", 0)
        for node in ("a", "b"):
            self.run_in(node, "ip", "addr", "add", "10.0.0.77/32", "dev", "eth0")
            self.run_in(node, "ping", "-c", "1", "-W", "1", "-I", "10.0.0.77", "10.0.0.4")
        deadline = time.monotonic() + 10
        found = None
        while found is None and time.monotonic() < deadline:
            found = next(
                (p for p in self.client.list_pools() if p.name == "detected-10-0-0-77"), None
            )
            time.sleep(0.2)
        if found is None:
            raise DemoError("no pool was detected for 10.0.0.77")
        dropped = self.counters("r").get("onm_agent_drops_total{reason=arp_spoofed}", 0) - before
        members = ", ".join(sorted(m.node.upper() for m in found.members))
        self.say(
            f"the manager proposes pool {found.name} ({found.state}) with members {members}; "
            f"until `onm pool accept` their traffic from 10.0.0.77 is dropped as spoofed "
            f"({dropped:.0f} ARP so far)"
        )

    def show_topology(self) -> None:
        assert self.client is not None
        self.step("What the manager knows")
        hosts = {h.id: h for h in self.client.list_hosts()}
        networks = {n.id: n for n in self.client.list_networks()}
        for host in sorted(hosts.values(), key=lambda h: h.name):
            loc = host.location
            prefix = host.prefix if isinstance(host, HostOut) else "(not shown to tenants)"
            self.say(
                f"host {host.name.upper()}  /64 {prefix}  (locale {loc.locale}, rack {loc.rack})"
            )
        for node in sorted(self.client.list_nodes(), key=lambda n: n.name):
            net = networks[node.network_id]
            self.say(
                f"node {node.name.upper()}  {node.ip:<9} in {net.name} (vni {net.vni}) "
                f"on {hosts[node.host_id].name.upper()}, virtual MAC {node.mac}"
            )

    def arp(self) -> str:
        self.step(
            "Node A asks the network who has 10.0.0.3 (ARP); its agent answers, never the substrate"
        )
        self.run_in("a", "ip", "neigh", "flush", "dev", "eth0")
        before = self.counters("r")
        self.run_in("a", "ping", "-c", "1", "-W", "2", "10.0.0.3")
        after = self.counters_after("r", before, "onm_agent_resolutions_total{result=answered}")
        neigh = self.run_in("a", "ip", "neigh", "show", "10.0.0.3").stdout.split()
        g_mac = neigh[neigh.index("lladdr") + 1] if "lladdr" in neigh else ""
        if not g_mac:
            raise DemoError(f"node A has no ARP entry for 10.0.0.3: {' '.join(neigh)}")
        answers = after.get("onm_agent_arp_answers_total", 0) - before.get(
            "onm_agent_arp_answers_total", 0
        )
        asked = after.get("onm_agent_resolutions_total{result=answered}", 0) - before.get(
            "onm_agent_resolutions_total{result=answered}", 0
        )
        self.say(
            f"agent R answered {answers:.0f} ARP request(s) "
            f"after {asked:.0f} resolution(s) by the manager"
        )
        self.say(f"A's ARP cache: 10.0.0.3 is at {g_mac}")
        return g_mac

    def resolution(self, g_mac: str) -> None:
        assert self.client is not None
        self.step("The manager's answer: where 10.0.0.3 lives for A (authorized: same network)")
        answer = self.client.resolve("z/znet", "a", "10.0.0.3")
        decoded = SubstrateAddress.decode(answer.substrate_address)
        self.say(
            f"substrate address {answer.substrate_address}, MAC {answer.mac}, "
            f"until {answer.expires_at:%H:%M:%S}"
        )
        self.say(
            f"  = host /64 {decoded.host}  slot {decoded.slot}  "
            f"network id {decoded.network_id}  IPv4 {decoded.ipv4}"
        )
        if answer.mac != g_mac:
            raise DemoError(f"A learned {g_mac} but the manager says {answer.mac}")
        self.substrate_g = answer.substrate_address

    def ping_and_capture(self) -> None:
        self.step(
            "A pings G: IPv4 re-headered into IPv6 (SIIT) on the way out, back to IPv4 at host S"
        )
        prefix = HostPrefix.from_network(
            str(ipaddress.IPv6Network(self.substrate_g + "/64", strict=False))
        )
        program = ipv6_dst_prefix_filter(prefix.network.network_address.packed[:8])
        host_r = self.namespace(Role.HOST, "r")

        def opener() -> list[object]:
            # ETH_P_ALL: only such sockets see outgoing frames; the filter keeps IPv6 to S's /64.
            return [open_packet_socket("sub0", ignore_outgoing=False, bpf=program)]

        [sock] = run_in_netns(host_r, opener)  # type: ignore[arg-type]
        try:
            ping = self.run_in("a", "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.0.0.3")
            time.sleep(0.2)
            frames = recv_batch(sock, 16)
        finally:
            sock.close()
        summary = next((line for line in ping.stdout.splitlines() if "packet loss" in line), "")
        rtt = next((line for line in ping.stdout.splitlines() if line.startswith("rtt")), "")
        if ping.returncode != 0:
            raise DemoError(f"ping failed: {summary or ping.stderr.strip()}")
        self.say(summary)
        self.say(rtt)
        for frame in frames[:1]:
            packet = ipv6.parse(frame[14:])
            if isinstance(packet, ipv6.IPv6Packet):
                h = packet.header
                src = ipaddress.IPv6Address(h.src)
                dst = ipaddress.IPv6Address(h.dst)
                self.say(f"captured on host R's substrate link: IPv6 {src} -> {dst}")
                self.say(
                    f"  next header {h.next_header} (ICMPv6), hop limit {h.hop_limit}, "
                    f"{len(frame) - 14} bytes: no tunnel header"
                )
        if not frames:
            raise DemoError("no IPv6 packet toward host S seen on host R's substrate link")

    def http(self) -> None:
        self.step("An HTTP request from A to 10.0.0.3 (G, the member nearest A), over TCP")
        fetched = self._fetch_with_retries()
        body = self.blob
        if fetched is None:
            raise DemoError("the HTTP request from A to G failed")
        code, size, seconds, digest = fetched
        same = digest == hashlib.sha256(body).hexdigest()
        self.say(
            f"GET http://10.0.0.3:8080/blob -> {code}, {size} bytes in {seconds:.3f} s, "
            f"content {'identical' if same else 'DIFFERENT'}"
        )
        if not same:
            raise DemoError("the bytes A received differ from what G served")

    def _fetch_with_retries(self) -> tuple[str, int, float, str] | None:
        for _ in range(30):
            result = self.run_in(
                "a",
                "sh",
                "-c",
                FETCH,
            )
            parts = result.stdout.split()
            if result.returncode == 0 and len(parts) >= 4 and parts[0] == "200":
                return parts[0], int(parts[1]), float(parts[2]), parts[3]
            time.sleep(0.2)
        return None

    def isolation(self) -> None:
        self.step("Entity Y's node C has A's address (10.0.0.2) on the same host: no confusion")
        c = self.run_in("c", "ping", "-c", "1", "-W", "1", "10.0.0.3")
        self.say(
            f"C (ynet) pings 10.0.0.3: {'answered' if c.returncode == 0 else 'no answer'} — "
            "10.0.0.3 is G's address only in Z's network"
        )
        if c.returncode == 0:
            raise DemoError("a node of entity Y reached entity Z's node")
        a = self.run_in("a", "ping", "-c", "1", "-W", "2", "10.0.0.3")
        answered = "answered" if a.returncode == 0 else "no answer"
        self.say(f"A (znet) pings 10.0.0.3 at the same time: {answered}")

    def show_counters(self) -> None:
        self.step("The agents' counters (Prometheus metrics)")
        for host in ("r", "s"):
            values = self.counters(host)
            sent = values.get("onm_agent_packets_total{direction=to_substrate}", 0)
            got = values.get("onm_agent_packets_total{direction=from_substrate}", 0)
            drops = {
                key.split("reason=")[1].rstrip("}"): v
                for key, v in values.items()
                if key.startswith("onm_agent_drops_total{") and v
            }
            shown = ", ".join(f"{k} {v:.0f}" for k, v in sorted(drops.items())) or "none"
            self.say(
                f"agent {host.upper()}: {sent:.0f} packets to the substrate, {got:.0f} from it, "
                f"ARP answers {values.get('onm_agent_arp_answers_total', 0):.0f}; drops: {shown}"
            )
            slow = sum(v for k, v in values.items() if k.startswith("onm_agent_ebpf_slowpath"))
            if any(k.startswith("onm_agent_ebpf_slowpath") for k in values):
                self.say(
                    f"  its eBPF programs forwarded the rest in the kernel; {slow:.0f} frames "
                    "they passed up to the agent (the slow path), their drops counted above"
                )


def main(keep: bool, lab: str = LAB, state_dir: Path | None = None) -> None:
    if os.geteuid() != 0:
        raise DemoError("the demo builds network namespaces: run it as root")
    Demo(Console(highlight=False, soft_wrap=True), lab, state_dir).run(keep)


__all__: Sequence[str] = ["Demo", "DemoError", "main"]
