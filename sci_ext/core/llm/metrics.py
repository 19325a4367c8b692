"""Prometheus metrics of LLM calls, fed by the :mod:`.events` (docs/llm.md).

* ``sci_llm_requests_total{provider,model,status}``
* ``sci_llm_tokens_total{provider,model,kind}``
* ``sci_llm_cost_usd_total{provider,model}``
* ``sci_llm_cost_saved_usd_total``
* ``sci_llm_request_duration_seconds{provider,model}`` (histogram)
* ``sci_llm_attempts_total{provider,model,outcome}``: HTTP attempts, the SDK's retries included
  (``outcome``: ok, rate_limited, server_error, other)

Created on the first event (prometheus_client is imported then, not before), in
``prometheus_client``'s default registry; counters and histograms only, so they
work unchanged in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set before the
kernel started).  Model labels are bounded: the models in ``llm.model_labels`` and
the first ``llm.max_model_labels`` other models this process sees keep their name,
any further model is counted as ``other``.
"""

from __future__ import annotations

import threading
from typing import Any

from .events import TOKEN_KINDS, LLMCall, LLMSaved, Subscription, on_llm_call, on_llm_saved
from .settings import current

__all__ = ["OTHER", "install", "metrics", "model_label", "uninstall"]

OTHER = "other"
_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

_lock = threading.Lock()
_metrics: dict[str, Any] = {}
_seen: set[str] = set()
_children: dict[tuple[str, str], dict[str, Any]] = {}  # (provider, model label) -> bound metric children


def metrics(registry: Any = None) -> dict[str, Any]:
    """The metric objects, created on first use (in ``registry``, default prometheus' own)."""
    if _metrics:
        return _metrics
    with _lock:
        if _metrics:
            return _metrics
        from prometheus_client import REGISTRY, Counter, Histogram

        reg = REGISTRY if registry is None else registry
        made = {
            "requests": Counter(
                "sci_llm_requests", "LLM API requests by provider, model and status.",
                ["provider", "model", "status"], registry=reg,
            ),
            "tokens": Counter(
                "sci_llm_tokens", "LLM tokens by provider, model and kind (input includes cached_input and"
                " cache_write; output includes reasoning).", ["provider", "model", "kind"], registry=reg,
            ),
            "cost": Counter(
                "sci_llm_cost_usd", "LLM cost in US dollars from the price table (calls of unknown cost excluded).",
                ["provider", "model"], registry=reg,
            ),
            "saved": Counter(
                "sci_llm_cost_saved_usd", "LLM cost in US dollars that cache hits saved.", registry=reg,
            ),
            "attempts": Counter(
                "sci_llm_attempts", "LLM HTTP attempts (the SDK's own retries included) by outcome.",
                ["provider", "model", "outcome"], registry=reg,
            ),
            "duration": Histogram(
                "sci_llm_request_duration_seconds", "LLM request duration (to the last event for streams).",
                ["provider", "model"], buckets=_BUCKETS, registry=reg,
            ),
        }  # fmt: skip
        _metrics.update(made)
    return _metrics


def model_label(model: str) -> str:
    """``model``, or ``other`` once the bounded set of labels is full."""
    if model in _seen:
        return model
    settings = current()
    if model in settings.model_labels:
        return model
    with _lock:
        if model in _seen:
            return model
        others = len(_seen - set(settings.model_labels))
        if others < settings.max_model_labels:
            _seen.add(model)
            return model
    return OTHER


def _on_call(call: LLMCall) -> None:
    if not current().metrics_enabled:
        return
    model = model_label(call.model)
    bound = _children.get((call.provider, model))
    if bound is None:
        bound = _children[(call.provider, model)] = _bind(call.provider, model)
    status = bound["status"].get(call.status)
    if status is None:
        status = bound["status"][call.status] = metrics()["requests"].labels(call.provider, model, call.status)
    status.inc()
    if call.attempts:
        _count_attempts(bound, call)
    if call.status == "blocked":
        return
    tokens = bound["tokens"]
    for kind in TOKEN_KINDS:
        value = getattr(call, kind)
        if value:
            tokens[kind].inc(value)
    if call.cost_usd:
        bound["cost"].inc(call.cost_usd)
    bound["duration"].observe(call.duration)


def _count_attempts(bound: dict[str, Any], call: LLMCall) -> None:
    ok = 1 if call.status == "ok" else 0
    other = max(call.attempts - ok - call.rate_limited - call.server_errors, 0)
    for outcome, n in (("ok", ok), ("rate_limited", call.rate_limited), ("server_error", call.server_errors),
                       ("other", other)):  # fmt: skip
        if n:
            bound["attempts"][outcome].inc(n)


def _bind(provider: str, model: str) -> dict[str, Any]:
    m = metrics()
    return {
        "attempts": {
            o: m["attempts"].labels(provider, model, o) for o in ("ok", "rate_limited", "server_error", "other")
        },
        "status": {},
        "tokens": {kind: m["tokens"].labels(provider, model, kind) for kind in TOKEN_KINDS},
        "cost": m["cost"].labels(provider, model),
        "duration": m["duration"].labels(provider, model),
    }


def _on_saved(saved: LLMSaved) -> None:
    if current().metrics_enabled and saved.cost_usd > 0:
        metrics()["saved"].inc(saved.cost_usd)


_SUBSCRIPTION = Subscription((on_llm_call, _on_call), (on_llm_saved, _on_saved))
#: Feed the metrics from the events (idempotent).
install = _SUBSCRIPTION.install
#: Stop feeding the metrics (they keep their values).
uninstall = _SUBSCRIPTION.uninstall
