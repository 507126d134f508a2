"""Running a lab's agents on one datapath or the other, so system tests prove each behaviour on
both (issue #11): `onm lab up` and its repairs start the agents with `--datapath` taken from
`ONM_LAB_DATAPATH` (`onm.lab.runner.DATAPATH_ENV`).

A module's lab fixture takes the `datapath` fixture (tests/system/conftest.py, module scope,
one parameter per datapath) and its tests run once per datapath; `running_lab` checks that
every agent says it runs the one asked for (`onm_agent_datapath`), so a silent fallback to
userspace fails the test rather than proving userspace twice.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Final

from onm.lab.runner import DATAPATH, DATAPATH_ENV

DATAPATHS: Final = ("userspace", "ebpf")
TAG: Final = {"userspace": "", "ebpf": "e"}
"""What a lab's name carries of its datapath, so each datapath's lab has a name of its own."""


def chosen() -> str:
    """The datapath a lab started now gives its agents (`auto` unless a test chose one)."""
    return os.environ.get(DATAPATH_ENV) or DATAPATH


def lab_name(tag: str, datapath: str) -> str:
    """`TAG[e]<pid>` after `ONM_TEST_LAB_PREFIX` when it is set (concurrent runs apart): the
    name of a module's lab on `datapath`."""
    prefix = os.environ.get("ONM_TEST_LAB_PREFIX", "")
    return f"{prefix}{tag}{TAG[datapath]}{os.getpid()}"


@contextlib.contextmanager
def datapath_chosen(datapath: str) -> Iterator[None]:
    """Labs started in the block run their agents with `--datapath DATAPATH`."""
    before = os.environ.get(DATAPATH_ENV)
    os.environ[DATAPATH_ENV] = datapath
    try:
        yield
    finally:
        if before is None:
            del os.environ[DATAPATH_ENV]
        else:
            os.environ[DATAPATH_ENV] = before
