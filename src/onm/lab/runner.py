"""`onm lab up / down / status / exec`: one lab from a topology file, on this machine.

`up` checks the file first (nothing is built from a file the loader refuses), then: claims the
lab's name and state directory, starts (or finds running) the lab's manager, loads the topology
into it (`onm.lab.provision`), builds the plan it yields (`onm.lab.plan`) out of namespaces
(`onm.lab.netns`), starts one agent per host, and the lab's supervisor (`onm.lab.supervise`),
which starts a process that dies again. Each step is an "ensure", so `up` again changes
nothing; and the record (`onm.lab.state`) names each namespace before it is made and each
process as soon as it runs, so `down` — which needs nothing but the record — removes all of it
after a crash at any point. A lab is refused if its file has changed since it went up (take it
down first), and `up` never adopts a namespace it finds but did not record. `up` and `down`
hold the lab's lock throughout, so the supervisor never restarts a process while they work;
`down` stops the supervisor before anything else, and before deleting the host namespaces
detaches the programs eBPF agents leave attached when they stop and removes their pins.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

import httpx

from onm.agent.datapath.choice import DEFAULT
from onm.agent.datapath.ebpf.pinning import cleanup as clear_pins
from onm.agent.datapath.ebpf.pins import DEFAULT_BASE as DEFAULT_PINS
from onm.agent.datapath.ebpf.pins import pin_dir
from onm.api.client import Client, read_token_file
from onm.errors import NotFoundError, OnmError
from onm.lab import netns, processes, state, supervise
from onm.lab.plan import SUBSTRATE_IF, Plan, Role, build, namespace_name
from onm.lab.provision import host_token_file, provision
from onm.lab.state import LabState, NamespaceRecord, ProcessRecord, process_key
from onm.lab.topology import Topology, load

Say = Callable[[str], None]

MANAGER_START_TIMEOUT: Final = 30.0
"""Seconds the manager gets to answer its first request."""
AGENT_GRACE: Final = 1.0
"""Seconds to watch new agents for an early exit (a bad flag, a missing token, ...)."""
DATAPATH: Final = DEFAULT
"""The agents' datapath unless `DATAPATH_ENV` names another (`userspace`, `ebpf`): the agent's
own default, `auto`."""
DATAPATH_ENV: Final = "ONM_LAB_DATAPATH"

PROVISION_PATIENCE: Final = 120.0
"""Seconds one provisioning call may wait out the manager's rate limits (429, `Retry-After`):
a topology of several hundred objects exceeds the write burst, and the lab is no abuser."""


class LabError(OnmError):
    """The lab cannot be brought up or down as asked."""


@dataclass(frozen=True, slots=True)
class UpResult:
    state: LabState
    directory: Path
    topology: Topology
    exited: tuple[ProcessRecord, ...]
    """Agents that exited within AGENT_GRACE of their start."""


@dataclass(frozen=True, slots=True)
class Status:
    state: LabState
    directory: Path
    namespaces: tuple[tuple[NamespaceRecord, bool], ...]
    """Each recorded namespace and whether it exists."""
    processes: tuple[tuple[ProcessRecord, bool], ...]
    """Each recorded process and whether it runs."""
    supervisor: tuple[ProcessRecord, bool] | None
    """The lab's supervisor and whether it runs (None: none recorded)."""


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise LabError(f"onm lab {what} needs root: it makes and removes network namespaces")


# --- up --------------------------------------------------------------------------------------
def up(file: Path, name: str | None, state_dir: Path | None, agents: bool, say: Say) -> UpResult:
    topology = load(file)
    lab = state.lab_name(name if name is not None else state.name_from_file(file))
    require_root("up")
    directory, made = state.claim(lab, state_dir)
    with supervise.locked(directory):
        return _up(file, topology, lab, directory, made, agents, say)


def _up(
    file: Path, topology: Topology, lab: str, directory: Path, made: bool, agents: bool, say: Say
) -> UpResult:
    record = state.load(directory)
    digest = topology.digest()
    source = str(file.resolve())
    if record is None:
        record = LabState(lab, str(directory), source, digest, made)
    elif record.topology_digest != digest:
        raise LabError(
            f"lab {lab} is up from another topology ({record.topology_file}): "
            f"`onm lab down --name {lab}` first"
        )
    record = replace(record, topology_file=source, complete=False)
    state.save(directory, record)

    record, client = _ensure_manager(record, directory, topology, say)
    with client:
        allocations = provision(client, topology, directory, say)
    record = _realise(build(topology, lab, allocations), record, directory, say)
    exited: tuple[ProcessRecord, ...] = ()
    if agents:
        record, exited = _ensure_agents(topology, record, directory, say)
    record, started = supervise.ensure(record, directory)
    if record.supervisor is not None:
        kept = "started" if started else "running"
        say(f"supervisor ({kept}, pid {record.supervisor.pid}, log {record.supervisor.log})")
    record = replace(record, complete=True)
    state.save(directory, record)
    return UpResult(record, directory, topology, exited)


