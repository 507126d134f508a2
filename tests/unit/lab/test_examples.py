"""Tests for onm.lab.examples: the shipped topologies are the checkout's, and load."""

from __future__ import annotations

from pathlib import Path

from onm.lab import examples, topology

TOP = Path(__file__).resolve().parents[3] / "examples"


def test_the_checkout_s_examples_are_the_shipped_ones_not_a_copy() -> None:
    # README's commands use examples/...; one copy of each file, inside the package.
    assert TOP.is_symlink()
    with examples.path(examples.names()[0]) as shipped:
        assert TOP.resolve() == shipped.parent.resolve()
    assert examples.names() == sorted(p.name for p in TOP.glob("*.yaml"))


def test_every_shipped_example_is_found_by_name_and_loads() -> None:
    assert {"edge.yaml", "fig2a.yaml", "two-hosts.yaml", "two-tenants.yaml"} <= set(
        examples.names()
    )
    for name in examples.names():
        with examples.path(name) as found:
            assert topology.load(found).hosts
