"""The strict walk over a topology file's YAML node graph: shapes and values, each checked at the
node that holds it, so every error names the file, the line and the key path
(`lab.yaml:7: nodes[1].ipp: unknown key`).

`Reader` knows YAML shapes (mappings with a fixed table of keys, lists, single values), the
value kinds the file uses (names, whole numbers, numbers, enumerations, IPv4 addresses) and
references between objects; what each part of the file means is read by `onm.lab.topology`
(hosts, networks, nodes), `onm.lab.topology_pools` and `onm.lab.topology_edge`. Plain scalars
are read as the text they are written as (`name: on` is the name "on", not YAML 1.1's boolean),
and a tag asking for anything but YAML's own kinds of value is refused.
"""

from __future__ import annotations

import enum
import ipaddress
import math
import re
from collections.abc import Mapping
from typing import Final, TypeVar

import yaml

from onm.errors import InvalidInputError
from onm.lab.topology_spec import NetworkSpec
from onm.model import validate

E = TypeVar("E", bound=enum.StrEnum)

_PLAIN_TAGS: Final = frozenset(
    f"tag:yaml.org,2002:{kind}" for kind in ("map", "seq", "str", "int", "float", "bool", "null")
)
_NUMBER_TAGS: Final = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_FLOAT_1_2: Final = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
"""A number as YAML 1.2's core schema writes it: PyYAML (YAML 1.1) reads an unquoted `1e9` as
text, since its floats need a dot and a signed exponent."""


class TopologyError(InvalidInputError):
    """A topology file that cannot be built: where (`source:line`), which key, and why."""

    def __init__(self, source: str, line: int, path: str, reason: str) -> None:
        super().__init__(path or "file", reason)
        self.source = source
        self.line = line
        self.path = path
        self.message = (
            f"{source}:{line}: {path}: {reason}" if path else f"{source}:{line}: {reason}"
        )
        self.args = (self.message,)


def join(path: str, key: str) -> str:
    """The key path of `key` inside `path` (`nodes[1]` + `ip` -> `nodes[1].ip`)."""
    return f"{path}.{key}" if path else key


