"""Finished SDK streams in cache entries: stored as what they still are, never as a connection.

``response = client.chat.completions.create(..., stream=True)`` followed by ``for chunk in
response: print(...)`` leaves ``response`` an ``openai.Stream`` that the cell read to its end:
it holds a closed HTTP response and a finished generator, and pickling it fails (a lock, a
socket).  All it still does is finish at once when iterated again and report the HTTP status
and headers it got.  :func:`reduce_stream` (a reducer hook of :mod:`.serialize`) stores exactly
that (the status, the headers except any that may carry a credential, the request's method and
URL, the chunk type and the client, itself stored as its settings by :mod:`.clients`), and
:func:`finished_stream` rebuilds it on a hit.  A stream the cell did not read to its end still
has data on the connection: it is not reduced, so the entry is not stored and the cell says so.

Nothing here imports an SDK: a value is recognised by its class's module and name.
"""

from __future__ import annotations

import inspect
from typing import Any

from .clients import credential_header
from .serialize import of_class

__all__ = ["MODULES", "finished_stream", "reduce_stream"]

#: The modules whose classes :func:`reduce_stream` looks at.
MODULES = ("openai",)


def reduce_stream(obj: Any) -> Any:
    """``(finished_stream, args)`` for an ``openai.Stream`` read to its end, else ``NotImplemented``."""
    if not of_class(obj, MODULES[0], "Stream"):
        return NotImplemented
    kind = type(obj)
    iterator = getattr(obj, "_iterator", None)
    response = getattr(obj, "response", None)
    if not inspect.isgenerator(iterator) or inspect.getgeneratorstate(iterator) != inspect.GEN_CLOSED:
        return NotImplemented  # not read to its end: the rest is still on the connection
    if response is None or not getattr(response, "is_closed", False):
        return NotImplemented
    try:
        headers = [(k, v) for k, v in response.headers.multi_items() if not credential_header(k)]
        request = response.request
        method, url = str(request.method), str(request.url)
        if any(credential_header(str(name)) for name, _ in request.url.params.multi_items()):
            return NotImplemented  # a key in the query string (never stored)
    except Exception:
        return NotImplemented
    state = {"cast_to": obj._cast_to, "client": obj._client, "status": int(response.status_code), "headers": headers}
    state.update(method=method, url=url)
    return finished_stream, (kind, state)


def _finished() -> Any:
    return
    yield  # a generator function: what a read-to-the-end stream holds


def finished_stream(kind: type, state: dict[str, Any]) -> Any:
    """A ``kind`` stream read to its end (``state``: see :func:`reduce_stream`): iterating it yields
    nothing; its response is closed."""
    import httpx

    request = httpx.Request(state["method"], state["url"])
    response = httpx.Response(state["status"], headers=state["headers"], request=request, content=b"")
    response.read()
    response.close()
    stream: Any = object.__new__(kind)
    done = _finished()
    done.close()
    client = state["client"]
    stream.__dict__.update(response=response, _cast_to=state["cast_to"], _client=client, _options=None)
    stream.__dict__.update(_iterator=done, _decoder=client._make_sse_decoder())
    return stream
