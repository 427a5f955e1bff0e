"""Span ids chosen before their spans exist.

The upstream request carries the id of its attempt's span in ``traceparent`` before that span
is recorded (spans are built once the call is over, off the request's path), so the tracer
provider's id generator hands out ids picked earlier when asked to.
"""

from __future__ import annotations

import random

from opentelemetry.sdk.trace.id_generator import IdGenerator


def new_span_id() -> int:
    return random.getrandbits(64) or 1


def new_trace_id() -> int:
    return random.getrandbits(128) or 1


class PresetIds(IdGenerator):
    """Random ids, except the ones set with ``preset`` for the next span started (the spans of
    one gateway are started on its event-loop thread, one at a time)."""

    def __init__(self) -> None:
        self._trace_id: int | None = None
        self._span_id: int | None = None

    def preset(self, span_id: int, trace_id: int | None = None) -> None:
        self._span_id, self._trace_id = span_id, trace_id

    def generate_span_id(self) -> int:
        # asked after the trace id (which a span with a parent never asks for): both presets end
        span_id, self._span_id, self._trace_id = self._span_id, None, None
        return span_id or new_span_id()

    def generate_trace_id(self) -> int:
        trace_id, self._trace_id = self._trace_id, None
        return trace_id or new_trace_id()

    def is_trace_id_random(self) -> bool:
        return True
