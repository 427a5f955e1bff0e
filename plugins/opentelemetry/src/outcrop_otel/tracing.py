"""One gateway's traces: a span per call, a child span per upstream attempt.

On the request's path the plugin only picks ids and writes ``traceparent`` on the upstream
request (``outcrop_before_upstream``). The spans themselves are built when the call is over
(``outcrop_after_call``), with the times the call measured, and handed to a batch processor
whose thread exports them: nothing waits on the collector.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any

import outcrop
from outcrop import CallEvent, Gateway, UpstreamRequest

from .context import Parent, parent_of, traceparent
from .ids import new_span_id, new_trace_id
from .settings import OtelSettings

if TYPE_CHECKING:
    from collections.abc import Sequence

#: ``gen_ai.system`` / ``gen_ai.provider.name`` for everything Outcrop forwards.
SYSTEM = "aws.bedrock"
#: The protocols ``OTEL_EXPORTER_OTLP_PROTOCOL`` may name.
PROTOCOLS = ("http/protobuf", "grpc")


def protocol() -> str:
    """The OTLP protocol the environment asks for (``http/protobuf`` by default)."""
    return (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()


def _exporter() -> Any:
    if protocol() == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter()  # endpoint, headers, timeout, TLS: the OTEL_EXPORTER_OTLP_* vars


class _Call:
    """What the upstream side learnt of a call before it ended."""

    __slots__ = ("attempts", "flags", "parent", "prompt", "root_id", "trace_id")

    def __init__(self, parent: Parent | None) -> None:
        self.parent = parent
        self.trace_id = parent.trace_id if parent else new_trace_id()
        self.flags = parent.flags if parent else 1
        self.root_id = new_span_id()
        #: (span id, start in ns since the epoch) per upstream request
        self.attempts: list[tuple[int, int]] = []
        self.prompt: str | None = None


class Tracing:
    """The per-gateway hooks (registered on the gateway's own plugin manager).

    Spans are built as finished ``ReadableSpan`` objects with the call's own times and handed
    straight to the batch processor: the SDK's live-span machinery (sampler, attribute
    re-validation, processors per span) is not needed for spans that are complete at birth.
    A client trace whose ``sampled`` flag is off is continued upstream but not recorded.
    """

    def __init__(self, gateway: Gateway, settings: OtelSettings) -> None:
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        from opentelemetry.trace import Status, StatusCode

        self.settings = settings
        named = os.environ.get("OTEL_SERVICE_NAME")
        self.resource = Resource.create({} if named else {SERVICE_NAME: settings.service_name})
        self.scope = InstrumentationScope("outcrop", outcrop.__version__)
        self.processor = BatchSpanProcessor(_exporter())
        self.unset = Status(StatusCode.UNSET)
        self._names = {d.id: d.model_name for d in gateway.config.model_list}
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
            call = self._calls[request_id] = _Call(parent_of(request_headers))
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
        from opentelemetry.sdk.trace import Event, ReadableSpan
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

        call = self._calls.pop(event.request_id, None)
        if call is None:
            call = _Call(parent_of(event.request_headers))
        if not call.flags & 1:
            return  # the client's trace is not sampled: propagated, not recorded
        end = time.time_ns()
        start = end - int(event.latency_s * 1e9)
        flags = TraceFlags(call.flags)
        parent = None
        if call.parent is not None:
            parent = SpanContext(call.trace_id, call.parent.span_id, True, flags)
        root = SpanContext(call.trace_id, call.root_id, False, flags)
        operation = _operation(event)
        requested = self._names.get(event.deployment or "", event.model)
        events = ()
        if event.first_token_s is not None:
            events = (
                Event(
                    "gen_ai.first_token",
                    {"outcrop.time_to_first_token_s": event.first_token_s},
                    start + int(event.first_token_s * 1e9),
                ),
            )
        failed = event.status >= 400
        self.processor.on_end(
            ReadableSpan(
                f"{operation} {requested}",
                context=root,
                parent=parent,
                resource=self.resource,
                attributes=self._attributes(event, operation, requested, call),
                events=events,
                kind=SpanKind.SERVER,
                status=Status(StatusCode.ERROR, event.error) if failed else self.unset,
                start_time=start,
                end_time=end,
                instrumentation_scope=self.scope,
            )
        )
        self._attempt_spans(event, call, root, operation, end)

    def _attempt_spans(
        self, event: CallEvent, call: _Call, root: Any, operation: str, end: int
    ) -> None:
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode

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
            attributes: dict[str, Any] = {
                "gen_ai.operation.name": operation,
                "gen_ai.system": SYSTEM,
                "gen_ai.provider.name": SYSTEM,
                "gen_ai.response.model": event.model,
                "http.response.status_code": status,
                "outcrop.attempt": i + 1,
            }
            if deployment:
                attributes["outcrop.deployment"] = deployment
            if status >= 400 and error:
                attributes["error.type"] = error.partition(":")[0]
            self.processor.on_end(
                ReadableSpan(
                    f"{operation} {event.model}",
                    context=SpanContext(call.trace_id, span_id, False, root.trace_flags),
                    parent=root,
                    resource=self.resource,
                    attributes=attributes,
                    kind=SpanKind.CLIENT,
                    status=Status(StatusCode.ERROR, error or str(status))
                    if status >= 400
                    else self.unset,
                    start_time=begun,
                    end_time=max(finished, begun),
                    instrumentation_scope=self.scope,
                )
            )

    def _attributes(
        self, event: CallEvent, operation: str, requested: str, call: _Call
    ) -> dict[str, Any]:
        a: dict[str, Any] = {
            "gen_ai.system": SYSTEM,
            "gen_ai.provider.name": SYSTEM,
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": requested,
            "gen_ai.response.id": event.request_id,
            "http.response.status_code": event.status,
            "outcrop.request_id": event.request_id,
            "outcrop.surface": event.surface,
            "outcrop.route": event.route,
            "outcrop.stream": event.stream,
            "outcrop.upstream_latency_s": event.upstream_latency_s,
            "outcrop.attempts": len(call.attempts),
        }
        if event.model and (event.upstream_latency_s > 0 or event.status < 400):
            a["gen_ai.response.model"] = event.model
        if event.deployment:
            a["outcrop.deployment"] = event.deployment
        if event.region:
            a["outcrop.region"] = event.region
        usage = event.usage
        if usage is not None:
            a["gen_ai.usage.input_tokens"] = usage.prompt_tokens
            a["gen_ai.usage.output_tokens"] = usage.completion_tokens
            details = usage.prompt_tokens_details
            if details is not None:
                a["gen_ai.usage.cache_read_input_tokens"] = details.cached_tokens
                a["gen_ai.usage.cache_creation_input_tokens"] = details.cache_creation_tokens
        if event.finish_reason:
            a["gen_ai.response.finish_reasons"] = (event.finish_reason,)
        if event.cost is not None:
            a["outcrop.cost_usd"] = event.cost
        if event.first_token_s is not None:
            a["outcrop.time_to_first_token_s"] = event.first_token_s
        p = event.principal
        if p is not None:
            a["outcrop.principal"] = p.kind
            if p.alias:
                a["outcrop.key_alias"] = p.alias
            if p.team_id:
                a["outcrop.team_id"] = p.team_id
        if event.status >= 400:
            a["error.type"] = (
                event.error_type or (event.error or "").partition(":")[0] or str(event.status)
            )
        if self.settings.capture_content:
            if call.prompt is not None:
                a["gen_ai.input.messages"] = call.prompt
            if event.output_text is not None:
                a["gen_ai.output.messages"] = self._clip(event.output_text)
        return a

    def _clip(self, text: str) -> str:
        limit = self.settings.max_content_chars
        return text if len(text) <= limit else text[:limit]

    # -- the end -------------------------------------------------------------------------------
    @outcrop.hookimpl
    def outcrop_shutdown(self, gateway: Gateway) -> Any:
        self._calls.clear()
        return asyncio.to_thread(self.processor.shutdown)  # exports what is still queued


def _operation(event: CallEvent) -> str:
    """``gen_ai.operation.name``: ``invoke_agent`` for agents, ``embeddings``, else ``chat``."""
    if event.surface == "embeddings":
        return "embeddings"
    where = f"{event.provider or ''} {event.route}".lower()
    return "invoke_agent" if "agent" in where else "chat"
