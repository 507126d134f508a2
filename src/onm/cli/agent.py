"""`onm agent run`: the communication manager of one host; `onm agent cleanup`: what a
stopped eBPF agent left forwarding, removed."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from onm.agent.datapath.choice import DEFAULT

DEFAULT_PINS = Path("/sys/fs/bpf/onm")
"""`onm.agent.datapath.ebpf.pins.DEFAULT_BASE` (not imported: `onm agent --help` stays fast)."""

app = typer.Typer(no_args_is_help=True, help="Run the agent of one host.")


@app.command("run")
def run(
    manager: Annotated[str, typer.Option(help="The manager's URL")],
    host: Annotated[str, typer.Option(help="This host's name at the manager")],
    token_file: Annotated[Path, typer.Option(help="File holding this host's token")],
    substrate_if: Annotated[
        str, typer.Option(help="The interface facing the IPv6 substrate")
    ] = "eth0",
    datapath: Annotated[
        str,
        typer.Option(
            help="userspace, ebpf, or auto (ebpf where the kernel takes it, else userspace)"
        ),
    ] = DEFAULT,
    bpf_objects: Annotated[
        Path | None, typer.Option(help="Directory of the eBPF objects (default: build/bpf)")
    ] = None,
    netns: Annotated[
        str | None, typer.Option(help="Network namespace holding the host's interfaces")
    ] = None,
    bpf_pins: Annotated[
        Path,
        typer.Option(help="Where the eBPF datapath pins its maps (a directory per host)"),
    ] = DEFAULT_PINS,
    metrics: Annotated[
        str | None, typer.Option(help="HOST:PORT to serve Prometheus metrics on")
    ] = None,
    state_dir: Annotated[
        Path | None, typer.Option(help="Where the last snapshot is kept across restarts")
    ] = None,
    external_if: Annotated[
        str, typer.Option(help="On an edge host: the interface on the external network")
    ] = "ext0",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more")] = False,
) -> None:
    """Attach this host's nodes and carry their traffic over the substrate."""
    from onm.agent.service import AgentConfig
    from onm.agent.service import run as run_agent

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    run_agent(
        AgentConfig(
            manager,
            host,
            token_file,
            substrate_if,
            datapath,
            netns,
            metrics,
            state_dir,
            external_if=external_if,
            bpf_objects=bpf_objects,
            bpf_pins=bpf_pins,
        )
    )


@app.command("cleanup")
def cleanup(
    host: Annotated[str, typer.Option(help="This host's name at the manager")],
    netns: Annotated[
        str | None, typer.Option(help="Network namespace holding the host's interfaces")
    ] = None,
    bpf_pins: Annotated[
        Path, typer.Option(help="Where the eBPF datapath pinned its maps")
    ] = DEFAULT_PINS,
) -> None:
    """Detach the eBPF programs a stopped agent left forwarding and remove its pins."""
    from onm.agent.datapath.ebpf.pinning import cleanup as clean
    from onm.agent.datapath.ebpf.pins import pin_dir

    done = clean(host, netns, bpf_pins)
    for each in done.detached:
        typer.echo(f"detached {each}")
    where = pin_dir(bpf_pins, host, netns)
    typer.echo(f"removed {where}" if done.removed else f"no pins at {where}")


@app.command("status")
def status(
    metrics: Annotated[str, typer.Option(help="HOST:PORT of the agent's Prometheus metrics")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """The agent's datapath, its eBPF programs and maps and the kernel's counters."""
    import json

    import httpx

    from onm.cli.agent_status import summary
    from onm.errors import UnavailableError

    try:
        text = httpx.get(f"http://{metrics}/metrics", timeout=5).text
    except httpx.HTTPError as error:
        raise UnavailableError(f"agent metrics at {metrics}: {error}") from None
    found = summary(text)
    if as_json:
        typer.echo(json.dumps(found.as_json(), indent=2))
    else:
        for line in found.lines():
            typer.echo(line)
