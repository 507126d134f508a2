"""Coverage-guided fuzzing of onm's decoders with atheris (libFuzzer): `make fuzz`.

    python tests/fuzz/run.py --list
    python tests/fuzz/run.py --seconds 30 siit_6to4     # one target
    python tests/fuzz/run.py --seconds 30 --all         # every target, one after the other

Each target starts from its committed corpus (`tests/fuzz/corpus/<target>/`, read only) and keeps
what it learns in `.fuzz/corpus/<target>/`; a crash, an unexpected exception or an input slower
than one second (`-timeout=1`) is written to `.fuzz/crashes/<target>-...` and fails the run. Add
each crasher to the committed corpus (it is then replayed by `tests/fuzz/test_fuzz_corpus.py`)
and fix it. Only the onm package is instrumented.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WORK = ROOT / ".fuzz"
sys.path.insert(0, str(HERE.parent))


def _names() -> list[str]:
    from fuzz.targets import TARGETS

    return list(TARGETS)


def fuzz(name: str, seconds: int, extra: list[str]) -> None:
    """Run one target in this process (atheris ends the process when done)."""
    import atheris

    with atheris.instrument_imports(include=["onm"]):
        from fuzz import targets

    if name not in targets.TARGETS:
        raise SystemExit(f"unknown target {name!r}; --list shows them")
    corpus = WORK / "corpus" / name
    crashes = WORK / "crashes"
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    committed = HERE / "corpus" / name

    def one_input(data: bytes) -> None:
        targets.run_one(name, data)

    argv = [
        sys.argv[0],
        str(corpus),
        *([str(committed)] if committed.is_dir() else []),
        f"-max_total_time={seconds}",
        "-timeout=1",
        "-rss_limit_mb=2048",
        "-max_len=4096",
        "-print_final_stats=1",
        f"-artifact_prefix={crashes}/{name}-",
        *extra,
    ]
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("target", nargs="?", help="a target name (see --list)")
    parser.add_argument("--all", action="store_true", help="every target, one after the other")
    parser.add_argument("--list", action="store_true", help="print the target names")
    parser.add_argument("--seconds", type=int, default=30, help="time per target (default 30)")
    args, extra = parser.parse_known_args()
    if args.list:
        print("\n".join(_names()))
        return
    if args.all:
        failed = []
        for name in _names():
            print(f"=== fuzz {name} for {args.seconds} s", flush=True)
            command = [sys.executable, __file__, "--seconds", str(args.seconds), name, *extra]
            if subprocess.run(command, check=False).returncode != 0:
                failed.append(name)
        if failed:
            raise SystemExit(f"fuzzing found failures in: {', '.join(failed)} (see .fuzz/crashes)")
        return
    if not args.target:
        parser.error("name a target, or --all, or --list")
    fuzz(args.target, args.seconds, extra)


if __name__ == "__main__":
    main()
