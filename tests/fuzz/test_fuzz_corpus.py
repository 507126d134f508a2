"""Replay the committed fuzz corpus (seeds and every crasher found so far) through the targets.

Runs without atheris: each file is one input to its target's one-input function, which must end
in a parsed value, a typed drop or a typed refusal (`fuzz.targets.run_one`), and quickly: the
fuzzer allows one second per input; this replay, on a loaded machine, five.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fuzz.targets import TARGETS, run_one

CORPUS = Path(__file__).resolve().parent / "corpus"
SLOWEST = 5.0  # seconds; `make fuzz` holds inputs to 1 s (-timeout=1)

INPUTS = sorted(
    (directory.name, path)
    for directory in CORPUS.iterdir()
    if directory.is_dir()
    for path in directory.iterdir()
    if path.is_file()
)


def test_every_target_has_a_corpus_and_every_corpus_a_target() -> None:
    directories = {d.name for d in CORPUS.iterdir() if d.is_dir()}
    assert directories == set(TARGETS)
    for name in TARGETS:
        assert any((CORPUS / name).iterdir()), f"no seed for {name}"


@pytest.mark.parametrize(("target", "path"), INPUTS, ids=[f"{t}/{p.name}" for t, p in INPUTS])
def test_corpus_input(target: str, path: Path) -> None:
    data = path.read_bytes()
    started = time.perf_counter()
    run_one(target, data)
    assert time.perf_counter() - started < SLOWEST
