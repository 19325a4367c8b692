"""Instrumentation of the openai and anthropic SDKs, without changing a call site.

Both SDKs send every API call through one method, ``request`` of their
``SyncAPIClient`` and ``AsyncAPIClient`` (``<sdk>._base_client``), which returns
the parsed response or a ``Stream``/``AsyncStream``.  :func:`instrument` wraps that
method, once the user has imported the SDK: an SDK already in ``sys.modules`` is
patched at once, one imported later is patched by an import hook as soon as its
package has loaded (sci_ext never imports an SDK itself).  The wrapper:

* lets every request that is not an LLM call (files, models, batches...) through untouched;
* checks the budgets before the request is sent (:class:`~sci_ext.core.errors.BudgetExceeded`);
* times the call and reads the usage the response reports; for a stream it replaces
  the stream's private iterator by one that reads every event as it passes, so the
  stream object the user gets is the SDK's own, and the call is recorded when the
  stream ends (openai reports stream usage only with ``stream_options={"include_usage": True}``);
* returns exactly what the SDK returned and re-raises exactly what it raised: its own
  bookkeeping never raises (a failure there is logged).

The SDK's own retries happen inside ``request``: one call, whatever its retries, is
one record, which counts its HTTP attempts: the call is in :data:`.attempts.CURRENT`
while the SDK works on it, ``_build_request`` (once per attempt) asks
:func:`.attempts.before_attempt` whether a retry bound or a breaker refuses it, the
HTTP client's ``send`` reports each attempt's outcome, and the SDK's retry delay is
cut to the streak's deadline (:mod:`.attempts`).  The provider recorded is the one
that bills the call (:mod:`.providers`: Bedrock is ``aws``, Vertex ``google``, Azure
``azure``).  Prompts and responses are never read beyond their usage fields.
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from .. import context
from ..errors import BudgetExceeded, CircuitOpenError
from . import attempts, budgets
from .attempts import CURRENT, RetryBoundReached
from .events import LLMCall
from .extract import StreamUsage, usage_of_response
from .providers import billing_provider
from .settings import current
from .usage import record

__all__ = ["PROVIDERS", "ensure", "instrument", "instrumented", "uninstrument"]

_log = logging.getLogger("sci_ext.llm")

#: SDK package name -> provider name.
PROVIDERS = {"openai": "openai", "anthropic": "anthropic"}

# URL path suffix -> endpoint, most specific first.
_ENDPOINTS = (
    ("/chat/completions", "chat.completions"),
    ("/responses", "responses"),
    ("/embeddings", "embeddings"),
    ("/completions", "completions"),
    ("/messages", "messages"),
)


class _State:
    active = False  # instrument() was called and uninstrument() was not
    patched: dict[str, list[tuple[type, str, Any]]] = {}
    http: list[tuple[type, str, Any]] = []  # the HTTP clients' send, shared by both SDKs
    lock = threading.RLock()


_state = _State()


def _endpoint(options: Any) -> str | None:
    """The LLM endpoint a request goes to, or None for any other request."""
    url = getattr(options, "url", None)
    if not isinstance(url, str) or getattr(options, "method", "post").lower() != "post":
        return None
    path = url.split("?", 1)[0].rstrip("/")
    for suffix, name in _ENDPOINTS:
        if path.endswith(suffix):
            return name
    return None


def _status(exc: BaseException) -> str:
    """A bounded status label for a failed call."""
    if isinstance(exc, BudgetExceeded):
        return "blocked"
    if isinstance(exc, (RetryBoundReached, CircuitOpenError)):
        return "refused"
    code = getattr(exc, "status_code", None)
    if isinstance(code, int):
        if code == 429:
            return "rate_limited"
        if code >= 500:
            return "server_error"
        if code >= 400:
            return "client_error"
    name = type(exc).__name__
    if "Timeout" in name:
        return "timeout"
    if "Connection" in name:
        return "connection_error"
    if isinstance(exc, (KeyboardInterrupt, GeneratorExit)) or name == "CancelledError":
        return "cancelled"
    return "error"


class _Call:
    """One call in flight: what is known before it is sent, and its attempts so far."""

    __slots__ = (
        "attempts", "breaker_tokens", "endpoint", "model", "outcomes", "provider", "refused", "run", "settings",
        "started", "stream", "t0",
    )  # fmt: skip

    def __init__(self, provider: str, endpoint: str, options: Any, settings: Any) -> None:
        body = getattr(options, "json_data", None)
        model = body.get("model") if isinstance(body, dict) else None
        self.provider = provider
        self.endpoint = endpoint
        self.model = model if isinstance(model, str) else "unknown"  # the model requested
        self.stream = bool(body.get("stream")) if isinstance(body, dict) else False
        self.run = context.current()
        self.settings = settings
        self.attempts = 0
        self.outcomes: dict[str, int] = {}
        self.breaker_tokens: list[tuple[Any, Any]] = []
        self.refused = ""
        self.started = time.time()
        self.t0 = time.perf_counter()

    def finish(self, status: str, model: str | None, tokens: dict[str, int | None] | None, error: str = "") -> None:
        """Record the call (never raises)."""
        try:
            duration = time.perf_counter() - self.t0
            requested = self.model if self.model != "unknown" else ""
            call = LLMCall(
                provider=self.provider,
                model=model if isinstance(model, str) and model else self.model,
                endpoint=self.endpoint,
                status=status,
                started=self.started,
                duration=duration,
                correlation_id=self.run.correlation_id,
                kernel_id=self.run.kernel_id,
                stream=self.stream,
                error=error,
                model_requested=requested,
                attempts=self.attempts,
                rate_limited=self.outcomes.get("rate_limited", 0),
                server_errors=sum(self.outcomes.get(k, 0) for k in ("server_error", "timeout", "connection_error")),
            )
            if tokens:
                for kind, value in tokens.items():
                    if kind in _TOKEN_FIELDS:
                        setattr(call, kind, value if isinstance(value, int) and value >= 0 else None)
            record(call)
        except Exception:
            _log.exception("sci_ext: recording an LLM call failed (the call itself is unaffected)")

    def failed(self, exc: BaseException) -> BaseException | None:
        """Record a failed call; returns the bound error to raise instead, when its last attempt reached one."""
        bound = None
        if not isinstance(exc, (RetryBoundReached, CircuitOpenError, BudgetExceeded)):
            try:
                bound = attempts.failed_now(self, self.settings)
            except Exception:
                _log.exception("sci_ext: checking LLM retry bounds failed (the error is raised as it is)")
        self.finish(_status(bound or exc), None, None, type(bound or exc).__name__)
        return bound


_TOKEN_FIELDS = frozenset(("input", "cached_input", "cache_write", "output", "reasoning"))


def _before(sdk: str, client: Any, options: Any) -> _Call | None:
    """The call's record in flight, or None when this request is not accounted; may raise BudgetExceeded."""
    endpoint = _endpoint(options)
    if endpoint is None:
        return None
    try:
        settings = current()
        if not settings.instrument:
            return None
        call = _Call(billing_provider(client, sdk), endpoint, options, settings)
    except Exception:
        _log.exception("sci_ext: LLM accounting failed before a call (the call goes ahead)")
        return None
    if settings.budget_usd is not None or settings.budgets:
        try:
            budgets.check(settings, f"this {call.provider} call ({call.model})")
        except BudgetExceeded as exc:
            call.finish("blocked", None, None, type(exc).__name__)
            raise
        except Exception:
            _log.exception("sci_ext: checking LLM budgets failed (the call goes ahead)")
    return call


