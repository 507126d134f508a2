"""Which datapath an agent runs: `--datapath userspace|ebpf|auto`.

`ebpf` must work or the agent does not start (the error names what failed). `auto`, the
default, tries the eBPF datapath, which proves at start what it needs (the object files are
there, bpf() loads them, a clsact hook and tc filter attach to the substrate interface), and
falls back to `userspace` with one log line saying why. `userspace` never touches bpf(),
unless an eBPF agent left its pins here: then it detaches those programs and removes the pins
first (one log line), or they would go on forwarding behind its back.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Final

from onm.errors import InvalidInputError, OnmError

if TYPE_CHECKING:  # the datapaths are imported when one is opened: the CLI and the lab read
    # DEFAULT and DATAPATHS without loading the agent
    from onm.agent.core import AgentCore
    from onm.agent.datapath.userspace import UserspaceDatapath
    from onm.agent.link import ManagerLink

log = logging.getLogger("onm.agent")

DATAPATHS: Final = ("userspace", "ebpf", "auto")
DEFAULT: Final = "auto"
"""What an agent runs unless told (issue #11: eBPF where the kernel supports it)."""
FALLBACK: Final = "datapath auto: eBPF not usable here"
"""How the one log line starts when `auto` runs userspace (the reason follows)."""


def open_datapath(
    kind: str,
    core: AgentCore,
    link: ManagerLink,
    substrate_if: str,
    netns: str | None,
    external_if: str,
    objects: Path | None = None,
    host: str = "",
    pins: Path | None = None,
) -> UserspaceDatapath:
    """The datapath `kind` names (for `auto`: eBPF if this kernel takes it, else userspace).
    `host` and `pins` say where the eBPF datapath pins its maps (`pins.pin_dir`)."""
    if kind not in DATAPATHS:
        raise InvalidInputError("datapath", f"{kind!r} is not one of {DATAPATHS}")
    from onm.agent.datapath.ebpf.pins import DEFAULT_BASE
    from onm.agent.datapath.userspace import UserspaceDatapath

    pins = pins or DEFAULT_BASE
    if kind != "userspace":
        from onm.agent.datapath.ebpf.datapath import EbpfDatapath

        try:
            return EbpfDatapath(
                core,
                link,
                substrate_if,
                netns,
                external_if=external_if,
                objects=objects,
                host=host,
                pins_base=pins,
            )
        except (OnmError, OSError) as error:
            if kind == "ebpf":
                raise
            reason = str(error).splitlines()[0]
            log.warning("%s (%s); using userspace", FALLBACK, reason)
    from onm.agent.datapath.ebpf.pinning import clear_stale

    clear_stale(host or socket.gethostname(), netns, pins)
    return UserspaceDatapath(core, link, substrate_if, netns, external_if=external_if)
