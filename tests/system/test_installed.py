"""onm installed from a wheel, not run from a checkout (issue #8): build the wheel, install it
into a fresh plain venv (its dependencies from pip's cache or the index, not from this venv),
and from a directory outside the checkout check every shipped example and bring a lab up and
down with the installed `onm`, whose manager and agents are the installed ones too.

Slow (a wheel build and a dependency install: about a minute); the full `onm demo` from the
installed venv is left to `tests/system/test_demo.py`, which runs the same code from the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
SOURCE_FILES = ("pyproject.toml", "README.md")
"""What the wheel is built from, beside src/."""
JUNK = shutil.ignore_patterns("__pycache__", "*.egg-info", ".mypy_cache")
INSTALL_TIMEOUT = 900
"""Seconds for the wheel build or the install: generous, the machine is shared and slow."""


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 180) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, (command, done.stdout[-3000:], done.stderr[-3000:])
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """The bin/ directory of a fresh venv with only the wheel (and its dependencies) installed,
    and an environment that cannot see the checkout."""
    root = tmp_path_factory.mktemp("installed")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # Built from a copy: setuptools writes build/ and *.egg-info/ next to the sources.
    source = root / "source"
    shutil.copytree(CHECKOUT / "src", source / "src", ignore=JUNK)
    for name in SOURCE_FILES:
        shutil.copy(CHECKOUT / name, source / name)
    run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-w", str(root / "w")],
        root,
        env,
        INSTALL_TIMEOUT,
    )
    wheels = list((root / "w").glob("onm-*.whl"))
    assert len(wheels) == 1, wheels
    base = getattr(sys, "_base_executable", sys.executable)
    run([base, "-m", "venv", str(root / "venv")], root, env)
    bin_ = root / "venv" / "bin"
    run([str(bin_ / "pip"), "install", "-q", str(wheels[0])], root, env, INSTALL_TIMEOUT)
    env["PATH"] = f"{bin_}:{env.get('PATH', '')}"
    yield bin_, env


def shipped(bin_: Path, env: dict[str, str], cwd: Path) -> list[Path]:
    program = (
        "from importlib import resources; from onm.lab import examples; "
        "[print(resources.files(examples) / n) for n in examples.names()]"
    )
    return [Path(line) for line in run([str(bin_ / "python"), "-c", program], cwd, env).split()]


def test_the_installed_onm_is_not_the_checkout_and_ships_the_examples(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    bin_, env = installed
    where = run([str(bin_ / "python"), "-c", "import onm; print(onm.__file__)"], tmp_path, env)
    assert Path(where.strip()).is_relative_to(bin_.parent)
    found = shipped(bin_, env, tmp_path)
    assert sorted(p.name for p in found) == sorted(
        p.name for p in (CHECKOUT / "examples").glob("*.yaml")
    )
    for path in found:
        assert path.is_relative_to(bin_.parent)
        out = run([str(bin_ / "onm"), "lab", "check", str(path)], tmp_path, env)
        assert "host" in out, out


def test_the_installed_onm_brings_a_shipped_example_up_and_down(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    bin_, env = installed
    (two_hosts,) = [p for p in shipped(bin_, env, tmp_path) if p.name == "two-hosts.yaml"]
    name, state = f"ap{os.getpid() % 100000}", tmp_path / "state"
    lab = ["--name", name, "--state-dir", str(state)]
    onm = str(bin_ / "onm")
    namespaces: list[str] = []
    try:
        run([onm, "lab", "up", str(two_hosts), *lab], tmp_path, env, timeout=300)
        status = json.loads(run([onm, "lab", "status", *lab, "--json"], tmp_path, env))
        assert status["complete"] and all(ns["up"] for ns in status["namespaces"])
        roles = sorted(p["role"] for p in status["processes"] if p["running"])
        assert roles.count("agent") == 2 and "manager" in roles, status["processes"]
        for process in status["processes"]:  # the installed interpreter, not the checkout's
            exe = Path(f"/proc/{process['pid']}/cmdline").read_bytes().split(b"\0")[0]
            assert Path(exe.decode()).is_relative_to(bin_.parent), (process, exe)
        namespaces = [ns["name"] for ns in status["namespaces"]]
    finally:
        down = subprocess.run(
            [onm, "lab", "down", *lab],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert down.returncode == 0, (down.stdout, down.stderr)
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert not set(namespaces) & {line.split()[0] for line in left.stdout.splitlines() if line}


def test_the_installed_onm_runs_the_demo(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """`onm demo` from the wheel: FIG. 2A from the packaged example, traffic, clean-up; under its
    own lab name, so it runs beside a demo a user has up."""
    bin_, env = installed
    before = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    name = f"ad{os.getpid() % 100000}"
    done = subprocess.run(
        [str(bin_ / "onm"), "demo", "--name", name, "--state-dir", str(tmp_path / "state")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    for seen in ("3 packets transmitted, 3 received", "content identical", "gone"):
        assert seen in done.stdout, done.stdout[-3000:]
    after = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert {line.split()[0] for line in after.stdout.splitlines() if line} <= {
        line.split()[0] for line in before.stdout.splitlines() if line
    } | set(), "the demo left namespaces behind"
