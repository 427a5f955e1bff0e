"""Turn an InvokeAgentRuntime response into chat deltas, by its content type.

The body is whatever the agent container wrote, not an AWS event stream:

- ``text/event-stream``: one delta per event as it arrives. Strands agents send ConverseStream
  events under ``event`` *and* the same text again as ``{"data": ...}`` callbacks; whichever
  channel speaks first is used, so text is never doubled. Usage comes only from Strands
  ``event.metadata.usage`` (summed over the agent's model calls) or a ``usage`` object the agent
  sent itself. ``{"error": ...}`` (BedrockAgentCoreApp's mid-stream failure) raises.
- ``application/x-ndjson``: the same, one JSON value per line.
- ``application/json``: one document; text from the common shapes, else the raw JSON as the
  content and, parsed, in ``agentcore_response``.
- anything else (``text/plain``): the bytes as text, as they arrive.
"""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator, Mapping
from typing import Any

import msgspec

from outcrop import ChatDelta, OutcropError, UpstreamResponse, Usage

from .shapes import extract_text, finish_from, usage_from
from .sse import iter_sse

RAW_FIELD = "agentcore_response"
#: Lifecycle keys of Strands ``stream_async`` events: they carry nothing for the client.
_STRANDS_KEYS = frozenset(
    {
        "init_event_loop",
        "start",
        "start_event_loop",
        "force_stop",
        "current_tool_use",
        "tool_stream_event",
        "complete",
    }
)
_JSON_START = frozenset(b'{["')
_MAX_UNRECOGNIZED = 1000

_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def media_type(headers: Mapping[str, str]) -> str:
    return (headers.get("content-type") or "").split(";", 1)[0].strip().lower()


def stream_error(value: Any, error_type: Any = None) -> OutcropError:
    """The error an agent reported mid-stream, as the client will see it (502)."""
    message = value if isinstance(value, str) else _encoder.encode(value).decode()
    if isinstance(error_type, str) and error_type:
        message = f"{error_type}: {message}"
    return OutcropError(
        f"the agent runtime failed mid-stream: {message}",
        502,
        code="agent_stream_error",
        aws_type="RuntimeClientError",
    )


class EventTranslator:
    """Stateful translation of one response's stream events into deltas."""

    __slots__ = (
        "produced",
        "reasoning_channel",
        "strands",
        "text_channel",
        "unrecognized",
        "usage",
    )

    def __init__(self) -> None:
        self.text_channel: str | None = None
        self.reasoning_channel: str | None = None
        self.strands = False
        self.usage: Usage | None = None
        self.produced = False
        self.unrecognized: list[Any] = []

    # -- entry points ----------------------------------------------------------------------
    def feed(self, name: str, data: bytes) -> ChatDelta | None:
        """One SSE event (or NDJSON line)."""
        if name == "error":
            raise stream_error(data.decode("utf-8", "replace"))
        stripped = data.strip()
        if not stripped:
            return self._text(data.decode("utf-8", "replace"))  # a plain-text token may be a space
        if stripped in (b"[DONE]", b"null"):  # end marker; an entrypoint's None
            return None
        if stripped[0] in _JSON_START:
            try:
                value = _decoder.decode(stripped)
            except (msgspec.DecodeError, RecursionError):
                value = data.decode("utf-8", "replace")  # text that merely starts like JSON
        else:
            value = data.decode("utf-8", "replace")  # plain text, numbers, true/false as written
        return self._value(value)

    def finish(self) -> ChatDelta | None:
        """Never end silently empty: unrecognized events become the content and a raw field."""
        if self.produced or not self.unrecognized:
            return None
        content = "\n".join(_encoder.encode(v).decode() for v in self.unrecognized)
        return ChatDelta(content=content, extra={RAW_FIELD: self.unrecognized})

    # -- values ----------------------------------------------------------------------------
    def _value(self, value: Any) -> ChatDelta | None:
        if isinstance(value, str):
            return self._text(value)
        if isinstance(value, dict):
            return self._object(value)
        text = extract_text(value)
        if text is None:
            self._keep(value)
            return None
        return self._text(text)

    def _text(self, text: str, channel: str | None = None) -> ChatDelta | None:
        if channel is not None:
            if self.text_channel is None:
                self.text_channel = channel
            elif self.text_channel != channel:
                return None  # the same text again on Strands' other channel
        if not text:
            return None
        self.produced = True
        return ChatDelta(content=text)

    def _reasoning(self, text: str, channel: str) -> ChatDelta | None:
        if self.reasoning_channel is None:
            self.reasoning_channel = channel
        elif self.reasoning_channel != channel:
            return None
        return ChatDelta(reasoning_content=text) if text else None

    def _keep(self, value: Any) -> None:
        if len(self.unrecognized) < _MAX_UNRECOGNIZED:
            self.unrecognized.append(value)

    def _object(self, obj: dict[str, Any]) -> ChatDelta | None:
        if obj.get("error") and "event" not in obj and "data" not in obj:
            raise stream_error(obj["error"], obj.get("error_type"))
        event = obj.get("event")
        if isinstance(event, dict):
            self.strands = True
            return self._strands_event(event)
        if isinstance(obj.get("data"), str):
            self.strands = True
            return self._text(obj["data"], "data")
        if isinstance(obj.get("reasoningText"), str):
            self.strands = True
            return self._reasoning(obj["reasoningText"], "data")
        if self.strands or not _STRANDS_KEYS.isdisjoint(obj):
            # Strands' lifecycle, the finished ``message`` and ``result``: already streamed.
            self.strands = True
            return None
        text = extract_text(obj)
        usage = usage_from(obj.get("usage"))
        finish = finish_from(obj)
        if text is None and usage is None and finish is None:
            self._keep(obj)
            return None
        if usage is not None:
            self.usage = usage  # the agent's own report: taken as the total so far
        if text:
            self.produced = True
        return ChatDelta(content=text or None, usage=usage, finish_reason=finish)

    def _strands_event(self, event: dict[str, Any]) -> ChatDelta | None:
        block = event.get("contentBlockDelta")
        if isinstance(block, dict):
            delta = block.get("delta") or {}
            if isinstance(delta.get("text"), str):
                return self._text(delta["text"], "event")
            reasoning = delta.get("reasoningContent")
            if isinstance(reasoning, dict) and isinstance(reasoning.get("text"), str):
                return self._reasoning(reasoning["text"], "event")
            return None  # tool input: the agent runs its own tools
        stop = event.get("messageStop")
        if isinstance(stop, dict):
            finish = finish_from(stop)
            return ChatDelta(finish_reason=finish) if finish else None
        metadata = event.get("metadata")
        if isinstance(metadata, dict):
            usage = usage_from(metadata.get("usage"))
            if usage is None:
                return None
            # One metadata event per model call of the agent loop: the call's total is the sum.
            self.usage = usage if self.usage is None else self.usage + usage
            return ChatDelta(usage=self.usage)
        return None


