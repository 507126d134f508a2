"""The least-loaded choice (onm.selection.least_loaded): the least load wins; ties go to the
hash's own choice, then to the rendezvous order for the flow's hash; nothing to choose from,
no answer."""

from __future__ import annotations

from collections import Counter

from onm.selection import rendezvous
from onm.selection.least_loaded import least_loaded

GATEWAYS = ("e1", "e2", "e3")


def test_the_least_loaded_wins_whatever_the_hash_says() -> None:
    load = {"e1": 5, "e2": 1, "e3": 3}.__getitem__
    assert {least_loaded(GATEWAYS, load, h, "e1") for h in range(50)} == {"e2"}


def test_ties_go_to_the_hashs_choice_when_it_is_among_the_least_loaded() -> None:
    load = {"e1": 2, "e2": 2, "e3": 7}.__getitem__
    assert least_loaded(GATEWAYS, load, 1, "e2") == "e2"
    assert least_loaded(GATEWAYS, load, 1, "e1") == "e1"


def test_other_ties_go_to_the_rendezvous_order_of_the_flow_hash() -> None:
    load = {"e1": 0, "e2": 0, "e3": 9}.__getitem__
    chosen = [least_loaded(GATEWAYS, load, h, "e3") for h in range(400)]
    for h, gateway in enumerate(chosen):
        assert gateway == rendezvous.rank(str(h), ("e1", "e2"))[0]
        assert least_loaded(reversed(GATEWAYS), load, h, "e3") == gateway  # order aside
    shares = Counter(chosen)
    assert set(shares) == {"e1", "e2"} and min(shares.values()) > 150  # flows spread


def test_nothing_to_choose_from_is_no_answer() -> None:
    assert least_loaded((), lambda g: 0, 7, None) is None
