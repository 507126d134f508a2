"""Tests for the `onm` command (onm.cli): a user's journey against a real manager process.

Most commands run in-process through typer's CliRunner (fast); the error paths, `--follow` and
Ctrl-C run the real `python -m onm.cli` so that exit codes and stderr are the process's own.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from onm.addressing import HostPrefix
from onm.cli.main import app
from support.cli import NO_ENV, RUNNER, Onm, failed, new_location, one_error_line, unique
from support.manager import ManagerProcess, free_port, running_manager, start_manager


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagerProcess]:
    with running_manager(tmp_path_factory.mktemp("cli") / "m") as process:
        yield process


@pytest.fixture
def onm(manager: ManagerProcess) -> Onm:
    return Onm(manager)


def run_onm(*args: str, env: dict[str, str | None]) -> subprocess.CompletedProcess[str]:
    """The real `onm` process."""
    base = {k: v for k, v in os.environ.items() if k not in NO_ENV}
    settings = {k: v for k, v in {**base, **env}.items() if v is not None}
    command = [sys.executable, "-m", "onm.cli", *args]
    return subprocess.run(command, env=settings, capture_output=True, text=True, timeout=30)


# --- tenants ---------------------------------------------------------------------------------
def test_tenant_create_prints_its_token_once_and_the_token_works(onm: Onm) -> None:
    name = unique("t")
    shown = onm.ok("tenant", "create", name)
    match = re.search(r"^token: (onm_tenant_\S+)$", shown, re.MULTILINE)
    assert match, shown
    assert [t["name"] for t in onm.json("tenant", "list", token=match.group(1))] == [name]

    created = onm.json("tenant", "create", unique("t"))
    assert set(created) == {"tenant", "token"}
    assert created["token"].startswith("onm_tenant_")
    shown = onm.json("tenant", "show", created["tenant"]["id"])
    assert shown.pop("quotas")["nodes"] == {
        "limit": 1000,
        "source": "default",
        "used": 0,
        "over": False,
    }
    assert shown == created["tenant"]


def test_tenant_list_show_delete(onm: Onm) -> None:
    name = unique("t")
    onm.ok("tenant", "create", name)
    assert onm.json("tenant", "list") == onm.api("/v1/tenants")
    shown = onm.json("tenant", "show", name)
    assert shown == onm.api(f"/v1/tenants/{name}")
    assert name in onm.ok("tenant", "list")
    assert shown["id"] in onm.ok("tenant", "show", name)

    assert onm.ok("tenant", "delete", name) == f"deleted tenant {name}\n"
    assert failed(onm("tenant", "show", name)) == f"error: no tenant {name!r}"


def test_global_options_go_before_or_after_the_command(onm: Onm, manager: ManagerProcess) -> None:
    onm.ok("tenant", "create", unique("t"))
    before = json.loads(onm.ok("--json", "tenant", "list"))
    assert before == onm.json("tenant", "list")

    connection = ["--url", manager.url, "--token", manager.admin_token]
    assert (
        json.loads(RUNNER.invoke(app, [*connection, "--json", "tenant", "list"], env=NO_ENV).stdout)
        == before
    )
    after = RUNNER.invoke(app, ["tenant", "list", *connection, "--json"], env=NO_ENV)
    assert json.loads(after.stdout) == before
    # The option after the command wins over the one before it.
    both = RUNNER.invoke(app, [*connection, "tenant", "list", "--token", "wrong"], env=NO_ENV)
    assert failed(both) == "error: the token is not valid"


def test_delete_with_json_prints_nothing(onm: Onm) -> None:
    name = unique("t")
    onm.ok("tenant", "create", name)
    assert onm.ok("tenant", "delete", name, "--json") == ""


# --- networks --------------------------------------------------------------------------------
def test_network_create_list_show_delete_by_every_kind_of_ref(onm: Onm) -> None:
    tenant = unique("t")
    onm.ok("tenant", "create", tenant)
    name = unique("n")
    network = onm.json(
        "network", "create", name, "--tenant", tenant,
        "--cidr", "10.0.0.0/24", "--cidr", "10.1.0.0/24", "--encoding", "encap",
    )  # fmt: skip
    assert (network["name"], network["cidrs"], network["encoding"]) == (
        name,
        ["10.0.0.0/24", "10.1.0.0/24"],
        "encap",
    )
    assert network["gateway"] == "10.0.0.1"
    for ref in (name, f"{tenant}/{name}", network["id"]):
        assert onm.json("network", "show", ref) == network
    listed = onm.json("network", "list", "--tenant", tenant)
    assert listed == [network] == onm.api(f"/v1/networks?tenant={tenant}")

    table = onm.ok("network", "list", "--tenant", tenant)
    assert re.search(
        rf"^{name}\s+{tenant}\s+{network['vni']}\s+10.0.0.0/24,10.1.0.0/24", table, re.M
    )
    assert "encap" in onm.ok("network", "show", f"{tenant}/{name}")

    onm.ok("network", "delete", f"{tenant}/{name}")
    assert failed(onm("network", "show", network["id"])) == f"error: no network {network['id']!r}"
    assert onm.ok("network", "list", "--tenant", tenant) == "no networks\n"


def test_a_tenant_token_creates_networks_in_its_own_tenant(onm: Onm) -> None:
    created = onm.json("tenant", "create", unique("t"))
    network = onm.json(
        "network", "create", unique("n"), "--cidr", "10.2.0.0/24", token=created["token"]
    )
    assert network["tenant_id"] == created["tenant"]["id"]


# --- hosts -----------------------------------------------------------------------------------
def test_host_create_by_prefix_or_location_list_show_delete(onm: Onm) -> None:
    location = new_location()
    by_location = onm.ok(
        "host", "create", unique("h"),
        "--locale", str(location.locale), "--area", str(location.area),
        "--rack", str(location.rack), "--node", str(location.node),
    )  # fmt: skip
    assert str(HostPrefix(location)) in by_location
    assert re.search(r"^token: onm_host_\S+$", by_location, re.M)

    name, prefix = unique("h"), str(HostPrefix(new_location()))
    created = onm.json("host", "create", name, "--prefix", prefix)
    assert created["token"].startswith("onm_host_")
    host = created["host"]
    assert host["prefix"] == prefix
    assert onm.json("host", "show", name) == host == onm.api(f"/v1/hosts/{name}")
    assert onm.json("host", "list") == onm.api("/v1/hosts")
    loc = host["location"]
    assert f"{loc['locale']}/{loc['area']}/{loc['rack']}/{loc['node']}" in onm.ok("host", "list")

    onm.ok("host", "delete", host["id"])
    assert failed(onm("host", "show", name)) == f"error: no host {name!r}"


def test_a_tenant_lists_and_shows_hosts_without_their_prefix(onm: Onm) -> None:
    """Issue #7 defect 8: a tenant token listed every host with its substrate /64."""
    tenant = onm.json("tenant", "create", unique("t"))["token"]
    name, prefix = unique("h"), str(HostPrefix(new_location()))
    onm.ok("host", "create", name, "--prefix", prefix)
    assert "PREFIX" in onm.ok("host", "list") and prefix in onm.ok("host", "list")

    table = onm.ok("host", "list", token=tenant)
    assert name in table and "LOCATION" in table
    assert "PREFIX" not in table and "fd00:" not in table
    shown = onm.ok("host", "show", name, token=tenant)
    assert name in shown and "locale/area/rack/node" in shown
    assert "prefix" not in shown and "fd00:" not in shown
    listed = onm.json("host", "list", token=tenant)
    assert listed == onm.api("/v1/hosts", token=tenant)
    assert all("prefix" not in h for h in listed) and name in {h["name"] for h in listed}
    assert "prefix" not in onm.json("host", "show", name, token=tenant)


