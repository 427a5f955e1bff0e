"""The metrics and how one ``CallEvent`` updates them.

Label children are cached per label combination, so a call costs a dict lookup and a few
increments. Labels come from configuration or from AWS (deployment, model name, AWS error type),
never from free client input: a raw model string that failed before reaching AWS is labelled
``model_name=""`` so a client cannot mint series.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from outcrop import CallEvent

from .settings import PrometheusSettings

if TYPE_CHECKING:
    from outcrop import GatewayAPI

#: The 429 error codes that mean the gateway itself refused the call, and their reason label.
REFUSALS = {"budget_exceeded": "budget", "rate_limit_exceeded": "rate_limit"}
#: Longest label value taken from an error (a longer one is cut).
MAX_LABEL = 64


def error_type(event: CallEvent) -> str:
    """The AWS error type of a failed call (``ThrottlingException``), or ``""``."""
    if event.error_type:
        return event.error_type[:MAX_LABEL]
    head = (event.error or "").partition(":")[0]
    return head[:MAX_LABEL] if head.isidentifier() else ""


def _aws_took(event: CallEvent) -> bool:
    """AWS knew the model and failed the call for another reason (throttled, its own error)."""
    return event.status == 429 or event.status >= 500


class _Children:
    """The label children one label combination updates."""

    __slots__ = (
        "cache_read",
        "cache_write",
        "input",
        "latency",
        "output",
        "overhead",
        "requests",
        "spend",
        "ttft",
        "upstream",
    )

    def __init__(self, m: Metrics, base: tuple[str, ...], status: tuple[str, ...]) -> None:
        model, deployment, surface, *who = base
        self.requests = m.requests.labels(model, deployment, surface, *status, *who)
        self.latency = m.latency.labels(model, deployment, surface)
        # looked up when first observed: a child exists (and is exported) once it has a value
        self.upstream: Any = None
        self.overhead: Any = None
        self.ttft: Any = None
        self.spend = m.spend.labels(*base)
        self.input = m.tokens.labels(*base[:3], "input", *who)
        self.output = m.tokens.labels(*base[:3], "output", *who)
        self.cache_read = m.tokens.labels(*base[:3], "cache_read", *who)
        self.cache_write = m.tokens.labels(*base[:3], "cache_write", *who)


class Metrics:
    """Every metric of one gateway (``registry`` is ``None`` in multiprocess mode: the values
    live in per-worker files that each scrape adds up)."""

    def __init__(
        self, gateway: GatewayAPI, settings: PrometheusSettings, multiprocess: bool
    ) -> None:
        from prometheus_client import (
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
            disable_created_metrics,
        )

        disable_created_metrics()  # ``*_created`` series would double every scrape for nothing
        self.multiprocess = multiprocess
        registry = None if multiprocess else CollectorRegistry()
        self.registry = registry
        base = ["model_name", "deployment", "surface"]
        who = ["key_alias"] * settings.key_labels + ["team"] * settings.team_labels
        self._key_labels, self._team_labels = settings.key_labels, settings.team_labels
        self.requests = Counter(
            "outcrop_requests",
            "Calls answered, by status class and AWS error type",
            [*base, "status_class", "error_type", *who],
            registry=registry,
        )
        self.latency = Histogram(
            "outcrop_request_duration_seconds",
            "Seconds from a call's arrival to its last byte (or error)",
            base,
            buckets=settings.latency_buckets,
            registry=registry,
        )
        self.upstream = Histogram(
            "outcrop_upstream_duration_seconds",
            "Seconds a call spent waiting on AWS (headers and body, every attempt)",
            base,
            buckets=settings.latency_buckets,
            registry=registry,
        )
        self.overhead = Histogram(
            "outcrop_overhead_duration_seconds",
            "Seconds the gateway added to a call that reached AWS (total minus upstream)",
            ["surface"],
            buckets=settings.overhead_buckets,
            registry=registry,
        )
        self.ttft = Histogram(
            "outcrop_time_to_first_token_seconds",
            "Seconds from a streamed call's arrival to the first bytes of its answer",
            base,
            buckets=settings.ttft_buckets,
            registry=registry,
        )
        self.tokens = Counter(
            "outcrop_tokens",
            "Tokens by type: input (cache reads and writes included), output, cache_read, "
            "cache_write",
            [*base, "type", *who],
            registry=registry,
        )
        self.spend = Counter(
            "outcrop_spend_usd", "Spend in US dollars", [*base, *who], registry=registry
        )
        self.retries = Counter(
            "outcrop_retries",
            "Upstream attempts after the first within a model_name (same or another deployment)",
            base,
            registry=registry,
        )
        self.fallbacks = Counter(
            "outcrop_fallbacks",
            "Upstream attempts moved to a fallback model_name",
            base,
            registry=registry,
        )
        self.refusals = Counter(
            "outcrop_refusals",
            "Calls the gateway refused with 429 before any upstream request, by reason",
            ["surface", "reason", *who],
            registry=registry,
        )
        self.in_flight = Gauge(
            "outcrop_in_flight_requests",
            "Calls being served right now",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self._gauge_class: Callable[..., Any] = Gauge
        self._gauges: dict[str, Any] = {}
        self._names = {d.id: d.model_name for d in gateway.deployments()}
        self._children: dict[tuple[str, ...], _Children] = {}
        self._gateway = gateway

    # -- per call ---------------------------------------------------------------------------
    def observe(self, e: CallEvent) -> None:
        deployment = e.deployment or ""
        if deployment:
            model = self._names.get(deployment, e.model)
        else:  # a raw model string: a label only once AWS has taken it (it answered, or was
            # busy); one AWS refused (400/403/404) is client input and would be a series each
            taken = e.status < 400 or (e.upstream_latency_s > 0 and _aws_took(e))
            model = e.model if taken else ""
        who = self._who(e)
        failed = e.status >= 400
        status = (f"{e.status // 100}xx", error_type(e) if failed else "")
        key = (model, deployment, e.surface, *status, *who)
        c = self._children.get(key)
        if c is None:
            c = self._children[key] = _Children(self, (model, deployment, e.surface, *who), status)
        c.requests.inc()
        c.latency.observe(e.latency_s)
        if e.upstream_latency_s > 0:
            if c.upstream is None:
                c.upstream = self.upstream.labels(model, deployment, e.surface)
                c.overhead = self.overhead.labels(e.surface)
            c.upstream.observe(e.upstream_latency_s)
            c.overhead.observe(max(e.latency_s - e.upstream_latency_s, 0.0))
        if e.first_token_s is not None:
            if c.ttft is None:
                c.ttft = self.ttft.labels(model, deployment, e.surface)
            c.ttft.observe(e.first_token_s)
        usage = e.usage
        if usage is not None:
            if usage.prompt_tokens:
                c.input.inc(usage.prompt_tokens)
            if usage.completion_tokens:
                c.output.inc(usage.completion_tokens)
            details = usage.prompt_tokens_details
            if details is not None:
                if details.cached_tokens:
                    c.cache_read.inc(details.cached_tokens)
                if details.cache_creation_tokens:
                    c.cache_write.inc(details.cache_creation_tokens)
        if e.cost:
            c.spend.inc(e.cost)
        if len(e.attempts) > 1:
            self._attempts(e, model)
        if e.status == 429 and e.error_code in REFUSALS:
            self.refusals.labels(e.surface, REFUSALS[e.error_code], *who).inc()

    def _who(self, e: CallEvent) -> tuple[str, ...]:
        if not (self._key_labels or self._team_labels):
            return ()
        p = e.principal
        out: tuple[str, ...] = ()
        if self._key_labels:
            out += ((p.alias or p.id or p.kind) if p is not None else "",)
        if self._team_labels:
            out += ((p.team_id or "") if p is not None else "",)
        return out

    def _attempts(self, e: CallEvent, model: str) -> None:
        """Each attempt after the first: a retry within its ``model_name`` (the same
        deployment again, or another of the same name), or a fallback to another name."""
        previous = self._names.get(e.attempts[0].deployment or "", model)
        for attempt in e.attempts[1:]:
            deployment = attempt.deployment or ""
            name = self._names.get(deployment, model)
            metric = self.retries if name == previous else self.fallbacks
            metric.labels(name, deployment, e.surface).inc()
            previous = name

    # -- sampled -------------------------------------------------------------------------------
    def sample(self) -> None:
        """Levels read at scrape time (and on a timer in every worker): in-flight calls and
        what plugins report (``outcrop_report_gauges``)."""
        self.in_flight.set(self._gateway.in_flight)
        for name, (description, value) in self._gateway.gauges().items():
            gauge = self._gauges.get(name)
            if gauge is None:
                gauge = self._gauges[name] = self._gauge_class(
                    f"outcrop_{name}",
                    description,
                    multiprocess_mode="livesum",
                    registry=self.registry,
                )
            gauge.set(value)

    def exposition(self) -> bytes:
        """The text format of every metric (all workers' in multiprocess mode)."""
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess

        if self.registry is not None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)

    def close(self) -> None:
        """A worker stops: its live gauges no longer count."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())
