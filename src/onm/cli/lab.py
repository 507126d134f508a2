"""`onm lab`: build a lab from a topology file out of network namespaces, on this machine.

`up`, `down` and `exec` need root. `check` only reads the file. A lab is named by `--name`
(default: the file's name); `down`, `status` and `exec` find the only lab that is up by
themselves, or the one `--name` (or `--state-dir`) says.
"""

from __future__ import annotations

import json as jsonlib
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from onm.cli import output as out
from onm.lab import runner
from onm.lab.processes import log_tail
from onm.lab.state import RUN_DIR
from onm.lab.topology import load

app = typer.Typer(
    no_args_is_help=True,
    help="A lab of hosts, nodes and external networks made of network namespaces on this machine.",
)

File = Annotated[
    Path, typer.Argument(help="Topology file (YAML).", show_default=False, dir_okay=False)
]
Name = Annotated[
    str | None,
    typer.Option("--name", help="Lab name (up: default the file's name; else: the only lab up)."),
]
StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help=f"Where the lab keeps its record, logs and tokens (default {RUN_DIR}/NAME).",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _say(line: str) -> None:
    out.print_line(f"  {line}")


def _hints(url: str, token_file: str) -> list[str]:
    return [f"export ONM_URL={url} ONM_TOKEN_FILE={token_file}"]


@app.command("up")
def up(
    file: File,
    name: Name = None,
    state_dir: StateDir = None,
    no_agents: Annotated[
        bool, typer.Option("--no-agents", help="Build everything but start no agent.")
    ] = False,
) -> None:
    """Build the lab (again: what is there already is kept), start its manager and agents."""
    result = runner.up(file, name, state_dir, not no_agents, _say)
    record, topology = result.state, result.topology
    if result.exited:
        for agent in result.exited:
            typer.echo(f"error: agent {agent.owner} exited at start; {agent.log} ends:", err=True)
            for line in log_tail(agent.log).splitlines():
                typer.echo(f"  {line}", err=True)
        typer.echo(
            f"lab {record.lab} stays up without them: fix, then `onm lab up` again "
            f"(or `onm lab down --name {record.lab}`)",
            err=True,
        )
        raise typer.Exit(1)
    servers = topology.servers()
    with_servers = f", {_count(len(servers), 'server')}" if servers else ""
    out.print_line(
        f"lab {record.lab} is up: {_count(len(topology.hosts), 'host')}, "
        f"{_count(len(topology.nodes), 'node')}{with_servers} (state {result.directory})"
    )
    for line in _hints(record.manager_url, record.admin_token_file):
        out.print_line(f"  {line}")
    if topology.nodes:
        out.print_line(f"  onm lab exec {topology.nodes[0].name} -- ip addr")
    if servers:
        out.print_line(f"  onm lab exec {servers[0][1].name} -- ip addr")
    if no_agents:
        out.print_line("  no agents were started (--no-agents): nodes cannot reach each other")


@app.command("down")
def down(name: Name = None, state_dir: StateDir = None) -> None:
    """Stop the lab's processes and remove every namespace it made, and its state."""
    record = runner.down(name, state_dir, _say)
    if record is None:
        out.print_line(f"lab {name} is not up" if name else "no lab is up")
        return
    out.print_line(f"lab {record.lab} is down")


@app.command("status")
def status(name: Name = None, state_dir: StateDir = None, json: Json = False) -> None:
    """Show the lab's namespaces (hosts, nodes, external networks, servers) and processes, and how
    to reach its manager."""
    found = runner.status(name, state_dir)
    record = found.state
    if json:
        data = {
            "lab": record.lab,
            "state_dir": str(found.directory),
            "topology_file": record.topology_file,
            "complete": record.complete,
            "manager_url": record.manager_url,
            "admin_token_file": record.admin_token_file,
            "namespaces": [
                {"name": ns.name, "role": ns.role.name.lower(), "owner": ns.owner, "up": up}
                for ns, up in found.namespaces
            ],
            "processes": [
                {
                    "role": p.role,
                    "owner": p.owner,
                    "pid": p.pid,
                    "running": running,
                    "restarts": p.restarts,
                    "log": p.log,
                }
                for p, running in found.processes
            ],
            "supervisor": None
            if found.supervisor is None
            else {
                "pid": found.supervisor[0].pid,
                "running": found.supervisor[1],
                "log": found.supervisor[0].log,
            },
        }
        typer.echo(jsonlib.dumps(data, indent=2))
        return
    note = "" if record.complete else " (incomplete: `onm lab up` did not finish)"
    out.print_fields(
        [
            ("lab", f"{record.lab}{note}"),
            ("topology", record.topology_file),
            ("state", found.directory),
            ("manager", record.manager_url or "-"),
            ("admin token", record.admin_token_file or "-"),
        ]
    )
    grid = out.table("KIND", "NAME", "WHERE", "STATE")
    for ns, present in found.namespaces:
        kind = ns.role.name.lower()
        out.add_row(grid, [kind, ns.owner or "-", ns.name, "up" if present else "missing"])
    supervisor = () if found.supervisor is None else (found.supervisor,)
    for proc, running in (*found.processes, *supervisor):
        where = f"pid {proc.pid}, log {proc.log}"
        restarts = f" ({_count(proc.restarts, 'restart')})" if proc.restarts else ""
        out.add_row(
            grid,
            [proc.role, proc.owner or "-", where, ("running" if running else "down") + restarts],
            None if running else "red",
        )
    out.print_table(grid, "nothing recorded")
    if record.manager_url:
        for line in _hints(record.manager_url, record.admin_token_file):
            out.print_line(line)


@app.command(
    "exec",
    context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True},
)
def exec_(
    target: Annotated[str, typer.Argument(help="Node or server name (or host name with --host).")],
    command: Annotated[
        list[str], typer.Argument(help="The command, after --.", show_default=False)
    ],
    host: Annotated[bool, typer.Option("--host", help="Run in a host's namespace.")] = False,
    name: Name = None,
    state_dir: StateDir = None,
) -> None:
    """Run a command inside a node's or server's namespace (`onm lab exec a -- ping -c1 10.0.0.3`).

    The exit status is the command's.
    """
    if command[:1] == ["--"]:
        command = command[1:]
    argv = runner.exec_argv(name, state_dir, target, host, command)
    sys.stdout.flush()
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        raise runner.LabError(f"cannot run {argv[0]}: {exc.strerror}") from None


@app.command("check")
def check(file: File) -> None:
    """Check a topology file without building anything (exit 1 with the first problem)."""
    topology = load(file)
    counts = ", ".join(
        _count(len(items), kind)
        for items, kind in (
            (topology.hosts, "host"),
            (topology.tenants, "tenant"),
            (topology.networks, "network"),
            (topology.nodes, "node"),
            (topology.pools, "pool"),
            (topology.externals, "external network"),
            (topology.servers(), "server"),
            (topology.edge_pools, "edge pool"),
            (topology.routes, "route"),
        )
        if items or kind in ("host", "tenant", "network", "node")
    )
    latency = topology.substrate.latency
    delays = ", ".join(
        f"{key} {value / 1000:g}ms" for key, value in asdict(latency).items() if value
    )
    extra = f", one-way latency {delays}" if delays else ""
    out.print_line(f"{file}: ok: {counts}, substrate MTU {topology.substrate.mtu}{extra}")


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
