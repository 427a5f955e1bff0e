"""Token usage read on the side of a relayed response, never delaying a byte.

A meter sees the response headers, then every body chunk exactly as it is sent to the client,
then the end. What it learns (usage, the model that answered, an in-stream error) feeds the
after-call event and, for non-streamed answers, the cost header. A meter that meets something
it cannot parse stops metering; the relay itself never depends on it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import msgspec

from outcrop import EventStreamDecoder, EventStreamMessage, PromptTokensDetails, Usage

_json = msgspec.json.Decoder()
#: Converse answers up to this size are read whole before the response starts, so they can
#: carry the cost header (a client cannot use half a JSON document anyway).
BODY_FIRST_LIMIT = 16 * 1024 * 1024
_METRICS_KEY = b"amazon-bedrock-invocationMetrics"
_TRACE_STEPS = (
    "preProcessingTrace",
    "orchestrationTrace",
    "postProcessingTrace",
    "routingClassifierTrace",
    "customOrchestrationTrace",
)


class Meter:
    """Base meter: learns nothing. Subclasses override what they read."""

    #: Read the whole (small) body before the response starts, so the cost header can be set.
    needs_body_first = False

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.model: str | None = None
        self.error: str | None = None

    def headers(self, headers: Mapping[str, str]) -> None:
        return None

    def feed(self, chunk: bytes) -> None:
        return None

    def finish(self) -> None:
        return None


def _usage(prompt: Any, completion: Any, total: Any = None) -> Usage | None:
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return Usage(prompt, completion, total if isinstance(total, int) else prompt + completion)


def _converse_usage(usage: dict[str, Any]) -> Usage | None:
    """Converse ``usage``; prompt-cache reads and writes count as prompt tokens (OpenAI's
    convention, which pricing follows) and are reported only when AWS reports them."""
    found = _usage(usage.get("inputTokens"), usage.get("outputTokens"), usage.get("totalTokens"))
    read, written = usage.get("cacheReadInputTokens"), usage.get("cacheWriteInputTokens")
    if found is None or not (isinstance(read, int) or isinstance(written, int)):
        return found
    read, written = read if isinstance(read, int) else 0, written if isinstance(written, int) else 0
    prompt = found.prompt_tokens + read + written
    return Usage(
        prompt,
        found.completion_tokens,
        prompt + found.completion_tokens,
        PromptTokensDetails(read, written),
    )


class ConverseMeter(Meter):
    """Converse: ``usage`` in the JSON body (kept whole: it is one small JSON document)."""

    needs_body_first = True

    def __init__(self, limit: int = BODY_FIRST_LIMIT) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._size = 0
        self._limit = limit

    def feed(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self._limit:
            raise ValueError("answer too large to meter")  # stops metering, never the relay
        self._parts.append(chunk)

    def finish(self) -> None:
        body, self._parts = b"".join(self._parts), []
        data = _json.decode(body)
        if isinstance(data, dict):
            self.usage = _converse_usage(data.get("usage") or {})
            routed = ((data.get("trace") or {}).get("promptRouter") or {}).get("invokedModelId")
            if isinstance(routed, str):
                self.model = routed


class InvokeMeter(Meter):
    """InvokeModel: Bedrock reports the token counts in response headers."""

    def headers(self, headers: Mapping[str, str]) -> None:
        try:
            self.usage = _usage(
                int(headers["x-amzn-bedrock-input-token-count"]),
                int(headers["x-amzn-bedrock-output-token-count"]),
            )
        except (KeyError, ValueError):
            self.usage = None


class EventStreamMeter(Meter):
    """Decodes the AWS event stream it is fed; subclasses read the events they know.

    The decoder also knows the frame boundaries, so the relay can tell whether a stream whose
    upstream stopped may still get a well-formed exception frame, and whether a body that ended
    cleanly ended mid-frame (``finish_frames``). An event a subclass cannot read stops the
    usage reading, never the framing.
    """

    def __init__(self) -> None:
        super().__init__()
        self._decoder = EventStreamDecoder()
        self._reading = True

    @property
    def at_boundary(self) -> bool:
        return self._decoder.at_boundary

    def finish_frames(self) -> None:
        """Raise the decoder's 502 when the body ended in the middle of a frame."""
        self._decoder.finish()

    def feed(self, chunk: bytes) -> None:
        for message in self._decoder.feed(chunk):
            if not self._reading:
                continue
            try:
                self._read(message)
            except Exception:  # an unreadable event: no usage from here on, framing goes on
                self._reading = False

    def _read(self, message: EventStreamMessage) -> None:
        if message.message_type == "event":
            self.event(message)
        else:
            data = message.json() if message.payload else {}
            text = data.get("message") if isinstance(data, dict) else None
            text = text or message.headers.get(":error-message") or ""
            self.error = (
                f"{message.exception_type}: {text}" if text else str(message.exception_type)
            )

    def event(self, message: EventStreamMessage) -> None:
        return None


