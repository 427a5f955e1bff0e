"""The upstream's canned answers, in Bedrock's exact wire form.

Every answer is a list of *parts*: what the upstream sends at one instant. nginx serves the parts
joined (one fast static body); the delayed upstream (``slowup.py``) sends them ``delay`` seconds
apart, so the streaming probe can tell a relaying gateway from a buffering one. Each answer also
names the *marker* of every content chunk as it appears on the wire (base64 inside InvokeAgent
``chunk`` events, plain text everywhere else), which is how the probe timestamps tokens.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from outcrop.eventstream import encode_event

EVENT_STREAM = "application/vnd.amazon.eventstream"
AGENT_ID, ALIAS_ID = "BENCHAGENT", "BENCHALIAS"
MODEL_ID = "anthropic.claude-3-5-haiku-20241022-v1:0"
RUNTIME_ARN = "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/bench_{kind}-AbCdEf1234"
#: A realistic short answer in 8 chunks; every chunk is unique so each can be found on the wire.
CHUNKS = (
    "Quarterly ",
    "revenue rose 12% to $4.2M, ",
    "driven by enterprise renewals ",
    "and the new analytics tier. ",
    "Churn fell to 2.1%, ",
    "while support costs stayed flat. ",
    "Recommend expanding the ",
    "partner program in Q4.",
)
ANSWER = "".join(CHUNKS)
USAGE = (412, 57)
#: The long stream (per-event overhead): its own model id, so nginx serves it on its own path.
LONG_MODEL_ID = "anthropic.claude-3-haiku-20240307-v1:0"
LONG_EVENTS = 1000
#: One unique word per content event; the first and the last are the probe's markers.
LONG_CHUNKS = tuple(f"w{i:04d} " for i in range(LONG_EVENTS))


@dataclass(frozen=True)
class Canned:
    """One upstream answer: response headers, the parts, and each content chunk's wire marker."""

    name: str
    content_type: str
    headers: tuple[tuple[str, str], ...]
    parts: tuple[bytes, ...]
    markers: tuple[bytes, ...]

    @property
    def body(self) -> bytes:
        return b"".join(self.parts)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _json(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _agent_trace(inner: dict) -> bytes:
    return encode_event(
        "trace",
        {
            "agentId": AGENT_ID,
            "agentAliasId": ALIAS_ID,
            "agentVersion": "1",
            "sessionId": "bench-session",
            "eventTime": "2026-01-01T00:00:00.000Z",
            "trace": inner,
        },
    )


def invoke_agent() -> Canned:
    """InvokeAgent with ``enableTrace``: the orchestration traces (model input, then output with
    usage) come first, as on AWS, then one ``chunk`` event per piece of the final answer."""
    traces = _agent_trace(
        {
            "orchestrationTrace": {
                "modelInvocationInput": {
                    "traceId": "bench-trace-0",
                    "type": "ORCHESTRATION",
                    "foundationModel": MODEL_ID,
                    "text": "",
                }
            }
        }
    )
    traces += _agent_trace(
        {
            "orchestrationTrace": {
                "modelInvocationOutput": {
                    "traceId": "bench-trace-0",
                    "rawResponse": {"content": ANSWER},
                    "metadata": {"usage": {"inputTokens": USAGE[0], "outputTokens": USAGE[1]}},
                }
            }
        }
    )
    chunks = [encode_event("chunk", {"bytes": _b64(text)}) for text in CHUNKS]
    parts = (traces + chunks[0], *chunks[1:])
    headers = (
        ("x-amzn-bedrock-agent-content-type", "application/json"),
        ("x-amz-bedrock-agent-session-id", "bench-session"),
    )
    return Canned(
        "invoke_agent", EVENT_STREAM, headers, parts, tuple(_b64(t).encode() for t in CHUNKS)
    )


def converse() -> Canned:
    body = {
        "output": {"message": {"role": "assistant", "content": [{"text": ANSWER}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": USAGE[0], "outputTokens": USAGE[1], "totalTokens": sum(USAGE)},
        "metrics": {"latencyMs": 412},
    }
    return Canned("converse", "application/json", (), (_json(body),), (CHUNKS[0].encode(),))


def converse_stream(chunks: tuple[str, ...] = CHUNKS) -> Canned:
    deltas = [
        encode_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": t}})
        for t in chunks
    ]
    tail = (
        encode_event("contentBlockStop", {"contentBlockIndex": 0})
        + encode_event("messageStop", {"stopReason": "end_turn"})
        + encode_event(
            "metadata",
            {
                "usage": {
                    "inputTokens": USAGE[0],
                    "outputTokens": USAGE[1],
                    "totalTokens": sum(USAGE),
                },
                "metrics": {"latencyMs": 412},
            },
        )
    )
    head = encode_event("messageStart", {"role": "assistant"})
    parts = (head + deltas[0], *deltas[1:-1], deltas[-1] + tail)
    return Canned("converse_stream", EVENT_STREAM, (), parts, tuple(t.encode() for t in chunks))


def converse_stream_long() -> Canned:
    """ConverseStream with ``LONG_EVENTS`` content events; markers: the first and the last."""
    c = converse_stream(LONG_CHUNKS)
    return Canned(
        "converse_stream_long", c.content_type, (), c.parts, (c.markers[0], c.markers[-1])
    )


def runtime_json() -> Canned:
    """An AgentCore entrypoint returning a Strands message (``{"result": message}``)."""
    body = {"result": {"role": "assistant", "content": [{"text": ANSWER}]}}
    headers = (("x-amzn-bedrock-agentcore-runtime-session-id", "bench-session-" + "0" * 24),)
    return Canned(
        "runtime_json", "application/json", headers, (_json(body),), (CHUNKS[0].encode(),)
    )


def runtime_sse() -> Canned:
    """A Strands agent streamed by BedrockAgentCoreApp: ConverseStream-shaped ``event``s plus the
    ``data`` callbacks, one ``data: {json}`` SSE event each."""

    def sse(obj: object) -> bytes:
        return b"data: " + _json(obj) + b"\n\n"

    parts = []
    for i, text in enumerate(CHUNKS):
        delta = {"text": text}
        part = sse({"event": {"contentBlockDelta": {"delta": delta, "contentBlockIndex": 0}}})
        part += sse({"data": text, "delta": delta})
        if i == 0:
            part = sse({"event": {"messageStart": {"role": "assistant"}}}) + part
        parts.append(part)
    parts[-1] += (
        sse({"event": {"contentBlockStop": {"contentBlockIndex": 0}}})
        + sse({"event": {"messageStop": {"stopReason": "end_turn"}}})
        + sse(
            {
                "event": {
                    "metadata": {
                        "usage": {
                            "inputTokens": USAGE[0],
                            "outputTokens": USAGE[1],
                            "totalTokens": sum(USAGE),
                        },
                        "metrics": {"latencyMs": 412},
                    }
                }
            }
        )
        + sse({"message": {"role": "assistant", "content": [{"text": ANSWER}]}})
    )
    headers = (("x-amzn-bedrock-agentcore-runtime-session-id", "bench-session-" + "0" * 24),)
    return Canned(
        "runtime_sse", "text/event-stream", headers, tuple(parts), tuple(t.encode() for t in CHUNKS)
    )


def _claude_message() -> dict:
    return {
        "id": "msg_bdrk_bench",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-haiku-20241022",
        "content": [{"type": "text", "text": ANSWER}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": USAGE[0], "output_tokens": USAGE[1]},
    }


def claude_invoke() -> Canned:
    """InvokeModel on a Claude model: Anthropic's message JSON, token counts in headers."""
    headers = (
        ("x-amzn-bedrock-input-token-count", str(USAGE[0])),
        ("x-amzn-bedrock-output-token-count", str(USAGE[1])),
        ("x-amzn-bedrock-invocation-latency", "412"),
    )
    body = _json(_claude_message())
    return Canned("claude_invoke", "application/json", headers, (body,), (CHUNKS[0].encode(),))


def claude_invoke_stream() -> Canned:
    """InvokeModelWithResponseStream on a Claude model: one ``chunk`` event per Claude stream
    event (base64 JSON), the last carrying Bedrock's invocation metrics."""
    start = {**_claude_message(), "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": USAGE[0], "output_tokens": 1}
    head = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ]
    deltas = [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}
        for t in CHUNKS
    ]
    tail = [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": USAGE[1]},
        },
        {
            "type": "message_stop",
            "amazon-bedrock-invocationMetrics": {
                "inputTokenCount": USAGE[0],
                "outputTokenCount": USAGE[1],
                "invocationLatency": 412,
                "firstByteLatency": 120,
            },
        },
    ]

    def frames(events: list[dict]) -> bytes:
        return b"".join(encode_event("chunk", {"bytes": _b64_bytes(_json(e))}) for e in events)

    parts = [frames([*head, deltas[0]]), *(frames([d]) for d in deltas[1:-1])]
    parts.append(frames([deltas[-1], *tail]))
    headers = (("x-amzn-bedrock-content-type", "application/json"),)
    markers = tuple(_b64_bytes(_json(d)).encode() for d in deltas)
    return Canned("claude_invoke_stream", EVENT_STREAM, headers, tuple(parts), markers)


def _b64_bytes(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True)
class UpstreamRoute:
    """Which canned answer a request path gets (a regex on the decoded path, as nginx sees it)."""

    pattern: str
    canned: Canned


def upstream_routes() -> list[UpstreamRoute]:
    return [
        UpstreamRoute(
            r"^/model/[^/]*claude-3-haiku-20240307[^/]*/converse-stream$", converse_stream_long()
        ),
        UpstreamRoute(r"^/agents/[^/]+/agentAliases/[^/]+/sessions/[^/]+/text$", invoke_agent()),
        UpstreamRoute(r"^/model/[^/]+/converse$", converse()),
        UpstreamRoute(r"^/model/[^/]+/converse-stream$", converse_stream()),
        UpstreamRoute(r"^/model/[^/]+/invoke$", claude_invoke()),
        UpstreamRoute(r"^/model/[^/]+/invoke-with-response-stream$", claude_invoke_stream()),
        UpstreamRoute(r"^/runtimes/.*bench_json.*/invocations$", runtime_json()),
        UpstreamRoute(r"^/runtimes/.*bench_sse.*/invocations$", runtime_sse()),
    ]
