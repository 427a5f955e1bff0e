"""The entry point: ``/metrics`` and the per-call counters, for a gateway whose configuration
turns them on (``litellm_settings.callbacks: ["prometheus"]``, or ``prometheus.enabled``).

A gateway that does not is untouched: no route, no per-call hook, ``prometheus_client`` not
even imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
from collections.abc import Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

import outcrop
from outcrop import CallEvent, Config, ConfigSection, GatewayAPI, OutcropError

from . import settings as _settings
from .settings import CALLBACK, SECTION, PrometheusSettings

#: In multiprocess mode each worker refreshes its sampled levels this often (seconds), so a
#: scrape served by one worker sees the others' in-flight counts at most this stale.
SAMPLE_INTERVAL = 1.0
#: The subdirectory of the workers' shared directory that holds the metric files.
_SUBDIR = "prometheus"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@outcrop.hookimpl
def outcrop_register_callbacks(register: Callable[[str], None]) -> None:
    register(CALLBACK)


@outcrop.hookimpl
def outcrop_register_config_sections(register: Callable[[ConfigSection], None]) -> None:
    register(ConfigSection(SECTION, "outcrop-prometheus: /metrics path, bearer token, labels"))


@outcrop.hookimpl
def outcrop_check_config(config: Config) -> list[str] | None:
    try:
        _settings.parse(config.sections.get(SECTION))
    except msgspec.ValidationError as exc:
        return [f"{SECTION}: {exc}"]
    return None


@outcrop.hookimpl
def outcrop_register_routes(register: Callable[[BaseRoute], None], gateway: GatewayAPI) -> None:
    settings = _settings.parse(gateway.sections.get(SECTION))
    if CALLBACK not in gateway.callbacks and not settings.enabled:
        return
    exporter = Exporter(gateway, settings)
    # The per-call hook belongs to this gateway only (a process may run several gateways).
    gateway.register_plugin(exporter, f"outcrop_prometheus.{id(gateway)}")
    register(Route(settings.path, exporter.endpoint, methods=["GET"]))


def multiprocess_dir() -> str | None:
    """The metric files' directory when several workers serve: the operator's
    ``PROMETHEUS_MULTIPROC_DIR``, else a subdirectory of the workers' shared directory. Must be
    known before ``prometheus_client`` is first imported (it decides its mode then)."""
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured:
        return configured
    shared = os.environ.get("OUTCROP_SHARED_DIR")
    if not shared:
        return None
    path = os.path.join(shared, _SUBDIR)
    os.makedirs(path, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


class Exporter:
    """One gateway's metrics: the per-call hook, the scrape endpoint, the worker's sampler."""

    def __init__(self, gateway: GatewayAPI, settings: PrometheusSettings) -> None:
        self.gateway = gateway
        self.settings = settings
        self.metrics: Any = None  # built at start-up, in the worker that serves
        self._sampler: asyncio.Task[None] | None = None

    @outcrop.hookimpl
    def outcrop_startup(self, gateway: GatewayAPI) -> None:
        from .metrics import Metrics

        multiprocess = multiprocess_dir() is not None
        self.metrics = Metrics(gateway, self.settings, multiprocess)
        if multiprocess:
            self._sampler = asyncio.get_running_loop().create_task(self._sample_forever())

    @outcrop.hookimpl
    def outcrop_shutdown(self, gateway: GatewayAPI) -> Any:
        if self._sampler is not None:
            self._sampler.cancel()
        if self.metrics is not None:
            self.metrics.close()
        return None

    @outcrop.hookimpl
    def outcrop_after_call(self, event: CallEvent) -> None:
        if self.metrics is not None:
            self.metrics.observe(event)

    async def _sample_forever(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                self.metrics.sample()
            await asyncio.sleep(SAMPLE_INTERVAL)

    async def endpoint(self, request: Request) -> Response:
        try:
            self._authorize(request)
        except OutcropError as exc:
            headers = {"www-authenticate": "Bearer"} if exc.status == 401 else {}
            return Response(exc.openai_body(), exc.status, headers, media_type="application/json")
        if self.metrics is None:  # served before start-up finished
            return Response(b"", 503)
        self.metrics.sample()
        return Response(self.metrics.exposition(), media_type=CONTENT_TYPE)

    def _authorize(self, request: Request) -> None:
        """``prometheus.bearer_token`` when set; else, on a gateway that requires credentials,
        an admin one (the master key): metrics name models, deployments and keys."""
        token = self.settings.bearer_token
        if token:
            auth = request.headers.get("authorization", "")
            presented = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
            if not hmac.compare_digest(presented.encode(), token.encode()):
                raise OutcropError(
                    "metrics need `Authorization: Bearer <prometheus.bearer_token>`",
                    401,
                    code="invalid_api_key",
                )
            return
        if self.gateway.requires_auth and not self.gateway.authenticate(request.headers).admin:
            raise OutcropError("metrics are for the master key", 403, code="forbidden")
