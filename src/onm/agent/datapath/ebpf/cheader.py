"""The C header the eBPF programs include, rendered from `layout` (and `DropReason`).

Run by make: `python -m onm.agent.datapath.ebpf.cheader bpf/include/generated/defs.h` (the file
is rewritten only when its text changes, so make does not rebuild for nothing). Pure: `render()`
returns the text; the unit test compares it with the checked-in file.
"""

from __future__ import annotations

import ctypes
import enum
import re
import sys
from pathlib import Path

from onm import addressing
from onm.agent.datapath.ebpf import layout
from onm.packet.drop import DropReason
from onm.selection.flow import STEERING_SHIFT

_C_TYPES: dict[type[ctypes._SimpleCData[int]], str] = {
    ctypes.c_uint8: "__u8",
    ctypes.c_uint16: "__u16",
    ctypes.c_uint32: "__u32",
    ctypes.c_uint64: "__u64",
}


def c_name(struct: type[ctypes.Structure]) -> str:
    """`PortValue` -> `onm_port_value`."""
    return "onm_" + re.sub(r"(?<!^)(?=[A-Z])", "_", struct.__name__).lower()


def _field(name: str, kind: object) -> str:
    if isinstance(kind, type) and issubclass(kind, ctypes.Structure):  # declared before it
        return f"\tstruct {c_name(kind)} {name};"
    length = getattr(kind, "_length_", None)
    if length is not None:
        element = kind._type_  # type: ignore[attr-defined]
        return f"\t{_C_TYPES[element]} {name}[{length}];"
    return f"\t{_C_TYPES[kind]} {name};"  # type: ignore[index]


def _struct(struct: type[ctypes.Structure]) -> list[str]:
    name = c_name(struct)
    lines = [f"struct {name} {{"]
    lines += [_field(field, kind) for field, kind in struct._fields_]  # type: ignore[misc]
    lines.append("};")
    lines.append(
        f"_Static_assert(sizeof(struct {name}) == {ctypes.sizeof(struct)}, "
        f'"{name}: size differs from layout.{struct.__name__}");'
    )
    for field, _kind in struct._fields_:  # type: ignore[misc]
        offset = getattr(struct, field).offset
        lines.append(
            f"_Static_assert(__builtin_offsetof(struct {name}, {field}) == {offset}, "
            f'"{name}.{field}: offset differs from layout.{struct.__name__}");'
        )
    return lines


def _enum(prefix: str, members: type[enum.IntEnum] | type[enum.IntFlag]) -> list[str]:
    lines = [f"enum {prefix.lower()} {{"]
    lines += [f"\t{prefix}_{m.name} = {int(m.value)}," for m in members]
    lines.append("};")
    return lines


def _map(spec: layout.MapSpec) -> list[str]:
    # The kernel wants an array's key declared as a plain 32-bit integer in BTF.
    key = f"struct {c_name(spec.key)}" if spec.kind.keyed else "__u32"
    flags = [f"\t__uint(map_flags, {spec.flags});"] if spec.flags else []
    return [
        "struct {",
        f"\t__uint(type, {spec.kind.value});",
        f"\t__uint(max_entries, {spec.max_entries});",
        *flags,
        f"\t__type(key, {key});",
        f"\t__type(value, struct {c_name(spec.value)});",
        f'}} {spec.name} SEC(".maps");',
    ]


def render() -> str:
    """The whole header."""
    out = [
        "/* Generated from onm.agent.datapath.ebpf.layout and onm.packet.drop: do not edit.",
        " * make regenerates it; tests/unit/agent/ebpf/test_cheader.py checks it is current. */",
        "#ifndef ONM_GENERATED_DEFS_H",
        "#define ONM_GENERATED_DEFS_H",
        "",
        "#include <linux/types.h>",
        "#include <linux/bpf.h>",
        "#include <bpf/bpf_helpers.h>",
        "",
    ]
    for prefix, members in (
        ("ONM_DROP", DropReason),
        ("ONM_SLOW", layout.SlowPath),
        ("ONM_PORT_F", layout.PortFlag),
        ("ONM_NET_F", layout.NetworkFlag),
        ("ONM_MAP_F", layout.MappingFlag),
        ("ONM_EDGE_F", layout.EdgePoolFlag),
        ("ONM_HASH_F", layout.HashFlag),
        ("ONM_GW_F", layout.EdgeGatewayFlag),
        ("ONM_DUTY_F", layout.DutyFlag),
        ("ONM_SOURCE_F", layout.SourceFlag),
    ):
        out += [*_enum(prefix, members), ""]
    out += [
        f"#define ONM_DROP_SLOTS {layout.DROP_SLOTS}",
        f"#define ONM_SLOW_SLOTS {layout.VERDICT_SLOTS}",
        f"#define ONM_ICMP_SUM_WORDS {layout.ICMP_SUM_WORDS}",
        f"#define ONM_DUTY_CIDRS {layout.DUTY_CIDRS}",
        f"#define ONM_POOL_SLOTS {layout.POOL_SLOTS}",
        f"#define ONM_GATEWAY_SLOTS {layout.GATEWAY_SLOTS}",
        f"#define ONM_MAGLEV_STRIDE {layout.MAGLEV_STRIDE}",
        f"#define ONM_ROUTE_INSIDE {layout.ROUTE_INSIDE:#x}u",
        f"#define ONM_ROUTE_NO_POOL {layout.ROUTE_NO_POOL:#x}u",
        f"#define ONM_ROUTE_SLOW {layout.ROUTE_SLOW:#x}u",
        f"#define ONM_USED_SHIFT {layout.USED_SHIFT}",
        f"#define ONM_SLOT_BYTE {addressing.SLOT_BYTE}",
        f"#define ONM_SLOT_LOW {addressing.SLOT_LOW}",
        f"#define ONM_UL_BIT {addressing.UL_BIT:#x}",
        f"#define ONM_STEERING_SHIFT {STEERING_SHIFT}",
        *(f"#define ONM_IDLE_{name}_NS {ns}ull" for name, ns in layout.IDLE_NS.items()),
        "",
    ]
    for struct in layout.STRUCTS:
        out += [*_struct(struct), ""]
    for spec in layout.MAPS:
        out += [*_map(spec), ""]
    out.append("#endif")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUTPUT.h", file=sys.stderr)
        return 2
    path = Path(argv[1])
    text = render()
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
