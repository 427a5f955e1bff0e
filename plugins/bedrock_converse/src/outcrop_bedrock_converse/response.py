"""Converse JSON and ConverseStream events -> ``ChatDelta``s.

Every stream event that carries something for the client becomes a delta the moment it is
decoded: text, reasoning, a tool call's start and each piece of its arguments. The forced tool
behind ``response_format`` is unwrapped: its input is the answer's ``content``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec

from outcrop import (
    ChatDelta,
    FunctionCall,
    OutcropError,
    PromptTokensDetails,
    ToolCallDelta,
    UpstreamResponse,
    Usage,
)

from .errors import stream_error
from .request import Sent

FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
_json = msgspec.json.Decoder()
_encode = msgspec.json.Encoder().encode


def _count(node: dict[str, Any], key: str) -> int:
    value = node.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_from(node: Any) -> Usage | None:
    """Converse ``usage`` -> OpenAI usage; cache reads and writes count as prompt tokens."""
    if not isinstance(node, dict):
        return None
    read, written = _count(node, "cacheReadInputTokens"), _count(node, "cacheWriteInputTokens")
    prompt = _count(node, "inputTokens") + read + written
    completion = _count(node, "outputTokens")
    return Usage(prompt, completion, prompt + completion, PromptTokensDetails(read, written))


def thinking_block(content: dict[str, Any]) -> dict[str, Any]:
    """A ``reasoningContent`` block -> LiteLLM's ``thinking_blocks`` item (signature kept)."""
    if "redactedContent" in content:
        return {"type": "redacted_thinking", "data": content["redactedContent"]}
    text = content.get("reasoningText") or {}
    block = {"type": "thinking", "thinking": text.get("text", "")}
    if text.get("signature"):
        block["signature"] = text["signature"]
    return block


def finish_reason(stop_reason: Any, sent: Sent, answered_by_json_tool: bool) -> str:
    if answered_by_json_tool and stop_reason == "tool_use":
        return "stop"  # the forced tool was the answer, not a call for the client to run
    return FINISH.get(stop_reason, "stop")


def _extra(node: dict[str, Any]) -> dict[str, Any] | None:
    fields = node.get("additionalModelResponseFields")
    return {"additional_model_response_fields": fields} if fields else None


async def from_converse(response: UpstreamResponse, sent: Sent) -> AsyncIterator[ChatDelta]:
    """A ``Converse`` JSON answer -> one delta (or a 502 when it is not Converse's shape)."""
    try:
        data = _json.decode(await response.read())
        blocks = data["output"]["message"]["content"]
    except (msgspec.DecodeError, KeyError, TypeError) as exc:
        raise OutcropError(f"Bedrock sent an answer that is not Converse's: {exc}", 502) from exc
    text: list[str] = []
    reasoning: list[str] = []
    thinking: list[dict[str, Any]] = []
    calls: list[ToolCallDelta] = []
    by_json_tool = False
    for block in blocks if isinstance(blocks, list) else ():
        if "text" in block:
            text.append(block["text"])
        elif "reasoningContent" in block:
            thought = thinking_block(block["reasoningContent"] or {})
            reasoning.append(thought.get("thinking", ""))
            thinking.append(thought)
        elif "toolUse" in block:
            use = block["toolUse"]
            arguments = _encode(use.get("input", {})).decode()
            if sent.json_tool is not None and use.get("name") == sent.json_tool:
                text.append(arguments)
                by_json_tool = True
            else:
                calls.append(
                    ToolCallDelta(
                        len(calls),
                        use.get("toolUseId"),
                        "function",
                        FunctionCall(use.get("name", ""), arguments),
                    )
                )
    yield ChatDelta(
        content="".join(text) if text or not calls else None,
        reasoning_content="".join(reasoning) or None,
        thinking_blocks=thinking or None,
        tool_calls=calls or None,
        finish_reason=finish_reason(data.get("stopReason"), sent, by_json_tool),
        usage=usage_from(data.get("usage")),
        model=sent.model_id,
        extra=_extra(data),
    )


class _StreamState:
    """Which content block is which: tool-call ordinals and the forced JSON tool's block."""

    __slots__ = ("by_json_tool", "json_block", "reasoning", "tools")

    def __init__(self) -> None:
        self.tools: dict[int, int] = {}  # contentBlockIndex -> tool-call index
        self.json_block: int | None = None
        self.by_json_tool = False
        #: contentBlockIndex -> the reasoning block so far (text, signature, redacted data)
        self.reasoning: dict[int, dict[str, Any]] = {}


def _on_event(
    kind: str | None, data: dict[str, Any], sent: Sent, state: _StreamState
) -> ChatDelta | None:
    if kind == "contentBlockDelta":
        delta = data.get("delta") or {}
        if "text" in delta:
            return ChatDelta(content=delta["text"])
        if "toolUse" in delta:
            piece = delta["toolUse"].get("input", "")
            block = data.get("contentBlockIndex")
            if block == state.json_block:
                return ChatDelta(content=piece)
            index = state.tools.get(block)  # type: ignore[arg-type]
            if index is None:
                return None
            return ChatDelta(tool_calls=[ToolCallDelta(index, function=FunctionCall("", piece))])
        if "reasoningContent" in delta:
            piece = delta["reasoningContent"]
            so_far = state.reasoning.setdefault(data.get("contentBlockIndex", -1), {})
            if "redactedContent" in piece:
                so_far["redactedContent"] = piece["redactedContent"]
            if "signature" in piece:
                so_far.setdefault("reasoningText", {"text": ""})["signature"] = piece["signature"]
            thought = piece.get("text")
            if not thought:
                return None
            text = so_far.setdefault("reasoningText", {"text": ""})
            text["text"] += thought
            return ChatDelta(reasoning_content=thought)
        return None
    if kind == "contentBlockStop":
        done = state.reasoning.pop(data.get("contentBlockIndex", -1), None)
        return ChatDelta(thinking_blocks=[thinking_block(done)]) if done else None
    if kind == "contentBlockStart":
        use = (data.get("start") or {}).get("toolUse")
        if not use:
            return None
        block = data.get("contentBlockIndex")
        if sent.json_tool is not None and use.get("name") == sent.json_tool:
            state.json_block, state.by_json_tool = block, True
            return None
        index = state.tools[block] = len(state.tools)  # type: ignore[index]
        return ChatDelta(
            tool_calls=[
                ToolCallDelta(
                    index, use.get("toolUseId"), "function", FunctionCall(use.get("name", ""), "")
                )
            ]
        )
    if kind == "messageStop":
        return ChatDelta(
            finish_reason=finish_reason(data.get("stopReason"), sent, state.by_json_tool),
            extra=_extra(data),
        )
    if kind == "metadata":
        return ChatDelta(usage=usage_from(data.get("usage")))
    return None  # messageStart


async def from_stream(response: UpstreamResponse, sent: Sent) -> AsyncIterator[ChatDelta]:
    """``ConverseStream`` events -> deltas, each yielded as soon as its frame is decoded."""
    state = _StreamState()
    yield ChatDelta(model=sent.model_id)
    async for event in response.aiter_events():
        if event.message_type != "event":
            raise stream_error(event)
        try:
            data = _json.decode(event.payload) if event.payload else {}
        except msgspec.DecodeError as exc:
            raise OutcropError(
                f"Bedrock sent a malformed ConverseStream event: {exc}", 502
            ) from exc
        delta = _on_event(event.event_type, data, sent, state)
        if delta is not None:
            yield delta
