"""The systemd units in `deploy/systemd/`: restart policies, hardening that leaves the agent able
to work, and command lines the real `onm` CLI accepts.

Each unit's ExecStart is expanded the way systemd does (`%i`, `${VAR}` as one word, `$VAR` split
on white space) with the unit's own `Environment=` defaults and the shipped example environment
file, then given to the real CLI with `--help` appended: it parses every option (an unknown one
is an error, exit 2) and stops before running anything. So an option renamed in the CLI, or one
the unit misspells, fails here; and every option the command requires must be in the unit.
`systemd-analyze verify` checks the units as systemd itself reads them (`make test` installs
Debian's systemd package for it).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

from onm.cli.main import app

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
MANAGER = UNITS / "onm-manager.service"
AGENT = UNITS / "onm-agent@.service"
HOST = "r1"

Unit = dict[str, dict[str, list[str]]]


def parse_unit(path: Path) -> Unit:
    """Sections -> key -> every value given (systemd allows a key more than once)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        key, equals, value = line.partition("=")
        assert section is not None and equals, f"{path.name}:{number}: not KEY=VALUE: {raw!r}"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def parse_env(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def environment(unit: Unit, example: Path) -> dict[str, str]:
    """The unit's `Environment=` defaults, overridden by the example environment file."""
    values = {}
    for assignment in unit["Service"].get("Environment", []):
        key, _, value = assignment.partition("=")
        values[key] = value
    return {**values, **parse_env(example.read_text())}


def expand(command: str, env: dict[str, str], instance: str) -> list[str]:
    """ExecStart as systemd runs it: specifiers, then `${VAR}` (one word) and `$VAR` (split)."""
    command = command.replace("%i", instance).replace("%%", "%")
    words: list[str] = []
    for word in shlex.split(command):
        if re.fullmatch(r"\$[A-Za-z_][A-Za-z0-9_]*", word):
            words.extend(env[word[1:]].split())
        else:
            words.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env[m[1]], word))
    return words


def cli_refusal(argv: list[str]) -> str | None:
    """What the real CLI says against `onm ARGS... --help` (None: it accepts every word)."""
    assert Path(argv[0]).name == "onm", argv
    result = CliRunner().invoke(app, [*argv[1:], "--help"])
    return None if result.exit_code == 0 else result.output


def options(argv: list[str], command: tuple[str, ...]) -> dict[str, str]:
    """`--name value` pairs after `onm COMMAND...` (every option these units use takes one)."""
    assert tuple(argv[1 : 1 + len(command)]) == command, argv
    rest = argv[1 + len(command) :]
    assert len(rest) % 2 == 0 and all(w.startswith("--") for w in rest[::2]), rest
    return dict(zip(rest[::2], rest[1::2], strict=True))


def required(command: tuple[str, ...]) -> set[str]:
    """The options the CLI's `onm COMMAND...` cannot run without."""
    leaf = typer.main.get_command(app)
    for name in command:
        leaf = leaf.commands[name]  # type: ignore[attr-defined]
    return {param.opts[0] for param in leaf.params if param.required}


def exec_start(path: Path, example: Path) -> list[str]:
    unit = parse_unit(path)
    [command] = unit["Service"]["ExecStart"]
    return expand(command, environment(unit, example), HOST)


