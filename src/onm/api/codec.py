"""The one model <-> wire codec: domain dataclasses to API schemas (`encode`) and back
(`decode`), driven by their field types rather than written out per resource.

A schema field takes the model attribute of the same name (a property counts: `gateways`,
`location`); addresses, CIDRs, prefixes and encodings travel as their text. `decode` reads
attributes by name, so the same plan turns a database row into the model (the store's columns
are the wire's names and text forms). Adding a resource is a dataclass and a schema; nothing
here changes unless the resource brings a new kind of value (`PARSERS`).

A model field with a default may be absent from the source (it takes the default). Each class
gets its plan once (field names and converters, cached). A value the model refuses
(an encoding it does not know, a /33) is an `OnmError` naming what was being read, never a
stray `ValueError`: the agent's link handles it (log, back off, retry).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import ipaddress
import types
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from pydantic import BaseModel

from onm.addressing import HostPrefix, Location
from onm.api import schemas as s
from onm.errors import OnmError
from onm.model import Host, HostStatus
from onm.model.resolution import Resolution
from onm.model.snapshot import HostSnapshot
from onm.model.tenant import QuotaUse, TenantUsage

M = TypeVar("M")
W = TypeVar("W", bound=BaseModel)
Convert = Callable[[Any], Any]

PARSERS: dict[type, Convert] = {
    ipaddress.IPv4Address: ipaddress.IPv4Address,
    ipaddress.IPv6Address: ipaddress.IPv6Address,
    ipaddress.IPv4Network: ipaddress.IPv4Network,
    HostPrefix: HostPrefix.from_network,
}
"""Model value types read from their text form (enums are read by value, dataclasses field by
field)."""
PLAIN: frozenset[type] = frozenset({str, int, bool, float, dt.datetime, dict, Location})
"""Types that cross unchanged."""


def _identity(value: Any) -> Any:
    return value


# --- wire (or row) -> model -------------------------------------------------------------------


def _parser(hint: Any) -> Convert:
    """How to read a value of the model type `hint` from its wire form."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        (inner,) = (arg for arg in typing.get_args(hint) if arg is not type(None))
        read = _parser(inner)
        return lambda value: None if value is None else read(value)
    if origin is tuple:
        item = _parser(typing.get_args(hint)[0])
        return lambda values: tuple(item(v) for v in values)
    if origin is dict:
        return _identity
    supertype = getattr(hint, "__supertype__", None)  # a NewType id
    if supertype is not None:
        return _parser(supertype)
    if hint in PARSERS:
        return PARSERS[hint]
    if hint in PLAIN:
        return _identity
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        _read_plan(hint)  # planned now: a type it cannot read is found before any data
        return functools.partial(_decode, hint)
    raise TypeError(f"the codec cannot read a {hint!r}")


_MISSING = object()


@functools.cache
def _read_plan(model: Any) -> tuple[tuple[str, Convert, bool], ...]:
    """(field, how to read it, whether it may be missing: it has a default)."""
    hints = typing.get_type_hints(model)
    return tuple(
        (
            f.name,
            _parser(hints[f.name]),
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING,
        )
        for f in dataclasses.fields(model)
        if f.init
    )


def _decode(model: type[M], source: Any) -> M:
    """A field with a default that `source` does not carry takes its default (a view that
    leaves something out on purpose, e.g. agents' pools carry no actions)."""
    values = {}
    for name, read, optional in _read_plan(typing.cast(Any, model)):
        value = getattr(source, name, _MISSING) if optional else getattr(source, name)
        if value is not _MISSING:
            values[name] = read(value)
    return model(**values)


@contextmanager
def _reading(what: str) -> Iterator[None]:
    try:
        yield
    except OnmError:
        raise
    except (ValueError, TypeError, AttributeError) as exc:
        raise OnmError(f"unusable {what}: {exc}") from None


def decode(model: type[M], source: Any, what: str | None = None) -> M:
    """The `model` dataclass read attribute by attribute from `source` (a schema or a row)."""
    _read_plan(typing.cast(Any, model))
    with _reading(what or model.__name__.lower()):
        return _decode(model, source)


# --- model -> wire ----------------------------------------------------------------------------


def _writer(hint: Any) -> Convert:
    """How to write a model value for the schema field type `hint`."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        (inner,) = (arg for arg in typing.get_args(hint) if arg is not type(None))
        write = _writer(inner)
        return lambda value: None if value is None else write(value)
    if origin is list:
        item = _writer(typing.get_args(hint)[0])
        return lambda values: [item(v) for v in values]
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return functools.partial(_encode, hint)
    if hint is str:
        return lambda value: value if type(value) is str else str(value)
    return _identity


@functools.cache
def _write_plan(schema: type[BaseModel]) -> tuple[tuple[str, Convert], ...]:
    return tuple((name, _writer(f.annotation)) for name, f in schema.model_fields.items())


def _encode(schema: type[W], value: Any) -> W:
    return schema(**{name: write(getattr(value, name)) for name, write in _write_plan(schema)})


def encode(schema: type[W], value: Any) -> W:
    """The `schema` body of a model value: each field from the attribute of its name."""
    return _encode(schema, value)


# --- views that are more than the model's attributes -----------------------------------------


def host_view(host: Host, shows_substrate: bool) -> s.HostView:
    """A host with its substrate /64 (admins, its agent) or without it (tenants)."""
    return encode(s.HostOut if shows_substrate else s.HostPublic, host)


def quota(use: QuotaUse) -> s.QuotaOut:
    source: typing.Literal["tenant", "default"] = "tenant" if use.own else "default"
    return s.QuotaOut(limit=use.limit, source=source, used=use.used, over=use.over)


def tenant_detail(usage: TenantUsage) -> s.TenantDetail:
    quotas = {use.kind.value: quota(use) for use in usage.quotas}
    return s.TenantDetail(**dict(encode(s.TenantOut, usage.tenant)), quotas=quotas)


def host_status(status: HostStatus, now: dt.datetime, silence: dt.timedelta) -> s.HostStatusOut:
    last = status.last_report_at
    return s.HostStatusOut(
        host=status.host.name,
        desired_revision=status.desired_revision,
        applied_revision=status.applied_revision,
        lagging=status.lagging,
        silent=last is None or now - last > silence,
        last_report_at=last,
    )


# --- the agent's two documents ----------------------------------------------------------------


def resolution(r: s.ResolutionOut) -> Resolution:
    return decode(Resolution, r, "resolution from the manager")


def snapshot(snap: s.SnapshotOut) -> HostSnapshot:
    return decode(HostSnapshot, snap, "snapshot from the manager")
