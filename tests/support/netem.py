"""Can this kernel delay packets? netem (CONFIG_NET_SCH_NETEM) is asked once, on a veth pair
in a namespace of the test's own (`lt<pid>netem`), deleted by its exact name at once."""

from __future__ import annotations

import functools
import os

from onm.netlink import kernel as nl
from onm.netlink import tc
from onm.netlink.errors import KernelError
from onm.netlink.kernel import Kernel


@functools.cache
def netem_missing() -> str | None:
    """Why netem cannot be used here (the kernel's refusal), None if it can."""
    name = f"lt{os.getpid()}netem"
    nl.ensure_netns(name)
    try:
        with Kernel(name) as probe:
            probe.ensure_veth("p0", "p1", name)
            probe.ensure_netem("p0", nl.TC_H_ROOT, tc.ROOT, 1000)
    except KernelError as error:
        return str(error)
    finally:
        nl.delete_netns(name)
    return None
