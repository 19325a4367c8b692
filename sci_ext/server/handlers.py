"""``/sci/health``, ``/sci/metrics`` and ``/sci/api/status``.

Every handler does its blocking work in the extension's worker threads (or reads
the latest background sample): the event loop only routes and writes.
Authentication is explicit (:mod:`sci_ext.server.auth`): the methods are marked
``allow_unauthenticated`` for jupyter_server, which would otherwise answer an
API-key request with its own 403 before we can validate the key.
"""

from __future__ import annotations

import json
import time
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin

from . import auth

__all__ = ["HealthHandler", "MetricsHandler", "StatusHandler"]


class _SciHandler(ExtensionHandlerMixin, APIHandler):
    """Shared auth and JSON helpers."""

    #: Whether ``Authorization: Bearer <API key>`` is accepted here.
    accepts_api_key = False
    auth_resource = "sci"
    # Monitoring is not user activity: a scraper must not keep an idle server from being culled.
    _track_activity = False

    @property
    def sci(self) -> Any:
        """The :class:`~sci_ext.server.app.SciExt` instance."""
        return self.extensionapp

    def check_xsrf_cookie(self) -> None:
        """GET only: nothing to protect, and scrapers send no cookie."""
        return

    async def _allowed(self) -> bool:
        """True when the request may read; else the error response is already written."""
        if self.current_user:
            from jupyter_server.utils import ensure_async

            try:
                if await ensure_async(
                    self.authorizer.is_authorized(self, self.current_user, "read", self.auth_resource)
                ):
                    return True
            except Exception as exc:
                self.log.warning("sci_ext: authorizer failed: %s", exc)
            self._deny(auth.AuthDecision(403, "not authorized to read sci"))
            return False
        client = auth.client_id(self.request.remote_ip)
        header = self.request.headers.get("Authorization")
        if not self.accepts_api_key:
            # Only Jupyter auth counts here; a Bearer header is recorded as a failure all the same.
            decision = await self.sci.worker.run(auth.refuse, header, client)
        else:
            decision = await self.sci.worker.run(auth.authenticate_bearer, header, client, self.sci.api_key_scope)
        if decision.ok:
            return True
        self._deny(decision)
        return False

    def _deny(self, decision: auth.AuthDecision) -> None:
        self.set_status(decision.status)
        if decision.status == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="sci_ext"')
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"message": decision.reason}))

    def _json(self, status: int, body: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(body, default=str))


class HealthHandler(_SciHandler):
    """``GET /sci/health``: ``{"status", "checks", "version"}``; 503 when failing."""

    @allow_unauthenticated
    async def get(self) -> None:
        """Answer from the latest background health sample (refreshed if stale)."""
        if not self.sci.health_allow_unauthenticated and not await self._allowed():
            return
        report = await self.sci.health.get()
        self._json(503 if report["status"] == "failing" else 200, report)


class MetricsHandler(_SciHandler):
    """``GET /sci/metrics``: Prometheus text of the server and every kernel."""

    accepts_api_key = True

    @allow_unauthenticated
    async def get(self) -> None:
        """Generate the exposition in a worker thread (concurrent scrapes share one generation)."""
        if not await self._allowed():
            return
        body, content_type = await self.sci.exposition.get(0.0)
        self.set_header("Cache-Control", "no-store")
        self.finish(body, set_content_type=content_type)


class StatusHandler(_SciHandler):
    """``GET /sci/api/status``: the JSON documented in ``docs/status-api.md``."""

    @allow_unauthenticated
    async def get(self) -> None:
        """Library status + the server's kernels and resources."""
        if not await self._allowed():
            return
        status = await self.sci.status.get()
        body = dict(status)
        body["kernels"] = self.sci.kernel_models()
        body["time"] = time.time()
        self._json(200, body)
