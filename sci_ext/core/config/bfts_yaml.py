"""AI-Scientist-v2's ``bfts_config.yaml`` read as AI-Scientist-v2 reads it, and stored in TOML losslessly.

AI-Scientist-v2 loads the file with ``OmegaConf.load``: PyYAML's safe loader plus
OmegaConf's rules (``1e-5`` is a float, dates stay strings, a duplicate key is an
error); interpolations such as ``${oc.env:OPENAI_API_KEY}`` are strings until they
are read.  :func:`load_yaml` applies the same rules without importing OmegaConf,
including what ``OmegaConf.save`` writes for a run's merged config: ``pathlib`` paths
as ``!!python/object/apply:pathlib.PosixPath`` (and ``Path``/``WindowsPath``) tags, read
here as the path's string, and ``???`` (a missing value) as the string ``???``.  Any
other ``!!python`` tag is refused, as ``OmegaConf.load`` refuses it.

TOML cannot hold everything YAML can.  Keys sci_ext does not type (``extra``) keep
their value through these markers, which :func:`decode` turns back:

* ``null`` -> ``"sci_ext:null"``
* an integer beyond TOML's 64 bits -> ``"sci_ext:int:<digits>"``
* an empty mapping -> ``"sci_ext:{}"`` (an empty table would vanish when flattened)
* a string that itself starts with ``sci_ext:`` -> ``"sci_ext:str:<string>"``

Keys containing ``.`` (``"gpt-4.5"``) are quoted in dotted names
(``model_costs."gpt-4.5".input``, see :func:`~.files.join_dotted`), so they are never
split into nested tables.  What has no faithful form is refused with one line
naming the key and why (see :class:`Refused`).
"""

from __future__ import annotations

import datetime
import re
from functools import cache
from typing import Any

from .files import join_dotted

__all__ = ["EMPTY_TABLE", "MARK", "MISSING", "NULL", "Refused", "decode", "encode", "leaves", "load_yaml"]

#: OmegaConf's mandatory-missing value: a key that must be set before it is read.
MISSING = "???"
#: The ``pathlib`` tags ``OmegaConf.save`` writes and ``OmegaConf.load`` reads back (as paths).
PATH_TAGS = {
    "tag:yaml.org,2002:python/object/apply:pathlib.Path": "posix",
    "tag:yaml.org,2002:python/object/apply:pathlib.PosixPath": "posix",
    "tag:yaml.org,2002:python/object/apply:pathlib.WindowsPath": "windows",
}

MARK = "sci_ext:"
NULL = "sci_ext:null"
EMPTY_TABLE = "sci_ext:{}"
_INT = "sci_ext:int:"
_STR = "sci_ext:str:"
#: The integers a TOML file can hold (TOML 1.0: signed 64-bit).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# OmegaConf's float resolver (omegaconf._utils.get_yaml_loader): YAML 1.1 needs a
# dot in a float, OmegaConf does not (``1e-5``).
_FLOAT = re.compile(
    r"""^(?:
     [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class Refused(ValueError):
    """A value that cannot be migrated faithfully: ``path`` (dotted) and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@cache
def _loader() -> type:
    import yaml

    class OmegaConfLikeLoader(yaml.SafeLoader):
        """PyYAML's safe loader with OmegaConf's changes."""

        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: set[str] = set()
            for key_node, _ in node.value:
                if key_node.tag != yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG:
                    continue
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {key_node.value}",
                        key_node.start_mark,
                    )
                seen.add(key_node.value)
            return dict(super().construct_mapping(node, deep=deep))

    def construct_path(loader: Any, node: Any) -> str:
        import pathlib

        parts = [str(part) for part in loader.construct_sequence(node)]
        flavour = pathlib.PureWindowsPath if PATH_TAGS[node.tag] == "windows" else pathlib.PurePosixPath
        return str(flavour(*parts)) if parts else "."

    for tag in PATH_TAGS:
        OmegaConfLikeLoader.add_constructor(tag, construct_path)
    OmegaConfLikeLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
    OmegaConfLikeLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in OmegaConfLikeLoader.yaml_implicit_resolvers.items()
    }
    return OmegaConfLikeLoader


def load_yaml(text: str) -> Any:
    """Parse ``text`` as ``OmegaConf.load`` does (raises ``yaml.YAMLError``)."""
    loader = _loader()(text)  # what yaml.load does, with our SafeLoader subclass
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def leaves(data: dict[Any, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Every leaf of a YAML mapping by key path; an empty mapping is a leaf too.

    Raises :class:`Refused` for a key that is not a string (TOML keys are strings).
    """
    out: dict[tuple[str, ...], Any] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            where = join_dotted((*prefix, str(key)))
            raise Refused(
                where,
                f"the YAML key {key!r} is of type {type(key).__name__}, and TOML keys are strings "
                f"(quote it, '{key}', if a string is meant)",
            )
        path = (*prefix, key)
        if isinstance(value, dict) and value:
            out.update(leaves(value, path))
        else:
            out[path] = value
    return out


def encode(value: Any, where: str, *, top: bool = True) -> Any:
    """``value`` (of a key sci_ext does not type) as TOML can hold it; see the module docstring."""
    if value is None:
        return NULL
    if isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if INT64_MIN <= value <= INT64_MAX else f"{_INT}{value}"
    if isinstance(value, str):
        return f"{_STR}{value}" if value.startswith(MARK) else value
    if isinstance(value, dict):
        if top and not value:
            return EMPTY_TABLE
        for key in value:
            if not isinstance(key, str):
                kind = type(key).__name__
                raise Refused(where, f"the YAML key {key!r} inside a list item is of type {kind}, not a string")
        return {key: encode(item, f"{where}.{key}", top=False) for key, item in value.items()}
    if isinstance(value, list):
        return [encode(item, f"{where}[{index}]", top=False) for index, item in enumerate(value)]
    if isinstance(value, datetime.date | datetime.time):
        return value  # an explicit !!timestamp: TOML has dates and times
    raise Refused(where, f"a {type(value).__name__} value has no TOML form")


def decode(value: Any) -> Any:
    """The value :func:`encode` was given."""
    if isinstance(value, str) and value.startswith(MARK):
        if value == NULL:
            return None
        if value == EMPTY_TABLE:
            return {}
        if value.startswith(_INT):
            try:
                return int(value[len(_INT) :])
            except ValueError:
                return value
        if value.startswith(_STR):
            return value[len(_STR) :]
        return value
    if isinstance(value, list):
        return [decode(item) for item in value]
    if isinstance(value, dict):
        return {key: decode(item) for key, item in value.items()}
    return value
