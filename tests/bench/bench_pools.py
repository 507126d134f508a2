"""Benchmark of pools (issue #9), measured in one run: failover and selection spread.

Not part of the pass/fail suite (`make bench-pools`, as root).

Failover: a lab (`bp<pid>`) of seed 0's FIG. 2B: requester J on host r, pool web on 10.0.0.3
with members H (J's area: nearest) and G (another locale), check `http:8080/healthz` every
0.2 s, timeout 0.2 s, fall 2. A client inside J sends one HTTP GET every 20 ms (each with a
0.3 s timeout) and notes who answered. H's server is killed; the figure is the time from the
kill to the first answer from G, beside the check's own detection time (fall x interval) and
the target (under 1 s, and under detection + 0.3 s); the share of requests lost in between.
Repeated `--repeat` times (H restarted and taken back in between); the median is printed.

Selection (pure, `onm.selection`): 1,000 simulated requesters over 5 members, the busiest
member's share over the mean for `hash`, `round-robin` and `least-loaded` (each new requester
counted in the load, as the manager does); and the fraction of requesters that move when one of
5 members leaves under `hash` (rendezvous: ideally exactly that member's share, about 1/5).

The lab is removed at the end, by exact name, whatever happens.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from onm.addressing import HostPrefix, Location  # noqa: E402
from onm.lab import state as lab_state  # noqa: E402
from onm.lab.plan import Role  # noqa: E402
from onm.model.ids import NodeId  # noqa: E402
from onm.model.pool import Policy  # noqa: E402
from onm.selection.policy import Candidate, Request, select  # noqa: E402
from support.pool_lab import FALL, INTERVAL, PORT, TOPOLOGY  # noqa: E402
from support.servers import SERVE  # noqa: E402

CLIENT = """\
import sys, time, urllib.request
while True:
    started = time.monotonic()
    try:
        who = urllib.request.urlopen("http://10.0.0.3:8080/whoami.txt", timeout=0.3).read()
        print(f"{started:.4f} {who.decode()}", flush=True)
    except Exception:
        print(f"{started:.4f} -", flush=True)
    time.sleep(max(0.0, 0.02 - (time.monotonic() - started)))
