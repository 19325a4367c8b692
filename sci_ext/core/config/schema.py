"""Typed fields of config sections: flattening, coercion and range checks.

Sections are dataclasses, possibly nested (``bfts.agent.code.model``).  The
manager works on *flat* dotted keys, so that layers merge key by key and every
leaf value keeps its own source; this module converts between the two forms.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any, Union

__all__ = ["FieldSpec", "build_section", "coerce", "flatten_instance", "leaf_fields", "type_name"]


@dataclass(frozen=True)
class FieldSpec:
    """One leaf setting of a section: its dotted name, type and constraints."""

    name: str
    type: Any
    default: Any
    doc: str
    min: float | None
    max: float | None
    choices: tuple[Any, ...] | None
    secret: bool


def _default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def leaf_fields(cls: type, prefix: str = "") -> dict[str, FieldSpec]:
    """Every leaf field of dataclass ``cls`` by dotted name (nested dataclasses recurse).

    Defaults from ``default_factory`` are evaluated now, so environment-dependent
    defaults (XDG directories) reflect the current environment.
    """
    out: dict[str, FieldSpec] = {}
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        dotted = f"{prefix}{f.name}"
        if f.name == "extra" and getattr(cls, "__sci_allow_extra__", False):
            continue
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            out.update(leaf_fields(tp, dotted + "."))
            continue
        meta = f.metadata
        out[dotted] = FieldSpec(
            name=dotted,
            type=tp,
            default=_default_of(f),
            doc=meta.get("doc", ""),
            min=meta.get("min"),
            max=meta.get("max"),
            choices=meta.get("choices"),
            secret=bool(meta.get("secret", False)),
        )
    return out


def _is_optional(tp: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return True, args[0]
    return False, tp


def type_name(tp: Any) -> str:
    """A short human name of a field type (``int``, ``float or none``)."""
    optional, inner = _is_optional(tp)
    base = {bool: "boolean", int: "integer", float: "number", str: "string"}.get(
        inner, getattr(inner, "__name__", str(inner))
    )
    if typing.get_origin(inner) is list:
        base = "list"
    return f"{base} or none" if optional else base


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _from_string(inner: Any, text: str) -> Any:
    s = text.strip()
    if inner is bool:
        if s.lower() in _TRUE:
            return True
        if s.lower() in _FALSE:
            return False
        raise ValueError(f"expected a boolean (true/false), got {text!r}")
    if inner is int:
        try:
            return int(s.replace("_", ""), 0) if s.lower().startswith("0x") else int(s.replace("_", ""))
        except ValueError:
            raise ValueError(f"expected an integer, got {text!r}") from None
    if inner is float:
        try:
            return float(s.replace("_", ""))
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
    if typing.get_origin(inner) is list:
        return [part.strip() for part in s.split(",") if part.strip()]
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return s[1:-1]
    return text


def coerce(spec: FieldSpec, value: Any) -> Any:
    """Return ``value`` converted to ``spec``'s type and checked, or raise ``ValueError``.

    Strings are parsed (they come from the environment or a command line); other
    values must already have the right type (an ``int`` is accepted for a float).
    """
    optional, inner = _is_optional(spec.type)
    if optional and (value is None or (isinstance(value, str) and value.strip().lower() in {"none", "null", ""})):
        return None
    if isinstance(value, str) and inner is not str:
        value = _from_string(inner, value)
    elif isinstance(value, str) and inner is str:
        value = _from_string(str, value)
    if inner is bool:
        if not isinstance(value, bool):
            raise ValueError(f"expected a boolean, got {value!r}")
    elif inner is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {value!r}")
    elif inner is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {value!r}")
        value = float(value)
    elif inner is str:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
    elif typing.get_origin(inner) is list and not isinstance(value, list):
        raise ValueError(f"expected a list, got {value!r}")
    if spec.choices is not None and value not in spec.choices:
        allowed = ", ".join(repr(c) for c in spec.choices)
        raise ValueError(f"must be one of {allowed}, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if spec.min is not None and value < spec.min:
            raise ValueError(f"must be >= {_num(spec.min)}, got {value!r}")
        if spec.max is not None and value > spec.max:
            raise ValueError(f"must be <= {_num(spec.max)}, got {value!r}")
    return value


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def build_section(cls: type, values: dict[str, Any], extra: dict[str, Any] | None = None) -> Any:
    """Build a (nested) dataclass instance from already coerced flat ``values``."""
    return _build(cls, values, "", extra or {})


def _build(cls: type, values: dict[str, Any], prefix: str, extra: dict[str, Any]) -> Any:
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        dotted = f"{prefix}{f.name}"
        if f.name == "extra" and getattr(cls, "__sci_allow_extra__", False):
            kwargs["extra"] = dict(extra)
        elif dataclasses.is_dataclass(tp) and isinstance(tp, type):
            default = _default_of(f)
            sub = {k: v for k, v in values.items() if k.startswith(dotted + ".")}
            merged = flatten_instance(default, dotted + ".")
            merged.update(sub)
            kwargs[f.name] = _build(tp, merged, dotted + ".", {})
        elif dotted in values:
            kwargs[f.name] = values[dotted]
    return cls(**kwargs)


def flatten_instance(obj: Any, prefix: str = "") -> dict[str, Any]:
    """The leaf values of a section instance by dotted name (``extra`` included)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.name == "extra" and getattr(type(obj), "__sci_allow_extra__", False):
            out.update({f"{prefix}{k}": v for k, v in value.items()})
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            out.update(flatten_instance(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = value
    return out
