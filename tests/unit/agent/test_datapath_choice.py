"""onm.agent.datapath.choice: `--datapath` names one; `auto` falls back with one log line."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from onm.agent.datapath import choice, userspace
from onm.agent.service import AgentConfig
from onm.cli.agent import app
from onm.errors import InvalidInputError, OnmError


def test_an_unknown_datapath_is_refused_by_field() -> None:
    with pytest.raises(InvalidInputError, match="datapath"):
        choice.open_datapath("xdp", None, None, "eth0", None, "ext0")  # type: ignore[arg-type]


def test_ebpf_without_its_objects_fails_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(OnmError, match=r"node_ingress\.o"):
        choice.open_datapath("ebpf", None, None, "eth0", None, "ext0", tmp_path)  # type: ignore[arg-type]


def test_auto_falls_back_to_userspace_saying_why_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    opened: list[tuple[object, ...]] = []
    monkeypatch.setattr(userspace, "UserspaceDatapath", lambda *a, **kw: opened.append(a))
    with caplog.at_level(logging.INFO, logger="onm.agent"):
        choice.open_datapath("auto", None, None, "eth0", None, "ext0", tmp_path)  # type: ignore[arg-type]
    assert len(opened) == 1
    [record] = [r for r in caplog.records if "datapath" in r.getMessage()]
    assert record.getMessage().startswith(choice.FALLBACK)
    assert "using userspace" in record.getMessage()
    assert "node_ingress.o" in record.getMessage()


def test_auto_is_the_default_of_the_cli_and_the_config() -> None:
    """Issue #11: eBPF wherever the kernel takes it, unless told otherwise."""
    assert choice.DEFAULT == "auto" and choice.DEFAULT in choice.DATAPATHS
    shown = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).output
    assert re.search(r"--datapath\s.*\[default: auto\]", shown), shown
    assert AgentConfig("http://m", "h", Path("t"), "eth0").datapath == "auto"