class Reader:
    """Walks the composed YAML graph; every check raises a `TopologyError` at its node."""

    def __init__(self, source: str, loader: yaml.SafeLoader) -> None:
        self.source = source
        self.loader = loader

    def error(self, node: yaml.Node, path: str, reason: str) -> TopologyError:
        return TopologyError(self.source, node.start_mark.line + 1, path, reason)

    def plain(self, node: yaml.Node, path: str) -> None:
        """Only YAML's own kinds of value: no `!tag` that asks for something else."""
        if node.tag not in _PLAIN_TAGS:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise self.error(node, path, f"the tag {tag} is not allowed here")

    # --- shapes ----------------------------------------------------------------------------
    def mapping(self, node: yaml.Node, path: str, keys: Mapping[str, bool]) -> dict[str, yaml.Node]:
        """The mapping's values by key; `keys` maps each allowed key to whether it is required."""
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, path, "must be a mapping of keys to values")
        self.plain(node, path)
        found: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.error(key_node, path, "keys must be plain words")
            key = str(key_node.value)
            where = join(path, key)
            if key not in keys:
                expected = ", ".join(keys)
                raise self.error(key_node, where, f"unknown key (expected one of: {expected})")
            if key in found:
                raise self.error(key_node, where, "key given twice")
            found[key] = value_node
        for key, required in keys.items():
            if required and key not in found:
                raise self.error(node, join(path, key), "required key is missing")
        return found

    def sequence(self, node: yaml.Node | None, path: str) -> list[yaml.Node]:
        if node is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, path, "must be a list")
        self.plain(node, path)
        return list(node.value)

    # --- values ----------------------------------------------------------------------------
    def text(self, node: yaml.Node, path: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, path, "must be a single value, not a list or mapping")
        self.plain(node, path)
        value = str(node.value)
        if node.tag == "tag:yaml.org,2002:null" or not value:
            raise self.error(node, path, "must not be empty")
        return value

    def integer(self, node: yaml.Node, path: str, low: int, high: int) -> int:
        if not isinstance(node, yaml.ScalarNode) or node.tag != "tag:yaml.org,2002:int":
            raise self.error(node, path, f"must be a whole number in {low}..{high}")
        value = self.loader.construct_object(node)
        if not isinstance(value, int) or not low <= value <= high:
            raise self.error(node, path, f"must be {low}..{high}, got {value}")
        return value

    def number(self, node: yaml.Node, path: str, unit: str = "seconds") -> float:
        """A finite number, written unquoted (`0.5`, `2`, `1e9`)."""
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, path, f"must be a number ({unit})")
        if node.tag in _NUMBER_TAGS:
            value = self.loader.construct_object(node)
        elif node.tag == "tag:yaml.org,2002:str" and node.style is None:
            self.plain(node, path)
            if not _FLOAT_1_2.fullmatch(str(node.value)):
                raise self.error(node, path, f"must be a number ({unit})")
            value = float(node.value)
        else:
            raise self.error(node, path, f"must be a number ({unit})")
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise self.error(node, path, f"must be a finite number, got {node.value}")
        return float(value)

    def name(self, node: yaml.Node, path: str) -> str:
        value = self.text(node, path)
        try:
            return validate.name(path, value)
        except InvalidInputError as exc:
            raise self.error(node, path, exc.reason) from None

    def enumerated(self, node: yaml.Node, path: str, kind: type[E]) -> E:
        """The member of `kind` spelled as the value at `node`."""
        value = self.text(node, path)
        if value not in {e.value for e in kind}:
            choices = ", ".join(e.value for e in kind)
            raise self.error(node, path, f"{value!r} is not one of {choices}")
        return kind(value)

    def choice(self, keys: dict[str, yaml.Node], path: str, key: str, default: E) -> E:
        """The value of an enumeration at `key` (`default` when absent), by its spelling."""
        if key not in keys:
            return default
        return self.enumerated(keys[key], f"{path}.{key}", type(default))

    def ipv4(self, node: yaml.Node, path: str) -> ipaddress.IPv4Address:
        try:
            return validate.ipv4(path, self.text(node, path))
        except InvalidInputError as exc:
            raise self.error(node, path, exc.reason) from None

    def ipv4_network(self, node: yaml.Node, path: str) -> ipaddress.IPv4Network:
        """An IPv4 CIDR with no host bits set (`30.0.0.0/16`, `0.0.0.0/0`)."""
        value = self.text(node, path)
        try:
            return ipaddress.IPv4Network(value, strict=True)
        except ValueError as exc:
            raise self.error(node, path, f"{value!r} is not an IPv4 CIDR: {exc}") from None

    def node_ip(self, node: yaml.Node, path: str, network: NetworkSpec) -> ipaddress.IPv4Address:
        """A node's (or pool's) address: inside the network, not its gateway, network or
        broadcast address."""
        ip = self.ipv4(node, path)
        cidr = next((c for c in network.cidrs if ip in c), None)
        if cidr is None:
            cidrs = ", ".join(str(c) for c in network.cidrs)
            raise self.error(node, path, f"{ip} is not inside network {network.name!r} ({cidrs})")
        if ip in (cidr.network_address, cidr.broadcast_address):
            raise self.error(node, path, f"{ip} is the network or broadcast address of {cidr}")
        if ip == network.gateway_for(ip):
            raise self.error(node, path, f"{ip} is the gateway address of network {network.name!r}")
        return ip

    # --- references ------------------------------------------------------------------------
    def reference(self, node: yaml.Node, path: str, kind: str, known: Mapping[str, object]) -> str:
        value = self.text(node, path)
        if value not in known:
            raise self.error(node, path, f"{kind} {value!r} is not defined")
        return value

    def unique(self, node: yaml.Node, path: str, kind: str, name: str, seen: set[str]) -> None:
        if name in seen:
            raise self.error(node, path, f"{kind} {name!r} is defined twice")
        seen.add(name)
