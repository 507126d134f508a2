"""`onm demo` (the README's `make demo`): the whole story runs, says what happened, cleans up."""

from __future__ import annotations

import subprocess
import sys
import time


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def test_demo_runs_in_under_a_minute_and_leaves_nothing() -> None:
    before = _namespaces()
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "onm.cli", "demo"],
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
        "every namespace and process the lab made is gone",
    ):
        assert seen in out, f"missing from the demo: {seen!r}"
    assert elapsed < 60, f"the demo took {elapsed:.0f} s"
    assert not {n for n in _namespaces() - before if n.startswith("onm-demo-")}
