"""Tests for onm.lab.runner and `onm lab` that need no privileges: what is refused before
anything is built, the agent's command line, and finding a node's namespace from the record."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from onm.cli.main import app
from onm.errors import NotFoundError
from onm.lab import runner, state
from onm.lab.plan import Role
from onm.lab.state import LabState, NamespaceRecord

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
RUNNER = CliRunner()


@pytest.fixture(autouse=True)
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    run = tmp_path / "run"
    monkeypatch.setattr(state, "RUN_DIR", run)
    return run


def test_up_needs_root_and_checks_the_file_first(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, run_dir: Path
) -> None:
    monkeypatch.setattr(runner.os, "geteuid", lambda: 1000)
    result = RUNNER.invoke(app, ["lab", "up", str(EXAMPLES / "two-hosts.yaml")])
    assert result.exit_code == 1
    assert (
        result.stderr == "error: onm lab up needs root: it makes and removes network namespaces\n"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("hosts: []\n")
    result = RUNNER.invoke(app, ["lab", "up", str(bad)])
    assert result.stderr == f"error: {bad}:1: hosts: a lab needs at least one host\n"
    assert not run_dir.exists()


def test_down_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner.os, "geteuid", lambda: 1000)
    result = RUNNER.invoke(app, ["lab", "down", "--name", "x"])
    assert result.exit_code == 1 and "needs root" in result.stderr


def test_the_agents_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flags are the agent's interface (issue #4): this is the contract, spelled out."""
    monkeypatch.delenv(runner.DATAPATH_ENV, raising=False)
    argv = runner.agent_argv("l1", "r", "http://127.0.0.1:7000", tmp_path, 9100)
    assert argv == (
        sys.executable,
        *("-m", "onm.cli", "agent", "run"),
        *("--manager", "http://127.0.0.1:7000", "--host", "r"),
        *("--token-file", str(tmp_path / "hosts" / "r.token")),
        *("--datapath", "auto", "--substrate-if", "sub0", "--netns", "onm-l1-h-r"),
        *("--metrics", "127.0.0.1:9100", "--state-dir", str(tmp_path / "agents" / "r")),
    )


def test_the_agents_datapath_is_the_environments_when_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(runner.DATAPATH_ENV, "ebpf")
    argv = runner.agent_argv("l1", "r", "http://127.0.0.1:7000", tmp_path, 9100)
    assert argv[argv.index("--datapath") + 1] == "ebpf"
    monkeypatch.setenv(runner.DATAPATH_ENV, "")
    argv = runner.agent_argv("l1", "r", "http://127.0.0.1:7000", tmp_path, 9100)
    assert argv[argv.index("--datapath") + 1] == "auto"  # the agent's own default


def a_lab(run_dir: Path) -> Path:
    directory, made = state.claim("l1", None)
    record = LabState("l1", str(directory), "/x.yaml", "d", made)
    record = record.with_namespace(NamespaceRecord("onm-l1-h-r", Role.HOST, "r"))
    record = record.with_namespace(NamespaceRecord("onm-l1-n-a", Role.NODE, "a"))
    state.save(directory, record)
    return directory


def test_exec_finds_the_namespace(run_dir: Path) -> None:
    a_lab(run_dir)
    assert runner.exec_argv(None, None, "a", False, ["ping", "-c1", "x"]) == [
        *("ip", "netns", "exec", "onm-l1-n-a"),
        *("ping", "-c1", "x"),
    ]
    assert runner.exec_argv("l1", None, "r", True, ["true"])[3] == "onm-l1-h-r"
    with pytest.raises(NotFoundError, match=r"no node 'r' \(its nodes: a\)"):
        runner.exec_argv(None, None, "r", False, ["true"])
    with pytest.raises(NotFoundError, match="no lab zz"):
        runner.exec_argv("zz", None, "a", False, ["true"])


def test_exec_finds_a_server_by_its_name(run_dir: Path) -> None:
    directory = a_lab(run_dir)
    record = state.load(directory)
    assert record is not None
    record = record.with_namespace(NamespaceRecord("onm-l1-x-internet", Role.EXTERNAL, "internet"))
    record = record.with_namespace(NamespaceRecord("onm-l1-s-web", Role.SERVER, "web"))
    state.save(directory, record)
    assert runner.exec_argv(None, None, "web", False, ["true"])[:4] == [
        *("ip", "netns", "exec", "onm-l1-s-web"),
    ]
    assert runner.exec_argv(None, None, "a", False, ["true"])[3] == "onm-l1-n-a"
    with pytest.raises(
        NotFoundError, match=r"no node or server 'x' \(its nodes and servers: a, web"
    ):
        runner.exec_argv(None, None, "x", False, ["true"])
    with pytest.raises(NotFoundError, match="no host 'web'"):
        runner.exec_argv(None, None, "web", True, ["true"])  # a server is no host
    result = RUNNER.invoke(app, ["lab", "status"])
    assert result.exit_code == 0, result.output
    for word in ("external", "internet", "onm-l1-x-internet", "server", "onm-l1-s-web"):
        assert word in result.stdout


def test_status_without_a_lab_is_an_error() -> None:
    result = RUNNER.invoke(app, ["lab", "status"])
    assert result.exit_code == 1
    assert result.stderr == "error: no lab is up\n"


def test_status_shows_the_record(run_dir: Path) -> None:
    a_lab(run_dir)
    result = RUNNER.invoke(app, ["lab", "status"])
    assert result.exit_code == 0, result.output
    assert "onm-l1-n-a" in result.stdout and "missing" in result.stdout
    assert "incomplete" in result.stdout
