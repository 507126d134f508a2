"""The lab's record of everything it made, and where labs keep it.

A lab's state directory holds `lab.json` (this record), the manager's and agents' state and
logs, and the host and tenant tokens. Rules:

- The record is written (atomically: a temporary file renamed over it) *before* each thing it
  names is created, so after a crash at any point it names everything that may exist. `down`
  works from it alone; deleting a namespace that never got made is harmless.
- Processes are recorded with their start time and command line, so a pid that the kernel has
  since given to another program is never signalled (`onm.lab.processes`).
- Labs are found by name under `RUN_DIR`: the default state directory is `RUN_DIR/LAB`; a lab
  whose state lives elsewhere (`--state-dir`) has a symlink `RUN_DIR/LAB` to it. One name, one
  lab: the namespaces' names are derived from it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from onm.errors import InvalidInputError, OnmError
from onm.lab.plan import Role
from onm.model import validate

RUN_DIR: Final = Path("/run/onm-lab")
RECORD: Final = "lab.json"
VERSION: Final = 1
"""The record's format; a record of another version is refused, never guessed at."""
OWN_ENTRIES: Final = (
    *(RECORD, "manager", "manager.log", "hosts", "tenants", "agents"),
    *("supervisor.log", "lab.lock", "manager.log.stopped", "supervisor.log.stopped"),
)
"""What a lab puts in its state directory (and `down` removes from one it did not make)."""


class LabStateError(OnmError):
    """No such lab, or its record cannot be used."""


@dataclass(frozen=True, slots=True)
class NamespaceRecord:
    name: str
    role: Role
    owner: str
    """The host or node it stands for ("" for the substrate)."""


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    """A process the lab started: enough to find it again, and to know it is still the same."""

    role: str
    """"manager" or "agent"."""
    owner: str
    """The host an agent serves ("" for the manager)."""
    pid: int
    start_time: int
    """Clock ticks after boot when it started (/proc/PID/stat field 22)."""
    argv: tuple[str, ...]
    log: str
    restarts: int = 0
    """Times the lab's supervisor has started it again after it died (`onm.lab.supervise`)."""

    @property
    def key(self) -> str:
        return process_key(self.role, self.owner)


def process_key(role: str, owner: str = "") -> str:
    return f"{role}:{owner}" if owner else role


@dataclass(frozen=True, slots=True)
class LabState:
    lab: str
    state_dir: str
    topology_file: str
    topology_digest: str
    made_state_dir: bool
    """False: the directory was there (empty) before; `down` empties it but leaves it."""
    namespaces: tuple[NamespaceRecord, ...] = ()
    """In the order they were (or were about to be) created."""
    processes: tuple[ProcessRecord, ...] = ()
    manager_url: str = ""
    admin_token_file: str = ""
    complete: bool = False
    """True once `up` has finished (it is False again while a later `up` runs)."""
    supervisor: ProcessRecord | None = None
    """The process that restarts the others when they die (`onm.lab.supervise`)."""
    version: int = field(default=VERSION)

    def with_namespace(self, record: NamespaceRecord) -> LabState:
        if record in self.namespaces:
            return self
        return replace(self, namespaces=(*self.namespaces, record))

    def with_process(self, record: ProcessRecord) -> LabState:
        kept = tuple(p for p in self.processes if p.key != record.key)
        return replace(self, processes=(*kept, record))

    def without_process(self, key: str) -> LabState:
        return replace(self, processes=tuple(p for p in self.processes if p.key != key))

    def process(self, key: str) -> ProcessRecord | None:
        return next((p for p in self.processes if p.key == key), None)

    def namespace_of(self, role: Role, owner: str) -> str | None:
        found = (n.name for n in self.namespaces if n.role is role and n.owner == owner)
        return next(found, None)