async def sse_deltas(response: UpstreamResponse) -> AsyncIterator[ChatDelta]:
    translator = EventTranslator()
    async for event in iter_sse(response.aiter_lines()):
        delta = translator.feed(event.name, event.data)
        if delta is not None:
            yield delta
    last = translator.finish()
    if last is not None:
        yield last


async def ndjson_deltas(response: UpstreamResponse) -> AsyncIterator[ChatDelta]:
    translator = EventTranslator()
    held: bytes | None = None  # one line behind, so the last line is known to be the last
    async for line in response.aiter_lines():
        if held is not None:
            delta = translator.feed("", held)
            if delta is not None:
                yield delta
        held = line
    if held is not None:
        _check_last_line(held)
        delta = translator.feed("", held)
        if delta is not None:
            yield delta
    last = translator.finish()
    if last is not None:
        yield last


def _check_last_line(line: bytes) -> None:
    """A last NDJSON line that starts a JSON value it never finishes was cut short (its
    newline is optional, so only the JSON can tell)."""
    stripped = line.strip()
    if stripped[:1] not in (b"{", b"["):
        return
    try:
        _decoder.decode(stripped)
    except (msgspec.DecodeError, RecursionError):
        raise OutcropError(
            "the agent runtime's NDJSON stream ended in the middle of a JSON line: the answer "
            "was cut short",
            502,
            code="truncated_upstream_stream",
            aws_type="RuntimeClientError",
        ) from None


async def json_deltas(response: UpstreamResponse) -> AsyncIterator[ChatDelta]:
    body = await response.read()
    if not body.strip():
        return
    try:
        value = _decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):
        yield ChatDelta(content=body.decode("utf-8", "replace"))  # mislabelled text
        return
    text = extract_text(value)
    usage = usage_from(value.get("usage")) if isinstance(value, dict) else None
    finish = finish_from(value) if isinstance(value, dict) else None
    if text is None:
        yield ChatDelta(
            content=body.decode("utf-8", "replace"),
            usage=usage,
            finish_reason=finish,
            extra={RAW_FIELD: value},
        )
        return
    yield ChatDelta(content=text, usage=usage, finish_reason=finish)


async def text_deltas(response: UpstreamResponse) -> AsyncIterator[ChatDelta]:
    decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a character may span chunks
    async for chunk in response.aiter_bytes():
        text = decoder.decode(chunk)
        if text:
            yield ChatDelta(content=text)
    tail = decoder.decode(b"", final=True)
    if tail:
        yield ChatDelta(content=tail)


def deltas_for(response: UpstreamResponse) -> AsyncIterator[ChatDelta]:
    kind = media_type(response.headers)
    if kind == "text/event-stream":
        return sse_deltas(response)
    if kind in ("application/x-ndjson", "application/jsonl", "application/jsonlines"):
        return ndjson_deltas(response)
    if not kind or kind == "application/json" or kind.endswith("+json"):
        return json_deltas(response)
    return text_deltas(response)
