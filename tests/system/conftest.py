"""System tier: tests that need root and network namespaces, skipped with a reason without them.

Every test here is marked `system`. The whole directory is skipped when the process is not root
or `ip netns` cannot create a namespace (checked once, with a throwaway namespace of its own).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.datapaths import DATAPATHS, datapath_chosen
from support.servers import Background

HERE = Path(__file__).parent


@functools.cache
def _why_not_runnable() -> str | None:
    if os.geteuid() != 0:
        return "system tests need root (network namespaces, raw sockets)"
    if shutil.which("ip") is None:
        return "system tests need iproute2's `ip`"
    probe = f"onmprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` does not work here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.system)


@pytest.fixture(autouse=True)
def _needs_root_and_netns() -> None:
    reason = _why_not_runnable()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="module", params=DATAPATHS)
def datapath(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each datapath in turn for a module's lab (`support.datapaths`): a lab fixture that takes
    this one runs its module's tests once on each."""
    name: str = request.param
    with datapath_chosen(name):
        yield name


@pytest.fixture
def background() -> Iterator[Background]:
    """Programs a test starts in its lab's namespaces, stopped whatever happens."""
    programs = Background()
    try:
        yield programs
    finally:
        programs.stop_all()