def _ensure_manager(
    record: LabState, directory: Path, topology: Topology, say: Say
) -> tuple[LabState, Client]:
    running = record.process(process_key("manager"))
    if running is not None and processes.is_running(running) and _answers(record.manager_url):
        say(f"manager {record.manager_url} (running, pid {running.pid})")
    else:
        if running is not None:
            processes.stop(running)
        port = _port_of(record.manager_url)
        if port is None or not processes.port_free(port):
            port = processes.free_port()
        url = f"http://127.0.0.1:{port}"
        argv = [
            *(sys.executable, "-m", "onm.cli", "manager", "serve"),
            *("--state-dir", str(directory / "manager"), "--listen", f"127.0.0.1:{port}"),
            *topology.manager.argv(),  # the file's `manager` settings
        ]
        started = processes.start("manager", "", argv, directory / "manager.log")
        token_file = directory / "manager" / "admin.token"
        record = replace(
            record.with_process(started), manager_url=url, admin_token_file=str(token_file)
        )
        state.save(directory, record)
        _wait_ready(url, started)
        say(f"manager {url} (pid {started.pid}, log {started.log})")
    token = read_token_file(Path(record.admin_token_file))
    return record, Client(record.manager_url, token, patience=PROVISION_PATIENCE)


def _port_of(url: str) -> int | None:
    return httpx.URL(url).port if url else None


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/openapi.json", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_ready(url: str, started: ProcessRecord) -> None:
    deadline = time.monotonic() + MANAGER_START_TIMEOUT
    while time.monotonic() < deadline:
        if processes.exited(started, 0):
            tail = processes.log_tail(started.log)
            raise LabError(f"the manager exited at start (log {started.log}): {tail}")
        if _answers(url):
            return
        time.sleep(0.1)
    raise LabError(f"the manager did not answer at {url} in {MANAGER_START_TIMEOUT:g} s")


def _realise(plan: Plan, record: LabState, directory: Path, say: Say) -> LabState:
    """Apply the plan; each namespace is recorded before it is made."""
    for ns in plan.namespaces:
        entry = NamespaceRecord(ns.name, ns.role, ns.owner)
        if entry not in record.namespaces:
            if netns.netns_exists(ns.name):
                raise LabError(
                    f"namespace {ns.name} exists but lab {record.lab} did not make it: "
                    "leaving it alone (remove it, or choose another --name)"
                )
            record = record.with_namespace(entry)
            state.save(directory, record)
        if netns.ensure_netns(ns.name):
            say(f"namespace {ns.name}")
        netns.set_sysctls(ns.name, ns.sysctls)
        netns.set_up(ns.name, "lo")
    for bridge in plan.bridges:
        netns.ensure_bridge(bridge)
    for veth in plan.veths:
        netns.ensure_veth(veth)
    for address in plan.addresses:
        netns.ensure_address(address)
    for route in plan.routes:
        netns.ensure_route(route)
    for multipath in plan.multipath:
        netns.ensure_multipath(multipath)
    for delays in plan.delays:
        netns.ensure_delays(delays)
    netns.close()
    return record


def agent_argv(
    lab: str, host: str, url: str, directory: Path, metrics_port: int
) -> tuple[str, ...]:
    """The agent's command line (its flags are the agent's interface, fixed by issue #4)."""
    return (
        *(sys.executable, "-m", "onm.cli", "agent", "run"),
        *("--manager", url, "--host", host),
        *("--token-file", str(host_token_file(directory, host))),
        *("--datapath", os.environ.get(DATAPATH_ENV) or DATAPATH, "--substrate-if", SUBSTRATE_IF),
        *("--netns", namespace_name(lab, Role.HOST, host)),
        *("--metrics", f"127.0.0.1:{metrics_port}"),
        *("--state-dir", str(directory / "agents" / host)),
    )


def _metrics_port(argv: Sequence[str]) -> int | None:
    if "--metrics" in argv[:-1]:
        _, _, port = argv[argv.index("--metrics") + 1].rpartition(":")
        return int(port) if port.isdigit() else None
    return None


