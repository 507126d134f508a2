"""Commands run inside network namespaces from the test process, which never enters one: `ip`
itself, the argv of `ip netns exec`, one ping, and what a ping printed at its end."""

from __future__ import annotations

import re
import subprocess


def ip(*args: str, stdin: str | None = None) -> None:
    """`ip ARGS` (with `-batch -` reading `stdin`); an error names the command and its stderr."""
    done = subprocess.run(["ip", *args], input=stdin, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"ip {' '.join(args)}: {done.stderr.strip()}\n{stdin or ''}"


def in_netns(namespace: str, *command: str) -> list[str]:
    """The argv running `command` inside `namespace` (`ip netns exec` execs it: the pid is its)."""
    return ["ip", "netns", "exec", namespace, *command]


def pings_once(namespace: str, target: str) -> bool:
    """One echo from inside `namespace` to `target` answered within a second?"""
    command = in_netns(namespace, "ping", "-c1", "-W1", target)
    return subprocess.run(command, capture_output=True, timeout=10).returncode == 0


def ping_counts(output: str) -> tuple[int, int]:
    """(transmitted, received) from ping's summary line; fails the test if there is none."""
    found = re.search(r"(\d+) packets transmitted, (\d+) received", output)
    assert found, output
    return int(found[1]), int(found[2])
