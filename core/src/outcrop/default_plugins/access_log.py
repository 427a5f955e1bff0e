"""Built-in access log: one structured line per call, from ``outcrop_after_call``."""

from __future__ import annotations

from ..errors import clip
from ..hookimpl import hookimpl
from ..logs import get_logger
from ..types import CallEvent

log = get_logger("outcrop.access")


@hookimpl
def outcrop_after_call(event: CallEvent) -> None:
    usage = event.usage
    log.info(
        "request",
        request_id=event.request_id,
        surface=event.surface,
        route=clip(event.route, 300),
        model=clip(event.model),  # a client's string when the call failed early
        deployment=event.deployment,
        region=event.region,
        status=event.status,
        stream=event.stream,
        latency_ms=round(event.latency_s * 1000, 2),
        upstream_ms=round(event.upstream_latency_s * 1000, 2),
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        cost=event.cost,
        error=clip(event.error, 2000) if event.error else None,
        dropped_params=event.extra.get("dropped_params"),
    )
