"""The manager's JSON into the agent's model: values the model refuses are OnmErrors (found by
fuzzing: `tests/fuzz/corpus/wire/crash-*`), so the link backs off instead of dying."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from onm.api import codec, schemas
from onm.errors import OnmError
from support.wire_samples import SUBSTRATE, resolution_document, snapshot_document

SNAPSHOT = snapshot_document()
RESOLUTION = resolution_document()


def _snapshot(document: dict[str, Any]) -> schemas.SnapshotOut:
    return schemas.SnapshotOut.model_validate_json(json.dumps(document))


def test_a_good_snapshot_decodes() -> None:
    snap = codec.snapshot(_snapshot(SNAPSHOT))
    assert snap.revision == 3
    assert str(snap.networks[0].cidrs[0]) == "10.0.0.0/24"
    assert str(snap.residents[0].substrate_address) == SUBSTRATE


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("networks", 0, "encoding"), "skit"),  # the fuzzer's first find
        (("networks", 0, "cidrs", 0), "10.0.0.0/33"),
        (("residents", 0, "ip"), "10.0.0"),
        (("residents", 0, "substrate_address"), "not-an-address"),
        (("host", "prefix"), "fd00::/48"),
    ],
)
def test_a_value_the_model_refuses_is_an_onm_error(path: tuple[str | int, ...], value: str) -> None:
    document = copy.deepcopy(SNAPSHOT)
    where: Any = document
    for key in path[:-1]:
        where = where[key]
    where[path[-1]] = value
    with pytest.raises(OnmError):
        codec.snapshot(_snapshot(document))


def test_a_bad_resolution_is_an_onm_error() -> None:
    good = schemas.ResolutionOut.model_validate_json(json.dumps(RESOLUTION))
    assert str(codec.resolution(good).substrate_address) == SUBSTRATE
    bad = schemas.ResolutionOut.model_validate_json(json.dumps(RESOLUTION | {"target_ip": "x"}))
    with pytest.raises(OnmError, match="unusable resolution from the manager"):
        codec.resolution(bad)


# --- one codec, both ways, every resource (issue #8) -------------------------------------------

_NODE = {
    "id": "nd-1",
    "name": "web-1",
    "network_id": "n-1",
    "host_id": "h-1",
    "ip": "10.0.0.2",
    "mac": "02:00:00:00:00:02",
    "slot": 0,
    "interface": "onm-web-1",
    "created_at": "2026-01-01T00:00:00Z",
}


def _consistent_snapshot() -> dict[str, Any]:
    """The sample with the values the model derives (gateways) as it derives them, and a node."""
    document = snapshot_document()
    document["networks"][0] |= {"gateway": "10.0.0.1", "gateways": ["10.0.0.1"]}
    document["host"]["location"] = {
        "locale": 1,
        "area": 2,
        "rack": 3,
        "node": 0,
    }  # fd00:0:102:300::
    document["nodes"] = [{"node": _NODE, "substrate_address": SUBSTRATE}]
    document["grants"] = [RESOLUTION]
    return document


def test_a_snapshot_survives_wire_model_wire() -> None:
    document = _consistent_snapshot()
    model = codec.snapshot(_snapshot(document))
    again = codec.encode(schemas.SnapshotOut, model)
    assert json.loads(again.model_dump_json()) == json.loads(_snapshot(document).model_dump_json())
    assert codec.snapshot(again) == model


def test_the_model_is_typed_after_decoding() -> None:
    model = codec.snapshot(_snapshot(_consistent_snapshot()))
    node = model.nodes[0].node
    assert type(node.ip).__name__ == "IPv4Address"
    assert model.networks[0].encoding.value == "siit"
    assert str(model.host.prefix) == "fd00:0:102:300::/64"
    assert model.host.location.rack == 3


def test_a_host_is_shown_with_or_without_its_substrate() -> None:
    host = codec.snapshot(_snapshot(_consistent_snapshot())).host
    full = codec.host_view(host, shows_substrate=True)
    public = codec.host_view(host, shows_substrate=False)
    assert isinstance(full, schemas.HostOut) and full.prefix == "fd00:0:102:300::/64"
    assert "prefix" not in public.model_dump()
    assert public.location.model_dump() == {"locale": 1, "area": 2, "rack": 3, "node": 0}


def test_an_optional_value_crosses_as_null() -> None:
    from onm.model.resolution import Verdict

    assert codec.encode(schemas.VerdictOut, Verdict(True, "ok", None)).expected is None


def test_a_row_decodes_by_attribute_like_the_wire() -> None:
    from types import SimpleNamespace

    from onm.model import Node

    row = SimpleNamespace(
        **(_NODE | {"created_at": _snapshot(_consistent_snapshot()).host.created_at})
    )
    node = codec.decode(Node, row)
    assert str(node.ip) == "10.0.0.2" and node.interface == "onm-web-1"
    with pytest.raises(OnmError, match="unusable node"):
        codec.decode(Node, SimpleNamespace(**(vars(row) | {"ip": "10.0.0.300"})))


def test_a_type_the_codec_cannot_read_is_refused_when_planned() -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Odd:
        value: complex

    with pytest.raises(TypeError, match="cannot read"):
        codec.decode(Odd, object())
