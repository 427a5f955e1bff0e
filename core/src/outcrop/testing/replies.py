"""Scripted answers for the Bedrock simulator.

Each reply is a small dataclass whose ``render(request)`` returns a ``Rendered`` response:
a status, headers and body parts. The simulator sends every part as its own ASGI message as
soon as it is produced, sleeping ``delay`` seconds between parts, so a test can tell a
streaming client from a buffering one. Event-stream replies render the exact wire form boto3
parses (AWS event-stream frames: prelude, headers, payload, CRCs).
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from outcrop.eventstream import encode_event, encode_exception

from .recorded import RecordedRequest

EVENT_STREAM = "application/vnd.amazon.eventstream"
SESSION_HEADER = "x-amzn-bedrock-agentcore-runtime-session-id"
DEFAULT_AGENT_MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
STREAM_ERROR_MESSAGE = "An error occurred during streaming"

#: ``(step, input_tokens, output_tokens)``; a bare ``(input, output)`` pair means orchestration.
UsageStep = tuple[int, int] | tuple[str, int, int]
_STEP_TYPES = {
    "preProcessing": "PRE_PROCESSING",
    "orchestration": "ORCHESTRATION",
    "postProcessing": "POST_PROCESSING",
    "routingClassifier": "ROUTING_CLASSIFIER",
}


@dataclass(slots=True)
class Rendered:
    """A response ready to send: each of ``parts`` goes out as one flushed body message."""

    status: int
    headers: list[tuple[str, str]]
    parts: Iterable[bytes]
    delay: float = 0.0


class Reply(Protocol):
    def render(self, request: RecordedRequest) -> Rendered: ...


#: What ``BedrockSimulator.reply`` accepts: a reply, or a function of the request returning one.
ReplyLike = Reply | Callable[[RecordedRequest], "Reply | Awaitable[Reply]"]


class ReplyMismatch(TypeError):
    """A reply was scripted for an operation it cannot answer."""


def _require(reply: object, request: RecordedRequest, operations: Sequence[str]) -> None:
    if request.operation not in operations:
        raise ReplyMismatch(
            f"{type(reply).__name__} answers {', '.join(operations)}, not {request.operation}"
        )


def _b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


def _now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def split_words(text: str, pieces: int | None = None) -> list[str]:
    """Split ``text`` into word chunks that join back to it (all words, or ``pieces`` groups)."""
    words = re.findall(r"\s*\S+\s*", text) or ([text] if text else [])
    count = len(words)
    if pieces is None or count <= pieces:
        return words
    bounds = [round(i * count / pieces) for i in range(pieces + 1)]
    return ["".join(words[bounds[i] : bounds[i + 1]]) for i in range(pieces)]


# --- Bedrock Agents (InvokeAgent / InvokeInlineAgent) ---------------------------------------


def model_input_trace(
    step: str, foundation_model: str, text: str = "", trace_id: str | None = None
) -> dict[str, Any]:
    """An inner trace with ``modelInvocationInput`` for ``step`` (``orchestration``, ...)."""
    return {
        f"{step}Trace": {
            "modelInvocationInput": {
                "traceId": trace_id or f"{uuid.uuid4()}-0",
                "type": _STEP_TYPES.get(step, step.upper()),
                "foundationModel": foundation_model,
                "text": text,
            }
        }
    }


def usage_trace(
    step: str,
    input_tokens: int,
    output_tokens: int,
    *,
    trace_id: str | None = None,
    raw_response: str = "",
) -> dict[str, Any]:
    """An inner trace with ``modelInvocationOutput.metadata.usage`` for ``step``."""
    return {
        f"{step}Trace": {
            "modelInvocationOutput": {
                "traceId": trace_id or f"{uuid.uuid4()}-0",
                "rawResponse": {"content": raw_response},
                "metadata": {
                    "usage": {"inputTokens": input_tokens, "outputTokens": output_tokens},
                },
            }
        }
    }


@dataclass
class AgentReply:
    """An ``InvokeAgent``/``InvokeInlineAgent`` event stream.

    Traces (``usage_steps`` as model input/output pairs, then ``rationale``, then ``traces``)
    are sent only when the request set ``enableTrace``, as AWS does; then come the ``chunks``
    (``citations`` attach to the last one), ``return_control``, ``files`` and ``exception``
    (``(exception_type, message)``, e.g. ``("throttlingException", "slow down")``).
    ``traces`` items are full trace payloads (with a ``trace`` key) or inner trace unions.
    """

    chunks: list[str] = field(default_factory=list)
    delay: float = 0.0
    traces: list[dict[str, Any]] = field(default_factory=list)
    usage_steps: list[UsageStep] = field(default_factory=list)
    foundation_model: str = DEFAULT_AGENT_MODEL
    citations: list[dict[str, Any]] | None = None
    return_control: dict[str, Any] | None = None
    files: list[dict[str, Any]] | None = None
    exception: tuple[str, str] | None = None
    rationale: str | None = None
    agent_version: str = "1"

    OPERATIONS = ("InvokeAgent", "InvokeInlineAgent")

    def render(self, request: RecordedRequest) -> Rendered:
        _require(self, request, self.OPERATIONS)
        body = request.json() or {}
        headers = [
            ("content-type", EVENT_STREAM),
            ("x-amzn-bedrock-agent-content-type", "application/json"),
            ("x-amz-bedrock-agent-session-id", request.params.get("sessionId", "")),
        ]
        if body.get("memoryId"):
            headers.append(("x-amz-bedrock-agent-memory-id", body["memoryId"]))
        return Rendered(
            200, headers, self._frames(request, bool(body.get("enableTrace"))), self.delay
        )

    def _frames(self, request: RecordedRequest, with_traces: bool) -> Iterator[bytes]:
        if with_traces:
            for inner in self._inner_traces():
                yield encode_event("trace", self._trace_payload(request, inner))
        for index, text in enumerate(self.chunks):
            payload: dict[str, Any] = {"bytes": _b64(text)}
            if self.citations is not None and index == len(self.chunks) - 1:
                payload["attribution"] = {"citations": self.citations}
            yield encode_event("chunk", payload)
        if self.return_control is not None:
            yield encode_event("returnControl", self.return_control)
        if self.files:
            files = [
                {**f, "bytes": _b64(f["bytes"])} if isinstance(f.get("bytes"), bytes) else f
                for f in self.files
            ]
            yield encode_event("files", {"files": files})
        if self.exception is not None:
            yield encode_exception(*self.exception)

    def _inner_traces(self) -> Iterator[dict[str, Any]]:
        for number, step in enumerate(self.usage_steps):
            name, tokens_in, tokens_out = step if len(step) == 3 else ("orchestration", *step)
            trace_id = f"{uuid.uuid4()}-{number}"
            yield model_input_trace(name, self.foundation_model, trace_id=trace_id)
            yield usage_trace(name, tokens_in, tokens_out, trace_id=trace_id)
        if self.rationale is not None:
            yield {
                "orchestrationTrace": {
                    "rationale": {"traceId": f"{uuid.uuid4()}-r", "text": self.rationale}
                }
            }
        yield from self.traces

    def _trace_payload(self, request: RecordedRequest, trace: dict[str, Any]) -> dict[str, Any]:
        payload: dict[str, Any] = dict(trace) if "trace" in trace else {"trace": trace}
        payload.setdefault("agentId", request.params.get("agentId", "INLINE"))
        payload.setdefault("agentAliasId", request.params.get("agentAliasId", "INLINE"))
        payload.setdefault("sessionId", request.params.get("sessionId", ""))
        payload.setdefault("agentVersion", self.agent_version)
        payload.setdefault("eventTime", _now_iso())
        return payload


# --- bedrock-runtime --------------------------------------------------------------------------


@dataclass
class ToolUse:
    """A tool call in a ``ConverseReply``: the tool's name and its JSON input."""

    name: str
    input: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: f"tooluse_{uuid.uuid4().hex[:22]}")


