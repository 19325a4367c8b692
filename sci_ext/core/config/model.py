"""What a configuration *is*: merged values, their sources, and change events.

>>> from sci_ext.core.config import ConfigManager
>>> cfg = ConfigManager(load=False).config
>>> cfg.rag.chunk_size, str(cfg.source("rag.chunk_size"))
(1000, 'default')
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .schema import FieldSpec, type_name

__all__ = ["Config", "ConfigEvent", "Source", "Subscriber", "suggest"]


@dataclass(frozen=True)
class Source:
    """Where a value came from: a layer and, for files and variables, which one."""

    layer: str
    location: str | None = None

    def __str__(self) -> str:
        return f"{self.layer} ({self.location})" if self.location else self.layer


class Config:
    """A merged, validated configuration: sections as attributes, values with sources.

    Built by :class:`ConfigManager`; see the module docstring for an example.
    """

    def __init__(
        self,
        sections: dict[str, Any],
        values: dict[str, Any],
        sources: dict[str, Source],
        specs: dict[str, FieldSpec],
    ) -> None:
        self._sections = sections
        self._values = values
        self._sources = sources
        self._specs = specs

    def __getattr__(self, name: str) -> Any:
        sections = self.__dict__.get("_sections", {})
        if name in sections:
            return sections[name]
        raise AttributeError(f"no config section {name!r}{suggest(name, sections)}")

    def __getitem__(self, dotted: str) -> Any:
        if dotted in self._sections:
            return self._sections[dotted]
        if dotted not in self._values:
            raise KeyError(f"no config key {dotted!r}{suggest(dotted, self._values)}")
        return self._values[dotted]

    def __contains__(self, dotted: object) -> bool:
        return dotted in self._values or dotted in self._sections

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self._values == other._values

    __hash__ = None  # type: ignore[assignment]

    def section(self, name: str) -> Any:
        """The dataclass instance of section ``name``."""
        return getattr(self, name)

    def source(self, dotted: str) -> Source:
        """Where the value of ``dotted`` came from."""
        self[dotted]
        return self._sources[dotted]

    def shown(self, dotted: str) -> Any:
        """The value of ``dotted`` as tables and messages may show it (it ends up in notebooks).

        Settings marked secret show as ``[hidden]``; a URL's password as ``***``.
        """
        value = self[dotted]
        spec = self._specs.get(dotted)
        if spec is not None and spec.secret and value:
            return "[hidden]"
        if isinstance(value, str) and "://" in value and "@" in value:
            from urllib.parse import urlsplit

            try:
                parts = urlsplit(value)
                password = parts.password
            except ValueError:  # not a URL after all
                return value
            if password:
                return value.replace(f":{password}@", ":***@", 1)
        return value

    def as_dict(self) -> dict[str, Any]:
        """Flat ``{"section.key": value}`` of every setting."""
        return dict(self._values)

    def rows(self, prefix: str | None = None) -> list[tuple[str, Any, str, Source]]:
        """``(key, value, type, source)`` for every setting, or those under ``prefix``."""
        out = []
        for dotted, value in self._values.items():
            if prefix and not (dotted == prefix or dotted.startswith(prefix + ".")):
                continue
            spec = self._specs.get(dotted)
            kind = type_name(spec.type) if spec is not None else type(value).__name__
            out.append((dotted, self.shown(dotted), kind, self._sources[dotted]))
        return out

    def __repr__(self) -> str:
        return f"<Config {len(self._values)} settings in {len(self._sections)} sections>"


@dataclass(frozen=True)
class ConfigEvent:
    """Sent to subscribers: a new config was applied, or a reload was rejected."""

    kind: str  # "changed" | "rejected"
    config: Config
    changed: tuple[str, ...] = ()
    error: str | None = None
    origin: str = "runtime"  # "runtime" (set/reset/save), "reload" (asked for) or "watch" (file changed)


Subscriber = Callable[[ConfigEvent], None]


def suggest(word: str, candidates: Any) -> str:
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""