# --- the record on disk ----------------------------------------------------------------------
def save(directory: Path, state: LabState) -> None:
    """Write the record atomically: readers see the old one or the new one, never half."""
    data = asdict(state)
    temporary = directory / f".{RECORD}.tmp"
    with temporary.open("w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(directory / RECORD)


def load(directory: Path) -> LabState | None:
    """The record in `directory`, or None if there is none."""
    path = directory / RECORD
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LabStateError(f"cannot read the lab record {path}: {exc}") from None
    try:
        return _from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise LabStateError(f"{path} is not a lab record this onm can read ({exc})") from None


def _from_json(data: Any) -> LabState:
    if not isinstance(data, dict):
        raise TypeError("not a JSON object")
    if data.get("version") != VERSION:
        raise ValueError(f"version {data.get('version')!r}, expected {VERSION}")
    namespaces = tuple(
        NamespaceRecord(str(n["name"]), Role(n["role"]), str(n["owner"]))
        for n in data["namespaces"]
    )
    processes = tuple(_process_from_json(p) for p in data["processes"])
    supervisor = data.get("supervisor")
    return LabState(
        lab=str(data["lab"]),
        state_dir=str(data["state_dir"]),
        topology_file=str(data["topology_file"]),
        topology_digest=str(data["topology_digest"]),
        made_state_dir=bool(data["made_state_dir"]),
        namespaces=namespaces,
        processes=processes,
        manager_url=str(data["manager_url"]),
        admin_token_file=str(data["admin_token_file"]),
        complete=bool(data["complete"]),
        supervisor=None if supervisor is None else _process_from_json(supervisor),
    )


def _process_from_json(p: Any) -> ProcessRecord:
    return ProcessRecord(
        str(p["role"]),
        str(p["owner"]),
        int(p["pid"]),
        int(p["start_time"]),
        tuple(str(a) for a in p["argv"]),
        str(p["log"]),
        int(p.get("restarts", 0)),
    )


# --- names and where labs live ---------------------------------------------------------------
def lab_name(value: str) -> str:
    """`value` if it is a valid lab name (the manager's name rule), else an error."""
    return validate.name("name", value)


def name_from_file(path: Path) -> str:
    """A lab name from a topology file's name: `Two_Hosts.yaml` -> `two-hosts`."""
    words = re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-")
    return words[:40].strip("-") or "lab"


def entry(lab: str) -> Path:
    """The lab's name under RUN_DIR: its state directory, or a symlink to it."""
    return RUN_DIR / lab


def claim(lab: str, state_dir: Path | None) -> tuple[Path, bool]:
    """The state directory for `up` of `lab` (made if missing), and whether `up` made it.

    Refuses a name already used by a lab with another state directory, and a directory that
    holds anything but a lab record of this name.
    """
    link = entry(lab)
    current = _registered(link)
    if state_dir is None:
        directory = current or link
    else:
        directory = Path(os.path.abspath(state_dir))
        if current is not None and current != directory and load(current) is not None:
            raise LabStateError(
                f"lab {lab} is already up with state directory {current}: "
                f"`onm lab down --name {lab}` first, or choose another --name"
            )
    made = not directory.exists()
    if not made:
        existing = load(directory)
        if existing is None and any(directory.iterdir()):
            raise LabStateError(f"state directory {directory} is not empty and holds no lab")
        if existing is not None and existing.lab != lab:
            raise LabStateError(f"state directory {directory} belongs to lab {existing.lab}")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if directory != link:
        RUN_DIR.mkdir(parents=True, exist_ok=True, mode=0o755)
        if link.is_symlink():
            link.unlink()
        if not link.exists():
            link.symlink_to(directory)
    return directory, made


def _registered(link: Path) -> Path | None:
    """Where the lab behind `link` keeps its state, if anywhere."""
    if link.is_symlink():
        target = Path(os.path.abspath(link.parent / os.readlink(link)))
        return target if target.is_dir() else None
    return link if link.is_dir() else None


def registered() -> list[str]:
    """The names of the labs that have a record under RUN_DIR."""
    if not RUN_DIR.is_dir():
        return []
    return sorted(
        p.name for p in RUN_DIR.iterdir() if (d := _registered(p)) and (d / RECORD).exists()
    )


def locate(lab: str | None, state_dir: Path | None) -> Path | None:
    """The state directory of the lab named (or the only lab up); None if there is no such lab."""
    if state_dir is not None:
        return Path(os.path.abspath(state_dir))
    if lab is None:
        labs = registered()
        if not labs:
            return None
        if len(labs) > 1:
            raise InvalidInputError("name", f"several labs are up ({', '.join(labs)}): give one")
        lab = labs[0]
    return _registered(entry(lab))


def remove(state: LabState, directory: Path) -> None:
    """Delete the state directory (or, if the lab did not make it, what the lab put in it) and
    the lab's entry under RUN_DIR."""
    if state.made_state_dir:
        shutil.rmtree(directory, ignore_errors=True)
    else:
        for name in OWN_ENTRIES:
            path = directory / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    link = entry(state.lab)
    if link.is_symlink() and _registered(link) in (None, directory):
        link.unlink()
