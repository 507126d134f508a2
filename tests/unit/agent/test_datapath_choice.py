"""onm.agent.datapath.choice: `--datapath` names one; `auto` falls back with one log line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from onm.agent.datapath import choice
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
    monkeypatch.setattr(choice, "UserspaceDatapath", lambda *args, **kw: opened.append(args))
    with caplog.at_level(logging.INFO, logger="onm.agent"):
        choice.open_datapath("auto", None, None, "eth0", None, "ext0", tmp_path)  # type: ignore[arg-type]
    assert len(opened) == 1
    [record] = [r for r in caplog.records if "datapath" in r.getMessage()]
    assert "using userspace" in record.getMessage()
    assert "node_ingress.o" in record.getMessage()