"""


def onm(*args: str, timeout: float = 180) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "onm.cli", *args], capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"onm {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


class PoolLab:
    def __init__(self, name: str, root: Path) -> None:
        self.name, self.root = name, root
        self.flags = ["--name", name, "--state-dir", str(root / "state")]
        self.servers: dict[str, subprocess.Popen[bytes]] = {}

    def up(self) -> None:
        file = self.root / "pools.yaml"
        file.write_text(TOPOLOGY)
        onm("lab", "up", str(file), *self.flags)
        record = lab_state.load(self.root / "state")
        assert record is not None
        self.record = record
        self.manager = ["--url", record.manager_url, "--token", f"@{record.admin_token_file}"]

    def ns(self, node: str) -> str:
        return str(self.record.namespace_of(Role.NODE, node))

    def serve(self, node: str) -> None:
        where = self.root / node
        where.mkdir(exist_ok=True)
        (where / "whoami.txt").write_text(node)
        (where / "healthz").write_text("ok")
        command = ["ip", "netns", "exec", self.ns(node), sys.executable, "-c", SERVE]
        self.servers[node] = subprocess.Popen(
            [*command, "0.0.0.0", str(PORT), str(where)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self, node: str) -> None:
        process = self.servers.pop(node)
        process.kill()
        process.wait(5)

    def health(self) -> dict[str, str]:
        shown = json.loads(onm("pool", "show", "znet/web", "--json", *self.manager))
        return {m["node"]: m["health"] for m in shown["members"]}

    def down(self) -> None:
        for process in self.servers.values():
            process.kill()
        subprocess.run([sys.executable, "-m", "onm.cli", "lab", "down", *self.flags],
                       capture_output=True, check=False)  # fmt: skip


def wait_for(check: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:g} s")
        time.sleep(0.1)


def failover_once(lab: PoolLab) -> tuple[float, float]:
    """Seconds from H's death to G's first answer, and the share of requests lost meanwhile."""
    wait_for(lambda: lab.health() == {"g": "up", "h": "up"}, "both members up")
    command = ["ip", "netns", "exec", lab.ns("j"), sys.executable, "-u", "-c", CLIENT]
    client = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert client.stdout is not None
    try:
        lines = iter(client.stdout)
        while next(lines).split()[1] != "h":  # steady on H
            pass
        for _ in range(10):
            next(lines)
        killed = time.monotonic()
        lab.kill("h")
        lost = total = 0
        for line in lines:
            at, who = line.split()
            if float(at) < killed:
                continue
            total += 1
            if who == "g":
                return float(at) - killed, lost / total
            lost += 1
        raise RuntimeError("the client stopped")
    finally:
        client.kill()
        client.wait(5)


def spread(policy: Policy, requesters: int = 1000, members: int = 5) -> float:
    counts: collections.Counter[str] = collections.Counter()
    here = HostPrefix(Location(1, 1, 1, 1))
    names = [f"m{i}" for i in range(members)]
    for k in range(requesters):
        cs = [
            Candidate(NodeId(n), HostPrefix(Location(2, 0, 0, i)), i, counts[n], True)
            for i, n in enumerate(names)
        ]
        counts[select(policy, cs, Request(f"req-{k}", here, turn=k))[0]] += 1
    return max(counts.values()) / (requesters / members)


def moved_when_one_leaves(requesters: int = 1000, members: int = 5) -> float:
    here = HostPrefix(Location(1, 1, 1, 1))
    cs = [Candidate(NodeId(f"m{i}"), here, i, 0, True) for i in range(members)]
    keys = [f"req-{k}" for k in range(requesters)]
    before = [select(Policy.HASH, cs, Request(k, here))[0] for k in keys]
    after = [select(Policy.HASH, cs[:-1], Request(k, here))[0] for k in keys]
    return sum(b != a for b, a in zip(before, after, strict=True)) / requesters


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="failovers to measure")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench-pools builds network namespaces: run it as root", file=sys.stderr)
        return 1

    def interrupted(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    lab = PoolLab(f"bp{os.getpid()}", Path(tempfile.mkdtemp(prefix="onm-bench-pools-")))
    times, losses = [], []
    try:
        print(f"lab {lab.name}: up ...", flush=True)
        lab.up()
        lab.serve("g")
        lab.serve("h")
        for run in range(args.repeat):
            took, lost = failover_once(lab)
            times.append(took)
            losses.append(lost)
            print(f"failover {run + 1}: {took:.3f} s, {lost:.0%} of requests lost", flush=True)
            lab.serve("h")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        lab.down()
    detection = INTERVAL * FALL
    median = statistics.median(times)
    print(f"\ncheck: http every {INTERVAL} s, fall {FALL}: detection {detection:.1f} s")
    print(f"failover, median of {len(times)}: {median:.3f} s (runs {[round(t, 3) for t in times]})")
    within = median < detection + 0.3
    print(
        f"  target < 1 s: {'yes' if median < 1 else 'no'}; "
        f"< detection + 0.3 s ({detection + 0.3:.1f} s): {'yes' if within else 'no'}"
    )
    print(f"requests lost during failover, median: {statistics.median(losses):.0%}")
    for policy in (Policy.HASH, Policy.ROUND_ROBIN, Policy.LEAST_LOADED):
        ratio = spread(policy)
        print(f"spread of 1000 requesters over 5 members, {policy.value}: max/mean {ratio:.3f}")
    moved = moved_when_one_leaves()
    print(f"hash: requesters moved when 1 of 5 members leaves: {moved:.1%} (ideal 20%; "
          f"within 2 points: {'yes' if abs(moved - 0.2) <= 0.02 else 'no'})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
