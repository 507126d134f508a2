"""The `onm` command run in-process against a manager process, for the CLI's tests."""

from __future__ import annotations

import itertools
import json
import subprocess
from typing import Any

import httpx
from typer.testing import CliRunner, Result

from onm.addressing import Location
from onm.cli.main import app
from support.manager import ManagerProcess

SEQ = itertools.count(1)
RUNNER = CliRunner()
NO_ENV: dict[str, str | None] = {"ONM_URL": None, "ONM_TOKEN": None, "ONM_TOKEN_FILE": None}


def unique(prefix: str) -> str:
    return f"{prefix}{next(SEQ)}"


def new_location() -> Location:
    return Location(locale=2, area=0, rack=0, node=next(SEQ))


class Onm:
    """Runs `onm ARGS` in-process with ONM_URL and ONM_TOKEN (admin unless told) set."""

    def __init__(self, manager: ManagerProcess) -> None:
        self.manager = manager

    def __call__(self, *args: str, token: str | None = None, **env: str | None) -> Result:
        settings = {
            **NO_ENV,
            "ONM_URL": self.manager.url,
            "ONM_TOKEN": token or self.manager.admin_token,
            **env,
        }
        return RUNNER.invoke(app, list(args), env=settings)

    def ok(self, *args: str, token: str | None = None) -> str:
        result = self(*args, token=token)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        assert result.stderr == ""
        return result.stdout

    def json(self, *args: str, token: str | None = None) -> Any:
        return json.loads(self.ok(*args, "--json", token=token))

    def api(self, path: str, token: str | None = None) -> Any:
        """What the manager itself answers, to compare `--json` with."""
        bearer = token or self.manager.admin_token
        response = httpx.get(
            f"{self.manager.url}{path}", headers={"Authorization": f"Bearer {bearer}"}
        )
        response.raise_for_status()
        return response.json()


def one_error_line(result: Result | subprocess.CompletedProcess[str]) -> str:
    """The single `error: ...` line a failed command printed (and nothing on stdout)."""
    stdout, stderr = result.stdout, result.stderr
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def failed(result: Result) -> str:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    return one_error_line(result)