def _after(call: _Call, result: Any, stream_types: tuple[type, ...]) -> None:
    try:
        if isinstance(result, stream_types):
            _observe_stream(call, result)
            return
        model, tokens = usage_of_response(result)
    except Exception as exc:  # a malformed usage block: unknown tokens, one line, the response untouched
        _log.warning("sci_ext: the usage this %s call reported is not readable (%s); its tokens are unknown",
                     call.provider, type(exc).__name__)  # fmt: skip
        model, tokens = None, None
    call.finish("ok", model, tokens)


def _observe_stream(call: _Call, stream: Any) -> None:
    original = stream._iterator  # the SDK's generator (made on first access in anthropic)
    usage = StreamUsage()
    if hasattr(original, "__anext__"):
        stream._iterator = _observe_async(original, call, usage)
    else:
        stream._iterator = _observe_sync(original, call, usage)


def _observe_sync(iterator: Iterator[Any], call: _Call, usage: StreamUsage) -> Iterator[Any]:
    status, error = "ok", ""
    try:
        for item in iterator:
            usage.see(item)
            yield item
    except BaseException as exc:
        status, error = _status(exc), type(exc).__name__
        if isinstance(exc, GeneratorExit):  # the stream was closed early: what was seen is what it used
            status, error = "ok", ""
        raise
    finally:
        call.finish(status, usage.model, usage.tokens if status == "ok" else usage.cut(), error)


