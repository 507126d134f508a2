"""The C header the eBPF programs include is the one `layout` generates, and says what it says."""

from __future__ import annotations

import ctypes
import re
from pathlib import Path

from onm.agent.datapath.ebpf import cheader, layout
from onm.packet.drop import DropReason
from support.bpf_harness import ROOT

HEADER = ROOT / "bpf" / "include" / "generated" / "defs.h"


def test_checked_in_header_is_current() -> None:
    assert HEADER.read_text() == cheader.render(), (
        "bpf/include/generated/defs.h is stale: run "
        "`python -m onm.agent.datapath.ebpf.cheader bpf/include/generated/defs.h` (make does)"
    )


def test_every_drop_reason_has_its_code() -> None:
    text = cheader.render()
    for reason in DropReason:
        assert f"\tONM_DROP_{reason.name} = {int(reason)}," in text
    assert f"#define ONM_DROP_SLOTS {max(DropReason) + 1}" in text


def test_every_struct_size_and_offset_is_asserted() -> None:
    text = cheader.render()
    for struct in layout.STRUCTS:
        name = cheader.c_name(struct)
        assert f"sizeof(struct {name}) == {ctypes.sizeof(struct)}," in text
        for field, _kind in struct._fields_:
            offset = getattr(struct, field).offset
            assert f"__builtin_offsetof(struct {name}, {field}) == {offset}," in text


def test_maps_declared_with_layout_types() -> None:
    text = cheader.render()
    for spec in layout.MAPS:
        block = re.search(r"struct \{([^}]*)\} " + spec.name + r" SEC", text)
        assert block is not None, spec.name
        assert f"max_entries, {spec.max_entries})" in block.group(1)
        assert f"struct {cheader.c_name(spec.value)})" in block.group(1)


def test_a_struct_inside_another_is_declared_first() -> None:
    """C needs a member's struct complete before it (a port's and a local's network)."""
    text = cheader.render()
    nested = 0
    for struct in layout.STRUCTS:
        for field, kind in struct._fields_:
            if isinstance(kind, type) and issubclass(kind, ctypes.Structure):
                nested += 1
                inner, outer = cheader.c_name(kind), cheader.c_name(struct)
                assert f"\tstruct {inner} {field};" in text
                assert text.index(f"struct {inner} {{") < text.index(f"struct {outer} {{")
    assert nested >= 2  # PortValue.network, LocalValue.network


def test_structs_have_no_hidden_padding() -> None:
    """ctypes and clang agree only if nothing is left to the compiler: fields fill each struct."""
    for struct in layout.STRUCTS:
        used = sum(ctypes.sizeof(kind) for _field, kind in struct._fields_)
        assert used == ctypes.sizeof(struct), struct.__name__


def test_main_rewrites_only_on_change(tmp_path: Path) -> None:
    out = tmp_path / "defs.h"
    assert cheader.main(["cheader", str(out)]) == 0
    first = out.stat().st_mtime_ns
    assert cheader.main(["cheader", str(out)]) == 0
    assert out.stat().st_mtime_ns == first
    assert out.read_text() == cheader.render()
    assert cheader.main(["cheader"]) == 2