@dataclass
class ConverseReply:
    """``Converse`` JSON or a ``ConverseStream`` event stream of the same answer.

    Content blocks come in Bedrock's order: ``reasoning`` (a signed reasoning block), ``text``,
    then one ``toolUse`` block per item of ``tool_calls`` (the stop reason then defaults to
    ``tool_use``). ``chunks`` splits the text in the stream (default: its words); a tool's
    input streams in ``tool_input_pieces`` pieces. ``usage`` is ``(input, output)`` tokens,
    ``cache`` ``(read, written)`` prompt-cache tokens. ``exception``
    (``(exception_type, message)``) ends a stream with an exception frame after the text.
    """

    text: str = ""
    usage: tuple[int, int] = (10, 5)
    stop_reason: str | None = None
    delay: float = 0.0
    chunks: list[str] | None = None
    exception: tuple[str, str] | None = None
    latency_ms: int = 120
    tool_calls: list[ToolUse] = field(default_factory=list)
    reasoning: str | None = None
    reasoning_signature: str = "c2lnbmF0dXJl"
    cache: tuple[int, int] = (0, 0)
    tool_input_pieces: int = 3
    additional_fields: dict[str, Any] | None = None

    OPERATIONS = ("Converse", "ConverseStream")

    @property
    def stop(self) -> str:
        return self.stop_reason or ("tool_use" if self.tool_calls else "end_turn")

    def _usage(self) -> dict[str, int]:
        tokens_in, tokens_out = self.usage
        read, written = self.cache
        usage = {
            "inputTokens": tokens_in,
            "outputTokens": tokens_out,
            "totalTokens": tokens_in + tokens_out + read + written,
        }
        if read or written:
            usage.update(cacheReadInputTokens=read, cacheWriteInputTokens=written)
        return usage

    def _blocks(self) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if self.reasoning is not None:
            blocks.append(
                {
                    "reasoningContent": {
                        "reasoningText": {
                            "text": self.reasoning,
                            "signature": self.reasoning_signature,
                        }
                    }
                }
            )
        if self.text or not self.tool_calls:
            blocks.append({"text": self.text})
        blocks += [
            {"toolUse": {"toolUseId": t.id, "name": t.name, "input": t.input}}
            for t in self.tool_calls
        ]
        return blocks

    def render(self, request: RecordedRequest) -> Rendered:
        _require(self, request, self.OPERATIONS)
        if request.operation == "Converse":
            body: dict[str, Any] = {
                "output": {"message": {"role": "assistant", "content": self._blocks()}},
                "stopReason": self.stop,
                "usage": self._usage(),
                "metrics": {"latencyMs": self.latency_ms},
            }
            if self.additional_fields is not None:
                body["additionalModelResponseFields"] = self.additional_fields
            return Rendered(200, [("content-type", "application/json")], [_json_bytes(body)])
        return Rendered(200, [("content-type", EVENT_STREAM)], self._frames(), self.delay)

    def _frames(self) -> Iterator[bytes]:
        yield encode_event("messageStart", {"role": "assistant"})
        index = 0
        if self.reasoning is not None:
            for piece in split_words(self.reasoning):
                yield encode_event(
                    "contentBlockDelta",
                    {"contentBlockIndex": index, "delta": {"reasoningContent": {"text": piece}}},
                )
            yield encode_event(
                "contentBlockDelta",
                {
                    "contentBlockIndex": index,
                    "delta": {"reasoningContent": {"signature": self.reasoning_signature}},
                },
            )
            yield encode_event("contentBlockStop", {"contentBlockIndex": index})
            index += 1
        if self.text or not self.tool_calls:
            for text in split_words(self.text) if self.chunks is None else self.chunks:
                yield encode_event(
                    "contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": text}}
                )
            if self.exception is not None:
                yield encode_exception(*self.exception)
                return
            yield encode_event("contentBlockStop", {"contentBlockIndex": index})
            index += 1
        for tool in self.tool_calls:
            yield encode_event(
                "contentBlockStart",
                {
                    "contentBlockIndex": index,
                    "start": {"toolUse": {"toolUseId": tool.id, "name": tool.name}},
                },
            )
            arguments = json.dumps(tool.input)
            size = max(1, -(-len(arguments) // self.tool_input_pieces))
            for start in range(0, len(arguments), size):
                yield encode_event(
                    "contentBlockDelta",
                    {
                        "contentBlockIndex": index,
                        "delta": {"toolUse": {"input": arguments[start : start + size]}},
                    },
                )
            yield encode_event("contentBlockStop", {"contentBlockIndex": index})
            index += 1
        if self.exception is not None:
            yield encode_exception(*self.exception)
            return
        stop: dict[str, Any] = {"stopReason": self.stop}
        if self.additional_fields is not None:
            stop["additionalModelResponseFields"] = self.additional_fields
        yield encode_event("messageStop", stop)
        yield encode_event(
            "metadata", {"usage": self._usage(), "metrics": {"latencyMs": self.latency_ms}}
        )


@dataclass
class InvokeReply:
    """``InvokeModel`` (raw body + token-count headers) or ``InvokeModelWithResponseStream``.

    The stream sends one ``chunk`` per item of ``chunks`` (default: ``body`` as one chunk); the
    last JSON chunk carries ``amazon-bedrock-invocationMetrics``, as Bedrock does.
    """

    body: dict[str, Any] | bytes | None = None
    chunks: list[dict[str, Any] | bytes] | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    delay: float = 0.0
    content_type: str = "application/json"
    latency_ms: int = 120
    exception: tuple[str, str] | None = None

    OPERATIONS = ("InvokeModel", "InvokeModelWithResponseStream")

    def render(self, request: RecordedRequest) -> Rendered:
        _require(self, request, self.OPERATIONS)
        if request.operation == "InvokeModel":
            headers = [
                ("content-type", self.content_type),
                ("x-amzn-bedrock-input-token-count", str(self.input_tokens)),
                ("x-amzn-bedrock-output-token-count", str(self.output_tokens)),
                ("x-amzn-bedrock-invocation-latency", str(self.latency_ms)),
            ]
            return Rendered(200, headers, [self._encode(self.body or {})])
        headers = [
            ("content-type", EVENT_STREAM),
            ("x-amzn-bedrock-content-type", self.content_type),
        ]
        return Rendered(200, headers, self._frames(), self.delay)

    @staticmethod
    def _encode(item: dict[str, Any] | bytes) -> bytes:
        return item if isinstance(item, bytes) else _json_bytes(item)

    def _frames(self) -> Iterator[bytes]:
        items = list(self.chunks if self.chunks is not None else [self.body or {}])
        if items and isinstance(items[-1], dict):
            items[-1] = {
                **items[-1],
                "amazon-bedrock-invocationMetrics": {
                    "inputTokenCount": self.input_tokens,
                    "outputTokenCount": self.output_tokens,
                    "invocationLatency": self.latency_ms,
                    "firstByteLatency": self.latency_ms // 2,
                },
            }
        for item in items:
            yield encode_event("chunk", {"bytes": _b64(self._encode(item))})
        if self.exception is not None:
            yield encode_exception(*self.exception)


# --- AgentCore (InvokeAgentRuntime) -------------------------------------------------------------


@dataclass
class RuntimeReply:
    """What an AgentCore runtime container answers: raw bytes, not an event stream.

    Build one with ``json``, ``sse``, ``text`` or ``strands``. The runtime session id header is
    echoed (or generated when the request had none).
    """

    parts: list[bytes]
    content_type: str = "application/json"
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)

    OPERATIONS = ("InvokeAgentRuntime",)

    @classmethod
    def json(cls, obj: Any, *, status: int = 200) -> RuntimeReply:
        """A plain entrypoint return value: ``json.dumps(result)``."""
        return cls([_json_bytes(obj)], "application/json", status)

    @classmethod
    def text(cls, text: str, *, content_type: str = "text/plain; charset=utf-8") -> RuntimeReply:
        return cls([text.encode()], content_type)

    @classmethod
    def sse(
        cls, events: Iterable[Any], *, delay: float = 0.0, error: tuple[str, str] | None = None
    ) -> RuntimeReply:
        """A generator entrypoint: each yielded object as ``data: {json}\\n\\n``.

        ``error`` (``(message, error_type)``) ends the stream the way BedrockAgentCoreApp
        reports an exception raised mid-stream.
        """
        items = list(events)
        if error is not None:
            items.append(
                {"error": error[0], "error_type": error[1], "message": STREAM_ERROR_MESSAGE}
            )
        return cls(
            [b"data: " + _json_bytes(item) + b"\n\n" for item in items],
            "text/event-stream",
            delay=delay,
        )

    @classmethod
    def error(
        cls,
        message: str,
        error_type: str = "Exception",
        *,
        events: Iterable[Any] = (),
        delay: float = 0.0,
    ) -> RuntimeReply:
        """An SSE stream (``events`` first) that ends with a mid-stream error event."""
        return cls.sse(events, delay=delay, error=(message, error_type))

    @classmethod
    def strands(
        cls,
        texts: Iterable[str],
        *,
        usage: tuple[int, int] = (10, 5),
        delay: float = 0.0,
        error: tuple[str, str] | None = None,
        stop_reason: str = "end_turn",
    ) -> RuntimeReply:
        """What a Strands agent yields through ``stream_async``: ConverseStream-shaped events."""
        texts = list(texts)
        events: list[Any] = [{"event": {"messageStart": {"role": "assistant"}}}]
        for text in texts:
            delta = {"text": text}
            events.append(
                {"event": {"contentBlockDelta": {"delta": delta, "contentBlockIndex": 0}}}
            )
            events.append({"data": text, "delta": delta})
        if error is None:
            tokens_in, tokens_out = usage
            events += [
                {"event": {"contentBlockStop": {"contentBlockIndex": 0}}},
                {"event": {"messageStop": {"stopReason": stop_reason}}},
                {
                    "event": {
                        "metadata": {
                            "usage": {
                                "inputTokens": tokens_in,
                                "outputTokens": tokens_out,
                                "totalTokens": tokens_in + tokens_out,
                            },
                            "metrics": {"latencyMs": 120},
                        }
                    }
                },
                {"message": {"role": "assistant", "content": [{"text": "".join(texts)}]}},
            ]
        return cls.sse(events, delay=delay, error=error)

    def render(self, request: RecordedRequest) -> Rendered:
        _require(self, request, self.OPERATIONS)
        session = request.headers.get(SESSION_HEADER) or str(uuid.uuid4())
        headers = [("content-type", self.content_type), (SESSION_HEADER, session)]
        headers += list(self.headers.items())
        return Rendered(self.status, headers, self.parts, self.delay)


# --- Any operation ------------------------------------------------------------------------------


@dataclass(init=False)
class HttpError:
    """An AWS error response: ``x-amzn-ErrorType: code``, body ``{"message": ..., **members}``."""

    status: int
    code: str
    message: str
    members: dict[str, Any]

    def __init__(self, status: int, code: str, message: str, **members: Any) -> None:
        self.status, self.code, self.message, self.members = status, code, message, members

    def render(self, request: RecordedRequest) -> Rendered:
        headers = [("content-type", "application/json"), ("x-amzn-ErrorType", self.code)]
        return Rendered(
            self.status, headers, [_json_bytes({"message": self.message, **self.members})]
        )


@dataclass
class RawReply:
    """Exactly these bytes: one flushed body message per part, ``delay`` seconds apart."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body_parts: list[bytes] = field(default_factory=list)
    delay: float = 0.0

    def render(self, request: RecordedRequest) -> Rendered:
        return Rendered(self.status, list(self.headers.items()), self.body_parts, self.delay)


@dataclass
class EventStreamReply:
    """Pre-encoded event-stream frames (see ``outcrop.eventstream``), for any operation."""

    frames: list[bytes] = field(default_factory=list)
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200

    def render(self, request: RecordedRequest) -> Rendered:
        headers = [("content-type", EVENT_STREAM), *self.headers.items()]
        return Rendered(self.status, headers, self.frames, self.delay)
