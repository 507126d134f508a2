"""What a component loads when it starts: the agent and the CLI reach the manager over HTTP, so
importing them must not load the manager's web server or database layer (issue #8: `import
onm.agent.service` used to load 861 modules, SQLAlchemy, Alembic, FastAPI and uvicorn among
them). Each import runs in a fresh interpreter, since this one has loaded everything already."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SERVER_SIDE = ("sqlalchemy", "alembic", "fastapi", "starlette", "uvicorn", "psycopg")
"""Top-level packages only the manager needs."""


def loaded(module: str) -> list[str]:
    """Every module in sys.modules after a fresh interpreter imports `module`."""
    program = f"import {module}, sys, json; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    names: list[str] = json.loads(done.stdout)
    return names


@pytest.mark.parametrize("module", ["onm.agent.service", "onm.cli.main", "onm.api.client"])
def test_a_client_side_entry_point_loads_no_server_side_package(module: str) -> None:
    heavy = sorted({name for name in loaded(module) if name.split(".")[0] in SERVER_SIDE})
    assert heavy == []


def test_the_agent_service_loads_nothing_of_the_manager_lab_or_cli() -> None:
    names = loaded("onm.agent.service")
    assert [
        name
        for name in names
        if name.split(".")[:2] in (["onm", "manager"], ["onm", "lab"], ["onm", "cli"])
    ] == []
