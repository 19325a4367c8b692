"""How the differential harness turns a cell's outputs into something comparable.

What is normalised, and why (everything else is compared exactly):

* **sci_ext's own lines** (``[sci_ext] ...`` on stdout, ``sci_ext warning: ...`` on stderr)
  are taken out of the streams and kept apart: they are the engine talking (hit notices,
  explanations of misses), not the cell's output.  :func:`engine_lines` returns them.
* **Volatile text**: memory addresses (``0x7f...``) become ``0x?``; durations
  (``1.2 ms``, ``Wall time: 3 s``) become ``<dur>``; ISO date-times become ``<datetime>`` and Unix times in seconds
  (ten digits from 1600000000 to 1999999999, as API objects print ``created=``) ``<epoch>``;
  the run's working and cache directories become ``<cwd>`` and ``<cache>``; per-process
  counters in HTML reprs (scikit-learn's ``sk-container-id-3``) lose their number; the file
  ipykernel compiles a cell into (``/tmp/ipykernel_812/3051.py:4`` in warnings) becomes
  ``<cell>`` (its pid changes per kernel, and the ``%%cached`` line the harness adds shifts the
  line number by one); a line rewritten
  with ``\\r`` (progress bars) keeps its last state.
* **Streams**: consecutive stdout (and stderr) chunks are joined (how the kernel splits a
  stream into messages is not output); the order of rich outputs (display data, the
  result, the error) relative to each other and to the stream text before them is kept,
  since a user sees it (``df.plot()`` shows ``<Axes>`` then the figure).
* **Errors**: the exception name and (normalised) message; not the traceback, whose frames
  legitimately include the magic's own.
* **Images** (``image/*``): a content hash when the two plain runs drew identical bytes,
  else only their presence (``images="presence"``).  Widget views: presence only (their
  model ids are random).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

ENGINE_PREFIXES = ("[sci_ext]", "sci_ext warning", "sci_ext:")

_HEX = re.compile(r"0x[0-9a-fA-F]{4,}")
_DUR = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:e[-+]?\d+)?\s?(?:ns|µs|μs|us|ms|s|sec|secs|seconds|min|mins)\b")
# Per-process counters in HTML reprs (scikit-learn's estimator diagram): a replayed display
# does not advance the counter, so the next live repr gets a lower number.
_COUNTER_IDS = re.compile(r"\b(sk-(?:container|estimator|toggleable)[-_a-z]*-id-|sk-estimator-id-)\d+")
# The file ipykernel compiles a cell into (``/tmp/ipykernel_<pid>/<hash>.py:<line>``, in warnings):
# the pid changes per kernel, and the harness's extra ``%%cached`` line shifts the line by one.
_CELL_FILE = re.compile(r"\S*ipykernel_\d+[/\\]\d+\.py:\d+")
# Unix times in seconds (2020-09 .. 2033-05): API objects print them (``created=1796664640``).
_EPOCH = re.compile(r"\b1[6-9]\d{8}\b")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
_PRESENCE_ONLY = ("application/vnd.jupyter.widget-view+json",)


def split_engine_lines(text: str) -> tuple[str, list[str]]:
    """``(text without sci_ext's lines, those lines)``."""
    kept: list[str] = []
    engine: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith(ENGINE_PREFIXES):
            engine.append(line.strip())
        else:
            kept.append(line)
    return "".join(kept), engine


def clean_text(text: str, paths: dict[str, str] | None = None, times: bool = True) -> str:
    """``text`` with volatile parts replaced (see the module docstring).

    ``times=False`` keeps durations and dates: what tells a cell that prints timings (``%timeit``)
    or the time of day from one whose output is the same in every run.
    """
    for path, label in sorted((paths or {}).items(), key=lambda kv: -len(kv[0])):
        if path:
            text = text.replace(path, label)
    # Progress bars: keep what a terminal would show after each carriage return.
    text = "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))
    text = _HEX.sub("0x?", text)
    text = _CELL_FILE.sub("<cell>", text)
    text = _COUNTER_IDS.sub(r"\g<1>N", text)
    if not times:
        return text
    text = _DATETIME.sub("<datetime>", text)
    text = _EPOCH.sub("<epoch>", text)
    return _DUR.sub("<dur>", text)


def engine_lines(outputs: Iterable[dict[str, Any]]) -> list[str]:
    """sci_ext's own lines in a cell's stream outputs."""
    found: list[str] = []
    for out in outputs:
        if out.get("output_type") == "stream":
            found += split_engine_lines(out.get("text", ""))[1]
    return found


def _image_token(mime: str, value: Any, images: str) -> str:
    if images == "presence" or mime in _PRESENCE_ONLY:
        return f"<{mime}>"
    data = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return f"<{mime} {hashlib.sha1(data.encode()).hexdigest()[:12]}>"


def _bundle(
    data: dict[str, Any], paths: dict[str, str] | None, images: str, times: bool = True
) -> tuple[tuple[str, str], ...]:
    items = []
    for mime, value in sorted(data.items()):
        if mime.startswith("image/") or mime in _PRESENCE_ONLY:
            items.append((mime, _image_token(mime, value, images)))
        elif isinstance(value, str):
            items.append((mime, clean_text(value, paths, times)))
        else:
            items.append((mime, clean_text(json.dumps(value, sort_keys=True), paths, times)))
    return tuple(items)


def normalise(
    outputs: Iterable[dict[str, Any]], paths: dict[str, str] | None = None, images: str = "hash", times: bool = True
) -> tuple[tuple[Any, ...], ...]:
    """The comparable form of a cell's outputs (nbformat-shaped dicts, in order); ``times=False``
    keeps durations and dates (see :func:`clean_text`)."""
    result: list[tuple[Any, ...]] = []
    streams: dict[str, str] = {}

    def flush() -> None:
        for name in ("stdout", "stderr"):
            text = streams.pop(name, "")
            if text.strip():
                result.append(("stream", name, clean_text(text, paths, times)))

    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            text, _ = split_engine_lines(out.get("text", ""))
            name = out.get("name", "stdout")
            streams[name] = streams.get(name, "") + text
            continue
        flush()
        if kind in ("display_data", "execute_result"):
            result.append((kind, _bundle(out.get("data", {}), paths, images, times)))
        elif kind == "error":
            result.append(("error", out.get("ename", ""), clean_text(out.get("evalue", ""), paths, times)))
    flush()
    return tuple(result)


def error_of(outputs: Iterable[dict[str, Any]]) -> tuple[str, str] | None:
    """``(ename, evalue)`` of the cell's error, if it raised."""
    for out in outputs:
        if out.get("output_type") == "error":
            return out.get("ename", ""), out.get("evalue", "")
    return None
