"""One gateway's traces: a span per call, a child span per upstream attempt.

On the request's path the plugin only picks ids and writes ``traceparent`` on the upstream
request (``outcrop_before_upstream``). The spans are written when the call is over
(``outcrop_after_call``), with the times the call measured, straight to OTLP protobuf
(``otlp.py``), and queued for the exporter's thread (``export.py``): nothing waits on the
collector.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import outcrop
from outcrop import CallEvent, GatewayAPI, UpstreamRequest

from . import otlp
from .context import Parent, parent_of, traceparent
from .export import BatchExporter
from .ids import new_span_id, new_trace_id
from .sampling import DEFAULT, Sampler
from .settings import OtelSettings, Target

if TYPE_CHECKING:
    from collections.abc import Sequence

#: ``gen_ai.system`` / ``gen_ai.provider.name`` for everything Outcrop forwards.
SYSTEM = "aws.bedrock"


def resource(settings: OtelSettings) -> dict[str, Any]:
    """``service.name`` (``OTEL_SERVICE_NAME``, else the setting) and
    ``OTEL_RESOURCE_ATTRIBUTES``."""
    out: dict[str, Any] = {"telemetry.sdk.name": "outcrop", "telemetry.sdk.language": "python"}
    for item in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            out[key.strip()] = unquote(value.strip())
    out["service.name"] = (
        os.environ.get("OTEL_SERVICE_NAME") or out.get("service.name") or settings.service_name
    )
    return out


class _Call:
    """What the upstream side learnt of a call before it ended."""

    __slots__ = ("attempts", "flags", "parent", "prompt", "root_id", "trace_id")

    def __init__(self, parent: Parent | None, sampler: Sampler) -> None:
        self.parent = parent
        self.trace_id = parent.trace_id if parent else new_trace_id()
        self.flags = sampler.flags(parent, self.trace_id)
        self.root_id = new_span_id()
        #: (span id, start in ns since the epoch) per upstream request
        self.attempts: list[tuple[int, int]] = []
        self.prompt: str | None = None


class Tracing:
    """The per-gateway hooks (registered on the gateway's own plugin manager). A call the
    sampler does not sample (``sampling.py``) is continued upstream but not recorded.

    ``targets``: where the spans go, each with its own exporter (``None``: the ``OTEL_*``
    variables' collector; a ``Target``: Langfuse's endpoint). Each span is encoded once, and
    the upstream request carries one ``traceparent``, whatever the number of targets."""

    def __init__(
        self,
        gateway: GatewayAPI,
        settings: OtelSettings,
        sampler: Sampler | None = None,
        targets: Sequence[Target | None] = (None,),
    ) -> None:
        self.settings = settings
        self.sampler = sampler or Sampler.named(DEFAULT)
        scope = ("outcrop", outcrop.__version__)
        self.exporters = [BatchExporter(resource(settings), scope, t) for t in targets]
        self.exporter = self.exporters[0]
        self._names = {d.id: d.model_name for d in gateway.deployments()}
        self._calls: dict[str, _Call] = {}

    # -- on the request's path: ids and headers only ---------------------------------------------
    @outcrop.hookimpl
    def outcrop_before_upstream(
        self,
        request: UpstreamRequest,
        request_id: str,
        request_headers: Sequence[tuple[bytes, bytes]],
    ) -> None:
        if not request_id:
            return
        call = self._calls.get(request_id)
        if call is None:
            call = self._calls[request_id] = _Call(parent_of(request_headers), self.sampler)
            if self.settings.capture_content and request.body:
                call.prompt = self._clip(request.body.decode("utf-8", "replace"))
        span_id = new_span_id()
        call.attempts.append((span_id, time.time_ns()))
        request.headers["traceparent"] = traceparent(call.trace_id, span_id, call.flags)
        parent = call.parent
        if parent is not None:  # the rest of the client's context travels on unchanged
            if parent.tracestate:
                request.headers["tracestate"] = parent.tracestate
            if parent.baggage:
                request.headers["baggage"] = parent.baggage

    # -- once the call is over: the spans ------------------------------------------------------
    @outcrop.hookimpl
    def outcrop_after_call(self, event: CallEvent) -> None:
        call = self._calls.pop(event.request_id, None)
        if call is None:
            call = _Call(parent_of(event.request_headers), self.sampler)
        if not call.flags & 1:
            return  # the client's trace is not sampled: propagated, not recorded
        end = time.time_ns()
        start = end - int(event.latency_s * 1e9)
        operation = _operation(event)
        requested = self._names.get(event.deployment or "", event.model)
        events: tuple[tuple[str, int, dict[str, Any]], ...] = ()
        if event.first_token_s is not None:
            at = start + int(event.first_token_s * 1e9)
            events = (
                ("gen_ai.first_token", at, {"outcrop.time_to_first_token_s": event.first_token_s}),
            )
        failed = event.status >= 400
        self._add(
            otlp.span(
                trace_id=call.trace_id,
                span_id=call.root_id,
                parent_id=call.parent.span_id if call.parent else None,
                parent_remote=True,
                name=f"{operation} {requested}",
                kind=otlp.KIND_SERVER,
                start=start,
                end=end,
                attrs=self._attributes(event, operation, requested, call),
                events=events,
                status=otlp.STATUS_ERROR if failed else otlp.STATUS_UNSET,
                message=(event.error or "") if failed else "",
                flags=call.flags,
            )
        )
        self._attempt_spans(event, call, operation, end)

    def _attempt_spans(self, event: CallEvent, call: _Call, operation: str, end: int) -> None:
        reported = event.attempts if len(event.attempts) == len(call.attempts) else ()
        for i, (span_id, begun) in enumerate(call.attempts):
            if reported:
                a = reported[i]
                deployment, status, latency, error = a.deployment, a.status, a.latency_s, a.error
            else:  # one attempt: the call's own figures describe it
                deployment, status, error = event.deployment, event.status, event.error_type
                latency = event.upstream_latency_s
            finished = min(begun + int(latency * 1e9), end) if latency > 0 else end
            if i + 1 < len(call.attempts) and not reported:
                finished = min(finished, call.attempts[i + 1][1])
            error_type = error.partition(":")[0] if status >= 400 and error else None
            key = ("attempt", operation, status, i + 1, deployment, error_type)
            attrs = otlp.attribute_block(9, key, _attempt_attributes, *key[1:])
            self._add(
                otlp.span(
                    trace_id=call.trace_id,
                    span_id=span_id,
                    parent_id=call.root_id,
                    name=f"{operation} {event.model}",
                    kind=otlp.KIND_CLIENT,
                    start=begun,
                    end=max(finished, begun),
                    attrs=attrs,
                    status=otlp.STATUS_ERROR if status >= 400 else otlp.STATUS_UNSET,
                    message=(error or str(status)) if status >= 400 else "",
                    flags=call.flags,
                )
            )

    def _attributes(self, event: CallEvent, operation: str, requested: str, call: _Call) -> bytes:
        """The call span's attributes, encoded: the part that repeats from call to call (model,
        deployment, surface, route, status, caller) once per combination, then this call's
        own figures."""
        p = event.principal
        failed = event.status >= 400
        static = (
            "call",
            operation,
            requested,
            event.status,
            event.surface,
            event.route,
            event.model if event.model and (event.upstream_latency_s > 0 or not failed) else "",
            event.deployment,
            event.region,
            p.alias if p is not None else None,
            p.team_id if p is not None else None,
            event.finish_reason,
            (event.error_type or (event.error or "").partition(":")[0] or str(event.status))
            if failed
            else None,
        )
        head = otlp.attribute_block(9, static, _call_attributes, static)
        a: dict[str, Any] = {"gen_ai.response.id": event.request_id}
        usage = event.usage
        if usage is not None:
            a["gen_ai.usage.input_tokens"] = usage.prompt_tokens
            a["gen_ai.usage.output_tokens"] = usage.completion_tokens
            details = usage.prompt_tokens_details
            if details is not None and (details.cached_tokens or details.cache_creation_tokens):
                a["gen_ai.usage.cache_read_input_tokens"] = details.cached_tokens
                a["gen_ai.usage.cache_creation_input_tokens"] = details.cache_creation_tokens
        if event.cost is not None:
            a["outcrop.cost_usd"] = event.cost
        if len(call.attempts) > 1:
            a["outcrop.attempts"] = len(call.attempts)
        if self.settings.capture_content:
            if call.prompt is not None:
                a["gen_ai.input.messages"] = call.prompt
            if event.output_text is not None:
                a["gen_ai.output.messages"] = self._clip(event.output_text)
        return head + otlp.attributes(9, a)

    def _add(self, span: bytes) -> None:
        for exporter in self.exporters:
            exporter.add(span)

    def _clip(self, text: str) -> str:
        limit = self.settings.max_content_chars
        return text if len(text) <= limit else text[:limit]

    # -- the end -------------------------------------------------------------------------------
    @outcrop.hookimpl
    def outcrop_shutdown(self, gateway: GatewayAPI) -> Any:
        self._calls.clear()
        return asyncio.to_thread(self._shutdown)  # sends what is still queued

    def _shutdown(self) -> None:
        for exporter in self.exporters:
            exporter.shutdown()


def _call_attributes(static: tuple[Any, ...]) -> dict[str, Any]:
    """The repeating part of a call span's attributes, from ``Tracing._attributes``' key."""
    (_, operation, requested, status, surface, route, model, deployment, region) = static[:9]
    key_alias, team_id, finish_reason, error_type = static[9:]
    a: dict[str, Any] = {
        "gen_ai.system": SYSTEM,
        "gen_ai.provider.name": SYSTEM,
        "gen_ai.operation.name": operation,
        "gen_ai.request.model": requested,
        "http.response.status_code": status,
        "outcrop.surface": surface,
        "outcrop.route": route,
    }
    if model:
        a["gen_ai.response.model"] = model
    if deployment:
        a["outcrop.deployment"] = deployment
    if region:
        a["outcrop.region"] = region
    if finish_reason:
        a["gen_ai.response.finish_reasons"] = (finish_reason,)
    if key_alias:
        a["outcrop.key_alias"] = key_alias
    if team_id:
        a["outcrop.team_id"] = team_id
    if error_type is not None:
        a["error.type"] = error_type
    return a


def _attempt_attributes(
    operation: str, status: int, number: int, deployment: str | None, error_type: str | None
) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.system": SYSTEM,
        "http.response.status_code": status,
        "outcrop.attempt": number,
    }
    if deployment:
        attrs["outcrop.deployment"] = deployment
    if error_type is not None:
        attrs["error.type"] = error_type
    return attrs


def _operation(event: CallEvent) -> str:
    """``gen_ai.operation.name``: ``invoke_agent`` for agents, ``embeddings``, else ``chat``."""
    if event.surface == "embeddings":
        return "embeddings"
    where = f"{event.provider or ''} {event.route}".lower()
    return "invoke_agent" if "agent" in where else "chat"