def test_host_create_wants_a_whole_location_and_one_that_fits(onm: Onm) -> None:
    partial = onm("host", "create", unique("h"), "--locale", "1")
    assert partial.exit_code == 2
    assert "--locale/--area/--rack/--node" in partial.stderr
    mismatch = onm(
        "host", "create", unique("h"), "--prefix", str(HostPrefix(new_location())),
        "--locale", "9", "--area", "9", "--rack", "9", "--node", "9",
    )  # fmt: skip
    assert "does not match the location's prefix" in failed(mismatch)
    out_of_range = onm(
        "host", "create", unique("h"), "--locale", "64", "--area", "0", "--rack", "0", "--node", "0"
    )
    assert failed(out_of_range).startswith("error: locale: ")


# --- nodes and resolution --------------------------------------------------------------------
@pytest.fixture
def place(onm: Onm) -> dict[str, Any]:
    """A tenant with one network and two hosts (with their tokens)."""
    tenant, network = unique("t"), unique("n")
    onm.ok("tenant", "create", tenant)
    onm.ok("network", "create", network, "--tenant", tenant, "--cidr", "10.5.0.0/24")
    hosts = [
        onm.json("host", "create", unique("h"), "--prefix", str(HostPrefix(new_location())))
        for _ in range(2)
    ]
    return {"tenant": tenant, "network": network, "hosts": hosts}