def test_both_units_restart_what_stops_and_limit_how_often() -> None:
    for path in (MANAGER, AGENT):
        unit = parse_unit(path)
        service, section = unit["Service"], unit["Unit"]
        assert service["Restart"] in (["always"], ["on-failure"]), path.name
        assert service["RestartSec"] == ["1s"], path.name
        assert int(section["StartLimitBurst"][0]) >= 5, path.name
        assert int(section["StartLimitIntervalSec"][0]) >= 60, path.name
        assert service["NoNewPrivileges"] == ["yes"] and service["ProtectSystem"] == ["strict"]
        assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_the_manager_runs_onm_manager_serve_with_real_options() -> None:
    argv = exec_start(MANAGER, UNITS / "manager.env.example")
    assert cli_refusal(argv) is None
    given = options(argv, ("manager", "serve"))
    assert required(("manager", "serve")) <= set(given)
    assert given == {"--listen": "127.0.0.1:7700", "--state-dir": "/var/lib/onm/manager"}
    service = parse_unit(MANAGER)["Service"]
    assert service["StateDirectory"] == ["onm/manager"] and service["DynamicUser"] == ["yes"]
    assert service["CapabilityBoundingSet"] == [""]  # no capability at all


def test_the_options_the_manager_example_suggests_are_real() -> None:
    example = (UNITS / "manager.env.example").read_text()
    [suggested] = [line[1:].strip() for line in example.splitlines() if line.startswith("#   --")]
    argv = [*exec_start(MANAGER, UNITS / "manager.env.example"), *shlex.split(suggested)]
    assert cli_refusal(argv) is None
    assert options(argv, ("manager", "serve"))["--db"] == "postgresql://onm@/onm"


def test_the_agent_runs_onm_agent_run_for_its_instance_with_real_options() -> None:
    argv = exec_start(AGENT, UNITS / "agent.env.example")
    assert cli_refusal(argv) is None
    given = options(argv, ("agent", "run"))
    assert required(("agent", "run")) == {"--manager", "--host", "--token-file"} <= set(given)
    assert given == {
        "--host": HOST,
        "--manager": "http://manager.example:7700",
        "--token-file": "/etc/onm/host.token",
        "--substrate-if": "eth0",
        "--datapath": "auto",
        "--metrics": "127.0.0.1:9110",
        "--state-dir": f"/var/lib/onm/agent/{HOST}",
    }
    service = parse_unit(AGENT)["Service"]
    assert service["EnvironmentFile"] == ["/etc/onm/agent-%i.env"]  # one file per host


def test_the_agent_keeps_what_it_needs_and_nothing_more() -> None:
    service = parse_unit(AGENT)["Service"]
    [capabilities] = service["CapabilityBoundingSet"]
    assert set(capabilities.split()) == {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_ADMIN"}
    [families] = service["RestrictAddressFamilies"]
    assert {"AF_PACKET", "AF_NETLINK", "AF_INET6", "AF_UNIX"} <= set(families.split())
    assert service["RestrictNamespaces"] == ["net"]  # setns(2) into the host's netns only
    assert "bpf" in service["SystemCallFilter"]  # the eBPF datapath's loader (auto, ebpf)
    assert "PrivateNetwork" not in service  # it must see the host's interfaces
    assert "PrivateDevices" not in service


def test_a_renamed_option_fails_the_check() -> None:
    argv = exec_start(AGENT, UNITS / "agent.env.example")
    renamed = [("--token-path" if word == "--token-file" else word) for word in argv]
    refusal = cli_refusal(renamed)
    assert refusal is not None and "No such option: --token-path" in refusal
    assert cli_refusal([*argv[:2], "runn", *argv[3:]]) is not None  # a renamed command too


def test_systemd_analyze_verify_finds_nothing(tmp_path: Path) -> None:
    # The units as shipped, but running this checkout's `onm` and reading the example files.
    onm = Path(sys.executable).parent / "onm"
    assert onm.exists()
    for path in (MANAGER, AGENT):
        text = path.read_text().replace("/usr/bin/onm", str(onm))
        (tmp_path / path.name).write_text(text.replace("/etc/onm/", f"{tmp_path}/"))
    shutil.copy(UNITS / "manager.env.example", tmp_path / "manager.env")
    shutil.copy(UNITS / "agent.env.example", tmp_path / f"agent-{HOST}.env")
    units = [str(tmp_path / "onm-manager.service"), str(tmp_path / f"onm-agent@{HOST}.service")]
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
