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