def test_node_create_list_show_delete_by_every_kind_of_ref(onm: Onm, place: dict[str, Any]) -> None:
    tenant, network = place["tenant"], place["network"]
    host = place["hosts"][0]["host"]["name"]
    node = onm.json(
        "node", "create", "web", "--network", f"{tenant}/{network}", "--host", host,
        "--ip", "10.5.0.10", "--interface", "veth-web",
    )  # fmt: skip
    assert (node["ip"], node["interface"]) == ("10.5.0.10", "veth-web")
    for args in (
        [node["id"]],
        [f"{network}/web"],
        [f"{tenant}/{network}/web"],
        ["web", "--network", f"{tenant}/{network}"],
    ):
        assert onm.json("node", "show", *args) == node
    listed = onm.json("node", "list", "--network", f"{tenant}/{network}")
    assert listed == [node] == onm.api(f"/v1/nodes?network={tenant}/{network}")
    assert onm.json("node", "list", "--host", host) == [node]

    table = onm.ok("node", "list", "--network", f"{tenant}/{network}")
    assert re.search(rf"^web\s+{network}\s+{host}\s+10.5.0.10\s+{node['mac']}", table, re.M)
    assert "veth-web" in onm.ok("node", "show", f"{tenant}/{network}/web")

    assert (
        onm.ok("node", "delete", f"{tenant}/{network}/web")
        == f"deleted node {tenant}/{network}/web\n"
    )
    assert onm.ok("node", "list", "--network", f"{tenant}/{network}") == "no nodes\n"


def add_node(onm: Onm, name: str, network: str, host: str, ip: str) -> Any:
    return onm.json("node", "create", name, "--network", network, "--host", host, "--ip", ip)


def test_resolve_with_the_token_of_the_requester_s_host(onm: Onm, place: dict[str, Any]) -> None:
    network = f"{place['tenant']}/{place['network']}"
    one, two = place["hosts"]
    add_node(onm, "a", network, one["host"]["name"], "10.5.0.10")
    b = add_node(onm, "b", network, two["host"]["name"], "10.5.0.11")

    answer = onm.json(
        "resolve", "--network", network, "--from", "a", "10.5.0.11", token=one["token"]
    )
    assert (answer["target_id"], answer["mac"]) == (b["id"], b["mac"])
    where = ipaddress.IPv6Address(answer["substrate_address"])
    assert where in ipaddress.IPv6Network(two["host"]["prefix"])
    shown = onm.ok("resolve", "--network", network, "--from", "a", "10.5.0.11", token=one["token"])
    assert re.search(rf"^substrate address\s+{answer['substrate_address']}\s*$", shown, re.M)

    # Host two does not run `a`: it may not ask on its behalf.
    refused = onm("resolve", "--network", network, "--from", "a", "10.5.0.11", token=two["token"])
    assert failed(refused) == "error: no node 'a'"
    unknown = onm("resolve", "--network", network, "--from", "a", "10.5.0.99")
    assert (
        failed(unknown) == f"error: no node or pool has 10.5.0.99 in network {place['network']!r}"
    )


# --- status and events -----------------------------------------------------------------------
def test_status_highlights_hosts_that_lag_or_are_silent(onm: Onm, manager: ManagerProcess) -> None:
    created = onm.json("host", "create", unique("h"), "--prefix", str(HostPrefix(new_location())))
    name = created["host"]["name"]
    status = onm.json("status")
    assert status == onm.api("/v1/status")
    row = next(h for h in status["hosts"] if h["host"] == name)
    assert row["lagging"] and row["silent"]
    assert re.search(rf"^{name}\s+\d+\s+0\s+lagging, silent\s+never", onm.ok("status"), re.M)

    httpx.post(
        f"{manager.url}/v1/hosts/{name}/report",
        json={"applied_revision": row["desired_revision"]},
        headers={"Authorization": f"Bearer {created['token']}"},
    ).raise_for_status()
    table = onm.ok("status")
    assert re.search(rf"^{name}\s+(\d+)\s+\1\s+ok\s+\d{{4}}-", table, re.M)
    assert re.search(r"^\d+ of \d+ hosts lag or are silent$", table, re.M)