def _ensure_agents(
    topology: Topology, record: LabState, directory: Path, say: Say
) -> tuple[LabState, tuple[ProcessRecord, ...]]:
    started: list[ProcessRecord] = []
    for host in topology.hosts:
        old = record.process(process_key("agent", host.name))
        port = _metrics_port(old.argv) if old is not None else None
        if old is not None and processes.is_running(old):
            same = agent_argv(record.lab, host.name, record.manager_url, directory, port or 0)
            if old.argv == same:
                say(f"agent {host.name} (running, pid {old.pid})")
                continue
            processes.stop(old)  # it follows a manager that has moved
        if port is None or not processes.port_free(port):
            port = processes.free_port()
        argv = agent_argv(record.lab, host.name, record.manager_url, directory, port)
        (directory / "agents" / host.name).mkdir(parents=True, exist_ok=True, mode=0o700)
        agent = processes.start("agent", host.name, argv, directory / "agents" / f"{host.name}.log")
        record = record.with_process(agent)
        state.save(directory, record)
        started.append(agent)
        say(f"agent {host.name} (pid {agent.pid}, log {agent.log})")
    if started:
        time.sleep(AGENT_GRACE)
    exited = tuple(a for a in started if processes.exited(a, 0))
    return record, exited


# --- down, status, exec ----------------------------------------------------------------------
def _find(name: str | None, state_dir: Path | None) -> tuple[LabState, Path] | None:
    directory = state.locate(name, state_dir)
    if directory is None:
        return None
    record = state.load(directory)
    return None if record is None else (record, directory)


def _require(name: str | None, state_dir: Path | None) -> tuple[LabState, Path]:
    found = _find(name, state_dir)
    if found is None:
        which = f"no lab {name}" if name else "no lab"
        where = f" with state directory {state_dir}" if state_dir else ""
        raise NotFoundError(f"{which}{where} is up")
    return found


def down(name: str | None, state_dir: Path | None, say: Say) -> LabState | None:
    """Stop the lab's processes, delete its namespaces and state; None if no such lab is up."""
    require_root("down")
    found = _find(name, state_dir)
    if found is None:
        return None
    _, directory = found
    with supervise.locked(directory):
        again = state.load(directory)  # the supervisor may have restarted something meanwhile
        return None if again is None else _down(again, directory, say)


def _down(record: LabState, directory: Path, say: Say) -> LabState:
    if record.supervisor is not None:  # first: nothing is started again from now on
        if processes.stop(record.supervisor):
            say(f"stopped supervisor (pid {record.supervisor.pid})")
        record = replace(record, supervisor=None)
        state.save(directory, record)
    # Agents first: their sockets live in the host namespaces.
    for proc in sorted(record.processes, key=lambda p: p.role == "manager"):
        if processes.stop(proc):
            say(f"stopped {' '.join(filter(None, (proc.role, proc.owner)))} (pid {proc.pid})")
        record = record.without_process(proc.key)
        state.save(directory, record)
    for ns in record.namespaces:  # what the eBPF agents left forwarding (static stability)
        if ns.role is Role.HOST and pin_dir(DEFAULT_PINS, ns.owner, ns.name).exists():
            clear_pins(ns.owner, ns.name, DEFAULT_PINS)
            say(f"removed the eBPF pins and programs of host {ns.owner}")
    for ns in reversed(record.namespaces):
        if netns.delete_netns(ns.name):
            say(f"deleted namespace {ns.name}")
    state.remove(record, directory)
    return record


def status(name: str | None, state_dir: Path | None) -> Status:
    record, directory = _require(name, state_dir)
    existing = netns.namespaces()
    return Status(
        record,
        directory,
        tuple((ns, ns.name in existing) for ns in record.namespaces),
        tuple((p, processes.is_running(p)) for p in record.processes),
        None if (s := record.supervisor) is None else (s, processes.is_running(s)),
    )


def exec_argv(
    name: str | None, state_dir: Path | None, target: str, host: bool, command: Sequence[str]
) -> list[str]:
    """`ip netns exec NAMESPACE COMMAND...` for the node or server (or host) `target`."""
    record, _ = _require(name, state_dir)
    roles = (Role.HOST,) if host else (Role.NODE, Role.SERVER)
    found = (record.namespace_of(role, target) for role in roles)
    namespace = next((ns for ns in found if ns is not None), None)
    if namespace is None:
        known = sorted(n.owner for n in record.namespaces if n.role in roles)
        has_servers = any(n.role is Role.SERVER for n in record.namespaces)
        kind = "host" if host else "node or server" if has_servers else "node"
        kinds = "hosts" if host else "nodes and servers" if has_servers else "nodes"
        raise NotFoundError(
            f"lab {record.lab} has no {kind} {target!r} (its {kinds}: {', '.join(known)})"
        )
    if not command:
        raise LabError("give the command to run after --, e.g. `-- ip addr`")
    return ["ip", "netns", "exec", namespace, *command]