async def _observe_async(iterator: AsyncIterator[Any], call: _Call, usage: StreamUsage) -> AsyncIterator[Any]:
    status, error = "ok", ""
    try:
        async for item in iterator:
            usage.see(item)
            yield item
    except BaseException as exc:
        status, error = _status(exc), type(exc).__name__
        if isinstance(exc, GeneratorExit):
            status, error = "ok", ""
        raise
    finally:
        call.finish(status, usage.model, usage.tokens if status == "ok" else usage.cut(), error)


def _wrap_sync(original: Callable[..., Any], sdk: str, stream_types: tuple[type, ...]) -> Callable[..., Any]:
    @functools.wraps(original)
    def request(self: Any, cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
        call = _before(sdk, self, options) if _state.active else None
        if call is None:
            return original(self, cast_to, options, *args, **kwargs)
        token = CURRENT.set(call)
        try:
            result = original(self, cast_to, options, *args, **kwargs)
        except BaseException as exc:
            bound = call.failed(exc)
            if bound is not None:
                raise bound from exc
            raise
        finally:
            CURRENT.reset(token)
        _after(call, result, stream_types)
        return result

    request.__sci_ext_original__ = original  # type: ignore[attr-defined]
    return request


def _wrap_async(original: Callable[..., Any], sdk: str, stream_types: tuple[type, ...]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def request(self: Any, cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
        call = _before(sdk, self, options) if _state.active else None
        if call is None:
            return await original(self, cast_to, options, *args, **kwargs)
        token = CURRENT.set(call)
        try:
            result = await original(self, cast_to, options, *args, **kwargs)
        except BaseException as exc:
            bound = call.failed(exc)
            if bound is not None:
                raise bound from exc
            raise
        finally:
            CURRENT.reset(token)
        _after(call, result, stream_types)
        return result

    request.__sci_ext_original__ = original  # type: ignore[attr-defined]
    return request


def _wrap_build(original: Callable[..., Any]) -> Callable[..., Any]:
    """The SDK builds each attempt's request here, outside its ``try`` around sending: bounds refuse here."""

    @functools.wraps(original)
    def _build_request(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = CURRENT.get()
        if call is not None:
            attempts.before_attempt(call, call.settings)
        return original(self, *args, **kwargs)

    _build_request.__sci_ext_original__ = original  # type: ignore[attr-defined]
    return _build_request


def _wrap_delay(original: Callable[..., Any]) -> Callable[..., Any]:
    """The SDK's delay before its next retry, cut to the streak's deadline."""

    @functools.wraps(original)
    def _calculate_retry_timeout(self: Any, *args: Any, **kwargs: Any) -> Any:
        seconds = original(self, *args, **kwargs)
        call = CURRENT.get()
        if call is None:
            return seconds
        try:
            return attempts.cap_sleep(seconds, call.settings)
        except Exception:
            return seconds

    _calculate_retry_timeout.__sci_ext_original__ = original  # type: ignore[attr-defined]
    return _calculate_retry_timeout


def _wrap_send(original: Callable[..., Any]) -> Callable[..., Any]:
    """The HTTP client's ``send``: every attempt of an accounted call, with its outcome (never refuses)."""

    @functools.wraps(original)
    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        call = CURRENT.get()
        if call is None:
            return original(self, request, *args, **kwargs)
        try:
            response = original(self, request, *args, **kwargs)
        except BaseException as exc:
            _count(call, None, exc)
            raise
        _count(call, getattr(response, "status_code", None), None)
        return response

    send.__sci_ext_original__ = original  # type: ignore[attr-defined]
    return send


def _wrap_send_async(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        call = CURRENT.get()
        if call is None:
            return await original(self, request, *args, **kwargs)
        try:
            response = await original(self, request, *args, **kwargs)
        except BaseException as exc:
            _count(call, None, exc)
            raise
        _count(call, getattr(response, "status_code", None), None)
        return response

    send.__sci_ext_original__ = original  # type: ignore[attr-defined]
    return send


def _count(call: _Call, status: int | None, exc: BaseException | None) -> None:
    try:
        attempts.after_attempt(call, status, exc)
    except Exception:
        _log.exception("sci_ext: counting an LLM attempt failed (the call is unaffected)")


def _set(done: list[tuple[type, str, Any]], cls: type, name: str, wrap: Callable[..., Any]) -> None:
    original = cls.__dict__.get(name)
    if original is None or hasattr(original, "__sci_ext_original__"):
        return
    setattr(cls, name, wrap(original))
    done.append((cls, name, original))


def _patch(package: str) -> bool:
    """Wrap ``request`` of ``package``'s API clients (idempotent); False if its layout is unknown."""
    with _state.lock:
        if package in _state.patched:
            return True
        provider = PROVIDERS[package]
        try:
            base = importlib.import_module(f"{package}._base_client")
            streaming = importlib.import_module(f"{package}._streaming")
            sync_cls, async_cls = base.SyncAPIClient, base.AsyncAPIClient
            streams = (streaming.Stream, streaming.AsyncStream)
        except (ImportError, AttributeError) as exc:
            _log.warning("sci_ext: %s SDK layout not recognised (%s); its calls are not accounted", package, exc)
            return False
        done: list[tuple[type, str, Any]] = []
        _set(done, sync_cls, "request", lambda f: _wrap_sync(f, provider, streams))
        _set(done, async_cls, "request", lambda f: _wrap_async(f, provider, streams))
        for name, wrap in (("_build_request", _wrap_build), ("_calculate_retry_timeout", _wrap_delay)):
            owner = next((c for c in base.BaseClient.__mro__ if name in c.__dict__), None)
            if owner is not None:
                _set(done, owner, name, wrap)
        _state.patched[package] = done
        _patch_http(_state.http)
    from . import prices

    prices.prewarm()  # the table takes about a second to load: not on the first call's path
    return True


def _patch_http(done: list[tuple[type, str, Any]]) -> None:
    """The HTTP clients the SDKs send through (``httpx2``; ``httpx`` too when the user passed one)."""
    for module_name in ("httpx2", "httpx"):
        module = sys.modules.get(module_name)
        if module is None:
            continue
        _set(done, module.Client, "send", _wrap_send)
        _set(done, module.AsyncClient, "send", _wrap_send_async)


def _unpatch(package: str) -> None:
    with _state.lock:
        for cls, name, original in _state.patched.pop(package, []):
            setattr(cls, name, original)


class _PatchingLoader(importlib.abc.Loader):
    """Runs an SDK package's own loader, then patches it."""

    def __init__(self, loader: Any, package: str) -> None:
        self._loader = loader
        self._package = package

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        try:
            if _state.active:
                _patch(self._package)
        except Exception:
            _log.exception("sci_ext: patching %s failed; its calls are not accounted", self._package)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _ImportHook(importlib.abc.MetaPathFinder):
    """Patches an SDK when the user imports it (the other imports pass by with one dict lookup)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in PROVIDERS or not _state.active:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _PatchingLoader(spec.loader, fullname)
                return spec
        return None


_HOOK = _ImportHook()


def ensure() -> list[str]:
    """Patch every SDK the user has imported by now (cheap; the kernel calls it when a cell starts)."""
    if not _state.active:
        return []
    return [pkg for pkg in PROVIDERS if pkg in sys.modules and (pkg in _state.patched or _patch(pkg))]


def instrument() -> list[str]:
    """Account every openai / anthropic SDK call of this process from now on.

    Returns the SDKs patched so far (one imported later is patched when it is
    imported).  Idempotent.  ``llm.instrument = false`` makes the patched SDKs skip
    accounting until it is true again.
    """
    from . import history, metrics, savings

    with _state.lock:
        first = not _state.active
        _state.active = True
        if _HOOK not in sys.meta_path:
            sys.meta_path.insert(0, _HOOK)
    if first:
        savings.install()
        history.install()
        metrics.install()
    return ensure()


def uninstrument() -> None:
    """Undo :func:`instrument`: restore the SDKs' methods and remove the import hook."""
    from . import history, metrics, savings

    with _state.lock:
        _state.active = False
        if _HOOK in sys.meta_path:
            sys.meta_path.remove(_HOOK)
        for package in list(_state.patched):
            _unpatch(package)
        while _state.http:
            cls, name, original = _state.http.pop()
            setattr(cls, name, original)
    savings.uninstall()
    metrics.uninstall()
    history.uninstall()


def instrumented() -> list[str]:
    """The SDK packages patched now."""
    return sorted(_state.patched)
