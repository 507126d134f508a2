"""`onm demo` (the README's `make demo`): the whole story runs, says what happened, cleans up."""

from __future__ import annotations

import re
import subprocess
import sys
import time

from support.datapaths import lab_name


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def test_demo_runs_in_under_a_minute_and_leaves_nothing(datapath: str) -> None:
    before = _namespaces()
    name = lab_name("demo", datapath)  # two demos at once (two checkouts' tests): two names
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "onm.cli", "demo", "--name", name],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for seen in (
        f"every agent runs the {datapath} datapath",
        "A's ARP cache: 10.0.0.3 is at 02:",
        "3 packets transmitted, 3 received, 0% packet loss",
        "captured on host R's substrate link: IPv6 fd00:0:101:101:",
        "next header 58 (ICMPv6)",
        "-> 200, 262144 bytes",
        "content identical",
        "C (ynet) pings 10.0.0.3: no answer",
        "J: GET http://10.0.0.3:8080/whoami.txt -> answered by H",  # FIG. 2B: nearest
        "the action ran on the manager's host: healthy<2, healthy 1",
        "H's service back: J answered by H again",
        "s after H's service died; health: G up, H down",
        "onm pool member add web b -> B is initial",
        "requests meanwhile answered by G, H only",
        "the manager proposes pool detected-10-0-0-77 (proposed) with members A, B",
        # Seed 1's FIG. 2C: three gateways, each seen for its share of A's flows.
        "the manager's pool: e1 30.0.100.1 on GW1, e2 30.0.100.2 on GW2, e3 30.0.100.3 on GW3",
        "A: GET http://30.0.2.2/ -> C saw it from 30.0.100.",
        "(computed here the same way: 30 of 30 agree)",
        "e2's agent on GW2 is stopped; A's agent (R) finds e2 silent",
        "the download: 2000000 bytes, whole, seen by C from 30.0.100.1 (e1) all along",
        "every namespace and process the lab made is gone",
    ):
        assert seen in out, f"missing from the demo: {seen!r}"
    shares = re.search(r"C sees them from: e1 (\d+), e2 (\d+), e3 (\d+)", out)
    assert shares and sum(map(int, shares.groups())) == 30, out
    moved = re.search(r"the (\d+) through e2 now through (.*); (\d+) of the (\d+) others kept", out)
    assert moved, out
    assert int(moved[1]) == int(shares[2]) and "e2" not in moved[2]
    assert moved[3] == moved[4] == str(30 - int(moved[1]))  # only e2's flows moved
    # Issue #10: A's public IP, held by a gateway up (e2, stopped and judged down, holds none),
    # reached from C, and A's flows leave from it.
    added = re.search(
        r"onm node public-ip add a --edge-pool egress --ip (30\.0\.100\.50) -> held by "
        r"(e1|e3) \(the owner rule over the gateways up, computed here: \2; e2 holds none: "
        r"the manager judges it down, ",
        out,
    )
    assert added, out
    public = re.escape(added[1])
    holder = {"e1": "GW1", "e3": "GW3"}[added[2]]
    applied = rf"A's agent \(R\) and {added[2]}'s \({holder}\) applied it [\d.]+ s after the add"
    assert re.search(applied, out), out
    assert re.search(
        rf"C \(www\): GET http://{public}/ -> answered by A's own web server [\d.]+ s later; "
        r"A saw the connection from 30\.0\.2\.2 \(C's own address, untranslated; "
        r"C got back 30\.0\.2\.2\)",
        out,
    ), out
    assert re.search(
        rf"A: GET http://30\.0\.2\.2/ -> C saw it from {public}; A's 30 connections at once, "
        rf"C sees them from: {public} 30 \(A's public IP, not the SNAT addresses",
        out,
    ), out
    assert elapsed < 60, f"the demo took {elapsed:.0f} s"
    assert not {n for n in _namespaces() - before if n.startswith(f"onm-{name}-")}