class ConverseStreamMeter(EventStreamMeter):
    """ConverseStream: the ``metadata`` event carries the usage."""

    def event(self, message: EventStreamMessage) -> None:
        if message.event_type != "metadata":
            return
        data = message.json()
        self.usage = _converse_usage(data.get("usage") or {})
        routed = ((data.get("trace") or {}).get("promptRouter") or {}).get("invokedModelId")
        if isinstance(routed, str):
            self.model = routed


class InvokeStreamMeter(EventStreamMeter):
    """InvokeModelWithResponseStream: the last chunk's ``amazon-bedrock-invocationMetrics``."""

    def event(self, message: EventStreamMessage) -> None:
        if message.event_type != "chunk":
            return
        blob = message.json().get("bytes")
        if not isinstance(blob, str):
            return
        inner = base64.b64decode(blob)
        if _METRICS_KEY not in inner:
            return
        metrics = _json.decode(inner).get("amazon-bedrock-invocationMetrics") or {}
        self.usage = _usage(metrics.get("inputTokenCount"), metrics.get("outputTokenCount"))


class AgentMeter(EventStreamMeter):
    """InvokeAgent / InvokeInlineAgent: one usage per model call in the traces, summed.

    Traces (and so usage) are only sent when the request set ``enableTrace``.
    """

    def event(self, message: EventStreamMessage) -> None:
        if message.event_type != "trace":
            return
        trace = message.json().get("trace") or {}
        for step in _TRACE_STEPS:
            inner = trace.get(step)
            if not isinstance(inner, dict):
                continue
            model_input = inner.get("modelInvocationInput") or {}
            if self.model is None and isinstance(model_input.get("foundationModel"), str):
                self.model = model_input["foundationModel"]
            usage = ((inner.get("modelInvocationOutput") or {}).get("metadata") or {}).get(
                "usage"
            ) or {}
            found = _usage(usage.get("inputTokens"), usage.get("outputTokens"))
            if found is not None:
                self.usage = found if self.usage is None else self.usage + found


class RuntimeSseMeter(Meter):
    """InvokeAgentRuntime answering ``text/event-stream``: Strands-style ``metadata`` usage lines."""

    def __init__(self) -> None:
        super().__init__()
        self._tail = b""

    def feed(self, chunk: bytes) -> None:
        data = self._tail + chunk
        lines = data.split(b"\n")
        self._tail = lines.pop()
        if len(self._tail) > 1 << 20:  # a runaway line: not a metadata event worth holding
            self._tail = b""
        for line in lines:
            if line.startswith(b"data:") and b'"usage"' in line:
                self._line(line[5:].strip())

    def _line(self, raw: bytes) -> None:
        try:
            item = _json.decode(raw)
        except msgspec.DecodeError:
            return
        event = item.get("event") if isinstance(item, dict) else None
        usage = (
            ((event or {}).get("metadata") or {}).get("usage") if isinstance(event, dict) else None
        )
        if isinstance(usage, dict):
            found = _usage(
                usage.get("inputTokens"), usage.get("outputTokens"), usage.get("totalTokens")
            )
            if found is not None:
                self.usage = found if self.usage is None else self.usage + found


class Metering:
    """Runs a meter's steps; the first failure switches metering off, never the relay."""

    __slots__ = ("active", "meter")

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self.active = True

    def headers(self, headers: Mapping[str, str]) -> None:
        self._run(self.meter.headers, headers)

    def feed(self, chunk: bytes) -> None:
        if self.active:
            self._run(self.meter.feed, chunk)

    def finish(self) -> None:
        if self.active:
            self._run(self.meter.finish)
            self.active = False

    def _run(self, step: Any, *args: Any) -> None:
        try:
            step(*args)
        except Exception:  # malformed upstream data must not break the answer
            self.active = False


_BY_OPERATION: dict[str, type[Meter]] = {
    "Converse": ConverseMeter,
    "ConverseStream": ConverseStreamMeter,
    "InvokeModel": InvokeMeter,
    "InvokeModelWithResponseStream": InvokeStreamMeter,
    "InvokeAgent": AgentMeter,
    "InvokeInlineAgent": AgentMeter,
}


def meter_for(operation: str, event_stream: bool, status: int, content_type: str) -> Meter:
    """The meter for a response: only successful responses carry usage."""
    if status >= 300:
        return Meter()
    kind = _BY_OPERATION.get(operation)
    if kind is not None:
        return kind()
    if operation == "InvokeAgentRuntime" and content_type.startswith("text/event-stream"):
        return RuntimeSseMeter()
    if event_stream:
        return EventStreamMeter()  # no usage, but in-stream exceptions and frame boundaries
    return Meter()
