"""The example topologies shipped inside the package, so `onm demo` and `onm lab up` on them work
from an installed wheel as well as from a checkout (whose top-level `examples/` is a symlink to
this directory: one copy of each file).

Found with `importlib.resources`, never relative to a source tree.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

SUFFIX = ".yaml"


def names() -> list[str]:
    """The file names of the shipped examples, e.g. "two-hosts.yaml"."""
    here = resources.files(__name__)
    return sorted(item.name for item in here.iterdir() if item.name.endswith(SUFFIX))


@contextlib.contextmanager
def path(name: str) -> Iterator[Path]:
    """A file system path to the shipped example `name`, valid inside the `with` block."""
    with resources.as_file(resources.files(__name__) / name) as found:
        yield found
