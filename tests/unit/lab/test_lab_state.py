"""Tests for onm.lab.state: the record on disk, and finding labs by name (RUN_DIR is a tmp dir)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from onm.errors import InvalidInputError
from onm.lab import state
from onm.lab.plan import Role
from onm.lab.state import LabState, LabStateError, NamespaceRecord, ProcessRecord


@pytest.fixture(autouse=True)
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    run = tmp_path / "run"
    monkeypatch.setattr(state, "RUN_DIR", run)
    return run


def a_state(directory: Path, lab: str = "l1") -> LabState:
    return LabState(lab, str(directory), "/x/lab.yaml", "d" * 64, made_state_dir=True)


def test_round_trip(tmp_path: Path) -> None:
    record = (
        a_state(tmp_path)
        .with_namespace(NamespaceRecord("onm-l1-sub", Role.SUBSTRATE, ""))
        .with_namespace(NamespaceRecord("onm-l1-n-a", Role.NODE, "a"))
        .with_process(ProcessRecord("manager", "", 42, 1234, ("python", "-m", "x"), "/l"))
        .with_process(ProcessRecord("agent", "r", 43, 1240, ("python",), "/m"))
    )
    state.save(tmp_path, record)
    assert state.load(tmp_path) == record
    assert record.namespace_of(Role.NODE, "a") == "onm-l1-n-a"
    assert record.namespace_of(Role.HOST, "a") is None
    assert record.process("agent:r") is not None
    assert record.without_process("agent:r").process("agent:r") is None
    # Adding what is there already changes nothing.
    assert record.with_namespace(NamespaceRecord("onm-l1-n-a", Role.NODE, "a")) == record
    replaced = record.with_process(ProcessRecord("manager", "", 50, 1, (), "/l"))
    assert [p.pid for p in replaced.processes] == [43, 50]


def test_missing_record_is_none(tmp_path: Path) -> None:
    assert state.load(tmp_path) is None


@pytest.mark.parametrize("content", ["{", "[]", '{"version": 99}', '{"version": 1, "lab": "x"}'])
def test_unreadable_records_are_refused(tmp_path: Path, content: str) -> None:
    (tmp_path / state.RECORD).write_text(content)
    with pytest.raises(LabStateError):
        state.load(tmp_path)


def test_save_replaces_atomically(tmp_path: Path) -> None:
    state.save(tmp_path, a_state(tmp_path))
    state.save(tmp_path, a_state(tmp_path).with_namespace(NamespaceRecord("n", Role.NODE, "a")))
    assert [p.name for p in tmp_path.iterdir()] == [state.RECORD]
    assert json.loads((tmp_path / state.RECORD).read_text())["namespaces"][0]["role"] == "n"


def test_names_from_files() -> None:
    assert state.name_from_file(Path("examples/two-hosts.yaml")) == "two-hosts"
    assert state.name_from_file(Path("My_Lab  2.yml")) == "my-lab-2"
    assert state.name_from_file(Path("__.yaml")) == "lab"
    assert state.lab_name("ok-1") == "ok-1"
    with pytest.raises(InvalidInputError):
        state.lab_name("Not/ok")


def test_claim_default_directory(run_dir: Path) -> None:
    directory, made = state.claim("l1", None)
    assert (directory, made) == (run_dir / "l1", True)
    assert directory.is_dir()
    state.save(directory, a_state(directory))
    assert state.claim("l1", None) == (directory, False)
    assert state.registered() == ["l1"]
    assert state.locate("l1", None) == directory
    assert state.locate(None, None) == directory


def test_claim_own_directory_links_it(run_dir: Path, tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.mkdir()
    directory, made = state.claim("l2", own)
    assert (directory, made) == (own, False)
    assert (run_dir / "l2").resolve() == own
    state.save(own, a_state(own, "l2"))
    assert state.locate("l2", None) == own
    assert state.claim("l2", None) == (own, False)  # found again by name
    # One name, one lab: another directory under the same name is refused.
    with pytest.raises(LabStateError, match="already up"):
        state.claim("l2", tmp_path / "other")
    # A directory holding something else is refused.
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("")
    with pytest.raises(LabStateError, match="not empty"):
        state.claim("l3", tmp_path / "busy")
    # ... and so is another lab's.
    with pytest.raises(LabStateError, match="belongs to lab l2"):
        state.claim("l4", own)


def test_locate_needs_a_name_when_several_are_up(run_dir: Path) -> None:
    assert state.locate(None, None) is None
    for lab in ("a1", "b1"):
        directory, _ = state.claim(lab, None)
        state.save(directory, a_state(directory, lab))
    with pytest.raises(InvalidInputError, match="a1, b1"):
        state.locate(None, None)
    assert state.locate("zz", None) is None


def test_remove_takes_only_what_the_lab_made(run_dir: Path, tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.mkdir()
    directory, made = state.claim("l5", own)
    record = LabState("l5", str(directory), "/x", "d", made)
    state.save(directory, record)
    (directory / "hosts").mkdir()
    (directory / "manager.log").write_text("log")
    (directory / "users-file").write_text("not the lab's")
    state.remove(record, directory)
    assert sorted(p.name for p in own.iterdir()) == ["users-file"]
    assert not (run_dir / "l5").exists() and not (run_dir / "l5").is_symlink()

    made_dir, made = state.claim("l6", None)
    state.remove(LabState("l6", str(made_dir), "/x", "d", made), made_dir)
    assert not made_dir.exists()
