"""InvokeAgent's event stream -> ``ChatDelta``s, each yielded the moment its frame is decoded."""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

from outcrop import ChatCall, ChatDelta, OutcropError, UpstreamResponse, Usage

from . import PROVIDER, annotations
from .errors import stream_error
from .tools import tool_calls


class _PayloadPart(msgspec.Struct):
    """A ``chunk`` event: msgspec turns the base64 ``bytes`` member into bytes directly."""

    data: bytes = msgspec.field(default=b"", name="bytes")
    attribution: dict[str, Any] | None = None


#: The memory an agent with memory enabled used; the client gets it as ``memory_id``.
MEMORY_HEADER = "x-amz-bedrock-agent-memory-id"
_chunk = msgspec.json.Decoder(_PayloadPart)
_json = msgspec.json.Decoder()


@dataclass(slots=True)
class StreamOptions:
    session_id: str
    want_traces: bool
    include_reasoning: bool
    #: The call is answered in one piece: the text of the ``chunk`` events one upstream read
    #: brought is one delta (the answer is the same, the deltas fewer: each costs the core a
    #: turn of its loop). A stream keeps one delta per ``chunk``.
    merge_text: bool = False


def _at(node: Any, *keys: str) -> Any:
    """``node[k1][k2]...`` or ``None`` when any level is missing or not an object."""
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@dataclass(slots=True)
class _TraceTotals:
    """What the traces taught so far: summed usage, the answering model, reasoning."""

    usage: Usage
    model: str | None = None
    model_rank: int = 9
    reasoning_parts: int = 0
    intervened: bool = False
    #: The foundation model each step last invoked, and the usage each model spent, so a run
    #: whose steps use different models is priced per model (``ChatDelta.usage_by_model``).
    step_models: dict[str, str] = field(default_factory=dict)
    by_model: dict[str, Usage] = field(default_factory=dict)
    unattributed: bool = False

    def read(self, trace: Any, include_reasoning: bool) -> tuple[bool, bool, str | None]:
        """Fold one trace union in; returns (usage changed, model changed, reasoning text)."""
        usage_changed = model_changed = False
        reasoning: list[str] = []
        for step, body in trace.items() if isinstance(trace, dict) else ():
            if not isinstance(body, dict):
                continue
            if step == "guardrailTrace" and body.get("action") == "INTERVENED":
                self.intervened = True
            model_in = body.get("modelInvocationInput")
            if isinstance(model_in, dict) and isinstance(model_in.get("foundationModel"), str):
                self.step_models[step] = model_in["foundationModel"]
                # The orchestration model answers the user; other steps may use smaller ones.
                rank = 0 if step == "orchestrationTrace" else 1
                if rank < self.model_rank:
                    self.model, self.model_rank, model_changed = (
                        model_in["foundationModel"],
                        rank,
                        True,
                    )
            model_out = body.get("modelInvocationOutput")
            if isinstance(model_out, dict):
                usage = _at(model_out, "metadata", "usage")
                if isinstance(usage, dict):
                    tokens_in, tokens_out = (
                        _count(usage.get("inputTokens")),
                        _count(usage.get("outputTokens")),
                    )
                    if tokens_in or tokens_out:
                        spent = Usage(tokens_in, tokens_out, tokens_in + tokens_out)
                        self.usage = self.usage + spent
                        usage_changed = True
                        spender = self.step_models.get(step) or self.model
                        if spender is None:
                            self.unattributed = True
                        else:
                            self.by_model[spender] = self.by_model.get(spender, Usage()) + spent
                thought = _at(model_out, "reasoningContent", "reasoningText", "text")
                if include_reasoning and isinstance(thought, str) and thought:
                    reasoning.append(thought)
            rationale = _at(body, "rationale", "text")
            if include_reasoning and isinstance(rationale, str) and rationale:
                reasoning.append(rationale)
        text = None
        if reasoning:
            text = ("\n" if self.reasoning_parts else "") + "\n".join(reasoning)
            self.reasoning_parts += len(reasoning)
        return usage_changed, model_changed, text


def _decode(decoder: msgspec.json.Decoder[Any], payload: bytes, kind: str | None) -> Any:
    try:
        data = decoder.decode(payload)
    except msgspec.DecodeError as exc:  # ValidationError included (e.g. bytes not base64)
        raise OutcropError(
            f"malformed {kind} event from InvokeAgent: {exc}", 502, code="malformed_upstream_event"
        ) from exc
    if not isinstance(data, dict | _PayloadPart):
        raise OutcropError(
            f"malformed {kind} event from InvokeAgent: not an object",
            502,
            code="malformed_upstream_event",
        )
    return data


async def agent_deltas(
    response: UpstreamResponse, options: StreamOptions
) -> AsyncIterator[ChatDelta]:
    """Translate the stream; an exception frame raises the mapped ``UpstreamError``."""
    totals = _TraceTotals(Usage())
    text = codecs.getincrementaldecoder("utf-8")("replace")  # a chunk may end mid-character
    saw_tools = False
    merge = options.merge_text
    held = ""  # merged text not yielded yet (merge_text)
    async for event in response.aiter_events():
        if event.message_type != "event":
            raise stream_error(event)
        kind = event.event_type
        if kind == "chunk":
            part = _decode(_chunk, event.payload, kind)
            content = text.decode(part.data)
            cited = annotations.citations(part.attribution) if part.attribution else None
            if merge:
                held += content
                if response.events_ready and not cited:
                    continue  # more events of this read are waiting
                content, held = held, ""
            if content or cited:
                yield ChatDelta(content=content or None, annotations=cited or None)
            continue
        if held:  # text comes before what follows it
            yield ChatDelta(content=held)
            held = ""
        if kind == "trace":
            payload = _decode(_json, event.payload, kind)
            usage_changed, model_changed, reasoning = totals.read(
                payload.get("trace"), options.include_reasoning
            )
            if usage_changed or model_changed or reasoning or options.want_traces:
                by_model = (
                    dict(totals.by_model) if usage_changed and not totals.unattributed else None
                )
                yield ChatDelta(
                    usage=totals.usage if usage_changed else None,
                    usage_by_model=by_model,
                    model=totals.model if model_changed else None,
                    reasoning_content=reasoning,
                    annotations=[annotations.trace(payload)] if options.want_traces else None,
                )
        elif kind == "returnControl":
            calls = tool_calls(_decode(_json, event.payload, kind), options.session_id)
            if calls:
                saw_tools = True
                yield ChatDelta(tool_calls=calls, finish_reason="tool_calls")
        elif kind == "files":
            found = annotations.files(_decode(_json, event.payload, kind))
            if found:
                yield ChatDelta(annotations=found)
        # other event types are newer than this plugin: nothing the client could use
    rest = held + text.decode(b"", final=True)
    if rest:
        yield ChatDelta(content=rest)
    if totals.intervened and not saw_tools:
        yield ChatDelta(finish_reason="content_filter")


def deltas_for(call: ChatCall, response: UpstreamResponse) -> AsyncIterator[ChatDelta]:
    """The call's deltas, with the options its request chose (``call.state``)."""
    memory = response.headers.get(MEMORY_HEADER)
    if memory:
        call.response_fields["memory_id"] = memory
    return agent_deltas(response, call.state[PROVIDER])