def test_events_latest_after_and_as_a_table(onm: Onm) -> None:
    name = unique("t")
    onm.ok("tenant", "create", name)
    latest = onm.json("events", "-n", "1")
    assert latest == onm.api("/v1/events?limit=1")
    assert (latest[0]["kind"], latest[0]["data"]) == ("tenant.created", {"name": name})
    seq = latest[0]["seq"]
    assert onm.json("events", "--after", str(seq - 1)) == latest
    assert onm.json("events", "--after", str(seq)) == []
    table = onm.ok("events", "--limit", "3")
    assert re.search(
        rf"^\s*{seq}\s+\d+\s+\S+\s+admin\s+tenant.created\s+ten-\S+\s+name={name}\s*$", table, re.M
    )


def read_line(process: subprocess.Popen[bytes], timeout: float = 10) -> str:
    """One line of the process's stdout, or fail after `timeout` seconds."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        line = b""
        deadline = time.monotonic() + timeout
        while not line.endswith(b"\n"):
            if not selector.select(max(0.0, deadline - time.monotonic())):
                pytest.fail(f"no line within {timeout} s (got {line!r})")
            chunk = os.read(process.stdout.fileno(), 1)
            if not chunk:
                pytest.fail(f"stdout closed (got {line!r})")
            line += chunk
    return line.decode()


def test_events_follow_streams_new_events_until_ctrl_c(onm: Onm, manager: ManagerProcess) -> None:
    onm.ok("tenant", "create", unique("t"))
    env = {k: v for k, v in os.environ.items() if k not in NO_ENV}
    env |= {"ONM_URL": manager.url, "ONM_TOKEN": manager.admin_token}
    process = subprocess.Popen(
        [sys.executable, "-m", "onm.cli", "events", "--follow", "--json", "-n", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # A shell without job control starts background jobs with SIGINT ignored; undo that here.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        backlog = json.loads(read_line(process))
        name = unique("t")
        onm.ok("tenant", "create", name)
        new = json.loads(read_line(process))
        assert (new["seq"], new["kind"], new["data"]) == (
            backlog["seq"] + 1,
            "tenant.created",
            {"name": name},
        )
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None
        assert process.stderr.read() == b""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# --- errors: one line on stderr, exit 1, from the real process ---------------------------------
@pytest.fixture(scope="module")
def taken(manager: ManagerProcess) -> str:
    """A tenant that exists, for the duplicate-name error."""
    name = unique("t")
    with httpx.Client(
        base_url=manager.url, headers={"Authorization": f"Bearer {manager.admin_token}"}
    ) as http:
        http.post("/v1/tenants", json={"name": name}).raise_for_status()
    return name


CASES: dict[str, tuple[list[str], dict[str, str | None], str]] = {
    "bad cidr": (
        ["network", "create", "n", "--tenant", "{taken}", "--cidr", "10.0.0.0/33"],
        {},
        "error: cidrs: '10.0.0.0/33' is not an IPv4 CIDR: '33' is not a valid netmask",
    ),
    "refused cidr": (
        ["network", "create", "n", "--tenant", "{taken}", "--cidr", "224.0.0.0/24"],
        {},
        "error: cidrs: 224.0.0.0/24 is inside 224.0.0.0/4 (multicast, RFC 5771 section 3): "
        "not ordinary unicast space",
    ),
    "duplicate name": (
        ["tenant", "create", "{taken}"],
        {},
        "error: name: a tenant named '{taken}' exists",
    ),
    "unknown network": (["network", "show", "nope", "--json"], {}, "error: no network 'nope'"),
    "no token": (
        ["tenant", "list"],
        {"ONM_TOKEN": None},
        "error: no token: give --token TOKEN or --token @FILE, or set ONM_TOKEN or ONM_TOKEN_FILE",
    ),
    "wrong token": (
        ["tenant", "list"],
        {"ONM_TOKEN": "onm_admin_wrong"},
        "error: the token is not valid",
    ),
    "unreachable": (
        ["status"],
        {"ONM_URL": "{dead}"},
        "error: the manager at {dead} is unreachable ([Errno 111] Connection refused)",
    ),
    "missing token file": (
        ["tenant", "list", "--token", "@/nonexistent/token"],
        {},
        "error: token: cannot read token file /nonexistent/token: No such file or directory",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_errors_are_one_line_on_stderr_and_exit_1(
    case: str, manager: ManagerProcess, taken: str
) -> None:
    args, env, expected = CASES[case]
    values = {"taken": taken, "dead": f"http://127.0.0.1:{free_port()}"}
    settings = {"ONM_URL": manager.url, "ONM_TOKEN": manager.admin_token}
    settings |= {k: v if v is None else v.format(**values) for k, v in env.items()}
    result = run_onm(*(a.format(**values) for a in args), env=settings)
    assert result.returncode == 1
    assert one_error_line(result) == expected.format(**values)


def test_a_token_is_read_from_a_file_given_as_at_path(
    onm: Onm, manager: ManagerProcess, tmp_path: Path
) -> None:
    token_file = tmp_path / "admin.token"
    token_file.write_text(manager.admin_token + "\n")
    token_file.chmod(0o600)
    expected = onm.api("/v1/tenants")
    for extra, env in (
        (["--token", f"@{token_file}"], {"ONM_TOKEN": None}),
        ([], {"ONM_TOKEN": f"@{token_file}"}),
        ([], {"ONM_TOKEN": None, "ONM_TOKEN_FILE": str(token_file)}),
    ):
        result = onm("tenant", "list", "--json", *extra, **env)
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout) == expected
    # The manager's own 0600 admin.token works as it is.
    admin_file = manager.state_dir / "admin.token"
    assert onm.json("tenant", "list", token=f"@{admin_file}") == expected


def test_help_names_every_command() -> None:
    shown = RUNNER.invoke(app, ["--help"], env={"COLUMNS": "120"}).stdout
    for command in ("tenant", "network", "host", "node", "resolve", "status", "events", "manager"):
        assert re.search(rf"│ {command}\s", shown), command
    for noun in ("tenant", "network", "host", "node"):
        shown = RUNNER.invoke(app, [noun, "--help"], env={"COLUMNS": "120"}).stdout
        for verb in ("create", "list", "show", "delete"):
            assert re.search(rf"│ {verb}\s", shown), (noun, verb)


def test_rate_limits_and_quotas_are_one_line_errors(tmp_path: Path) -> None:
    """A 429 says what was limited and when to retry; a quota names itself and its limit."""
    limits = ["--rate", "write=0.2:1", "--quota-networks", "0"]
    manager = start_manager(tmp_path / "m", extra=limits)
    try:
        settings = {"ONM_URL": manager.url, "ONM_TOKEN": manager.admin_token}
        assert run_onm("tenant", "create", "t", env=settings).returncode == 0
        throttled = run_onm("tenant", "create", "u", env=settings)
        assert throttled.returncode == 1
        assert re.fullmatch(
            r"error: too many write requests with this token \(at most 0\.2 per second, "
            r"1 at once\): retry in [1-5] s",
            one_error_line(throttled),
        )
        time.sleep(5.5)
        quota = run_onm(
            "network", "create", "n", "--tenant", "t", "--cidr", "10.0.0.0/24", env=settings
        )
        assert one_error_line(quota) == (
            "error: quota exceeded: tenant 't' may hold 0 networks "
            "(quota `networks`, set by the manager's --quota-networks)"
        )
    finally:
        manager.stop()


@pytest.mark.parametrize("seconds", ["4", "86401", "nan"])
def test_a_resolution_ttl_out_of_bounds_is_refused_naming_the_option(
    tmp_path: Path, seconds: str
) -> None:
    state = tmp_path / "m"
    result = RUNNER.invoke(
        app,
        ["manager", "serve", "--state-dir", str(state), "--resolution-ttl", seconds],
        env=NO_ENV,
    )
    assert failed(result) == (
        f"error: --resolution-ttl: must be between 5 and 86400 seconds, got {float(seconds):g}"
    )
    assert not state.exists()  # refused before anything is made


def test_the_resolution_ttl_is_how_long_the_managers_answers_live(tmp_path: Path) -> None:
    manager = start_manager(tmp_path / "m", extra=["--resolution-ttl", "6"])
    try:
        settings = {"ONM_URL": manager.url, "ONM_TOKEN": manager.admin_token}
        for command in (
            ("tenant", "create", "t"),
            ("network", "create", "n", "--tenant", "t", "--cidr", "10.0.0.0/24"),
            ("host", "create", "h", "--locale", "1", "--area", "1", "--rack", "1", "--node", "1"),
            ("node", "create", "a", "--network", "t/n", "--host", "h", "--ip", "10.0.0.2"),
            ("node", "create", "b", "--network", "t/n", "--host", "h", "--ip", "10.0.0.3"),
        ):
            assert run_onm(*command, env=settings).returncode == 0, command
        shown = run_onm(
            "resolve", "--network", "t/n", "--from", "a", "10.0.0.3", "--json", env=settings
        )
        assert shown.returncode == 0, shown.stderr
        expires = dt.datetime.fromisoformat(json.loads(shown.stdout)["expires_at"])
        left = (expires - dt.datetime.now(dt.UTC)).total_seconds()
        assert 3 < left <= 6
    finally:
        manager.stop()


def test_tenant_set_gives_a_tenant_its_own_quotas_and_show_gives_the_use(
    onm: Onm, place: dict[str, Any]
) -> None:
    """An admin's per-tenant limits hold for that tenant only; `default` puts one back."""
    tenant, network = place["tenant"], place["network"]
    host = place["hosts"][0]["host"]["name"]
    other = unique("t")
    onm.ok("tenant", "create", other)

    shown = onm.ok("tenant", "set", tenant, "--max-nodes", "2", "--max-networks", "5")
    assert shown.startswith(f"set quotas of tenant {tenant}\n")
    assert re.search(r"^networks\s+5\s+tenant\s+1\s*$", shown, re.M), shown
    assert re.search(r"^nodes\s+2\s+tenant\s+0\s*$", shown, re.M), shown
    assert "note:" not in shown
    for i in range(2):
        onm.ok("node", "create", f"m{i}", "--network", f"{tenant}/{network}", "--host", host,
               "--ip", f"10.5.0.{20 + i}")  # fmt: skip
    third = onm("node", "create", "m2", "--network", f"{tenant}/{network}", "--host", host,
                "--ip", "10.5.0.22")  # fmt: skip
    assert failed(third) == (
        f"error: quota exceeded: tenant {tenant!r} may hold 2 nodes "
        "(quota `nodes`, set for this tenant by `onm tenant set`)"
    )
    assert re.search(r"^nodes\s+2\s+tenant\s+2\s*$", onm.ok("tenant", "show", tenant), re.M)
    # Another tenant keeps the manager's defaults.
    assert onm.json("tenant", "show", other)["quotas"]["nodes"] == {
        "limit": 1000,
        "source": "default",
        "used": 0,
        "over": False,
    }

    # Lowering below the use is accepted, and said so; the nodes stay.
    lowered = onm.ok("tenant", "set", tenant, "--max-nodes", "1")
    assert (
        f"note: tenant {tenant} holds 2 nodes, over its limit of 1: they stay, "
        "but no new nodes are accepted until it is under"
    ) in lowered
    assert len(onm.json("node", "list", "--network", f"{tenant}/{network}")) == 2

    back = onm.json("tenant", "set", tenant, "--max-nodes", "default")
    assert back == onm.api(f"/v1/tenants/{tenant}")
    assert back["quotas"] == {
        "networks": {"limit": 5, "source": "tenant", "used": 1, "over": False},
        "nodes": {"limit": 1000, "source": "default", "used": 2, "over": False},
    }
    onm.ok("node", "create", "m2", "--network", f"{tenant}/{network}", "--host", host,
           "--ip", "10.5.0.22")  # fmt: skip


def test_tenant_set_refuses_bad_values_and_tenant_tokens(onm: Onm) -> None:
    name = unique("t")
    token = onm.json("tenant", "create", name)["token"]
    for value in ("-1", "1000001", "lots", "2.5", ""):
        assert failed(onm("tenant", "set", name, "--max-nodes", value)) == (
            f"error: --max-nodes: must be a whole number from 0 to 1000000, or `default`: "
            f"not {value!r}"
        )
    assert failed(onm("tenant", "set", name)) == (
        "error: quotas: nothing to set: give --max-networks and/or --max-nodes"
    )
    # A tenant reads its own quotas but may not set them.
    own = onm.json("tenant", "show", name, token=token)
    assert own["quotas"]["networks"]["source"] == "default"
    assert "quota" in onm.ok("tenant", "show", name, token=token).lower()
    refused = failed(onm("tenant", "set", name, "--max-nodes", "5000", token=token))
    assert refused.startswith("error: ") and "tenant quotas" in refused
    assert onm.json("tenant", "show", name)["quotas"]["nodes"]["limit"] == 1000
