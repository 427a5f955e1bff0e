"""Claude on Bedrock: the Anthropic Messages body InvokeModel takes, and scripted answers.

Bedrock checks an Anthropic body itself (the InvokeModel ``body`` is an opaque blob to the
service model). For a Messages API body: ``anthropic_version`` must be ``bedrock-2023-05-31``,
``messages`` and (for InvokeModel) ``max_tokens`` (at least 1) are required, a top-level key Claude does not know is refused
("extraneous key"), and so is an ``anthropic_beta`` value Bedrock does not offer. The simulator
answers those mistakes with Bedrock's ValidationException messages. ``ClaudeReply`` scripts an
answer (text, tool calls, thinking, prompt-cache usage, a mid-stream exception) as the JSON
InvokeModel returns and as the chunk events of InvokeModelWithResponseStream.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from .recorded import RecordedRequest
from .replies import InvokeReply, Rendered, ToolUse, _require, split_words

BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"
#: Top-level keys of Claude's InvokeModel body.
BODY_KEYS = frozenset(
    {
        "anthropic_version",
        "anthropic_beta",
        "max_tokens",
        "messages",
        "system",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "metadata",
        "output_config",
        "context_management",
    }
)
#: The ``anthropic_beta`` values Bedrock's Claude models accept.
BEDROCK_BETAS = frozenset(
    {
        "computer-use-2024-10-22",
        "computer-use-2025-01-24",
        "computer-use-2025-11-24",
        "token-efficient-tools-2025-02-19",
        "interleaved-thinking-2025-05-14",
        "output-128k-2025-02-19",
        "dev-full-thinking-2025-05-14",
        "context-1m-2025-08-07",
        "context-management-2025-06-27",
        "effort-2025-11-24",
        "tool-search-tool-2025-10-19",
        "tool-examples-2025-10-29",
        "fine-grained-tool-streaming-2025-05-14",
    }
)
#: The ``context_management`` edits Bedrock's InvokeModel accepts (others are refused).
CONTEXT_EDITS = frozenset({"compact_20260112"})
_MALFORMED = "Malformed input request: {}, please reformat your input and try again."


def is_claude(model_id: str) -> bool:
    """A Claude model id, with or without an inference-profile prefix (``us.``...)."""
    return model_id.startswith("anthropic.") or ".anthropic." in model_id.split(":", 1)[0]


def check_body(body: bytes, *, invoke: bool = True) -> str | None:
    """Bedrock's complaint about a Claude InvokeModel body, ``None`` when it is fine."""
    try:
        data = json.loads(body)
    except ValueError:
        return "Malformed input request, please reformat your input and try again."
    if not isinstance(data, dict):
        return _MALFORMED.format("#: expected type: JSONObject")
    if "messages" not in data and "anthropic_version" not in data:
        return None  # not the Messages API (Claude 2's text completions take a prompt)
    for key in data:
        if key not in BODY_KEYS:
            return _MALFORMED.format(f"#: extraneous key [{key}] is not permitted")
    required = ("anthropic_version", "messages", "max_tokens") if invoke else ("messages",)
    for key in required:
        if key not in data:
            return _MALFORMED.format(f"#: required key [{key}] not found")
    if data.get("anthropic_version", BEDROCK_ANTHROPIC_VERSION) != BEDROCK_ANTHROPIC_VERSION:
        return f"Invalid API version: {data['anthropic_version']}"
    betas = data.get("anthropic_beta", [])
    if not isinstance(betas, list) or any(b not in BEDROCK_BETAS for b in betas):
        return "invalid beta flag"
    if not isinstance(data["messages"], list):
        return _MALFORMED.format("#/messages: expected type: JSONArray")
    edits = (data.get("context_management") or {}).get("edits") or []
    if any(not isinstance(e, dict) or e.get("type") not in CONTEXT_EDITS for e in edits):
        return "context_management: Extra inputs are not permitted"
    tokens = data.get("max_tokens", 1)
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 1:
        return _MALFORMED.format("#/max_tokens: expected minimum: 1")
    return None


def check_request(request: RecordedRequest) -> str | None:
    """The body check for a Claude InvokeModel*/CountTokens request, else ``None``."""
    model_id = request.params.get("modelId", "")
    if not is_claude(model_id):
        return None
    if request.operation in ("InvokeModel", "InvokeModelWithResponseStream"):
        return check_body(request.body)
    if request.operation == "CountTokens":
        try:
            blob = json.loads(request.body)["input"]["invokeModel"]["body"]
            inner = base64.b64decode(blob, validate=True)
        except (ValueError, KeyError, TypeError):
            return None  # the converse form, checked by the service model
        return check_body(inner, invoke=False)  # counting needs no max_tokens
    return None


@dataclass
class ClaudeReply:
    """Claude's answer to ``InvokeModel`` (one JSON message) or ``InvokeModelWithResponseStream``
    (``message_start``, a start/deltas/stop per content block, ``message_delta``,
    ``message_stop``, each a ``chunk`` event).

    Blocks come in Claude's order: ``thinking`` (signed), ``text``, then one ``tool_use`` per
    item of ``tool_calls`` (the stop reason then defaults to ``tool_use``). ``usage`` is
    ``(input, output)`` tokens, ``cache`` ``(read, written)`` prompt-cache tokens. ``chunks``
    splits the text (default: its words). ``exception`` (``(exception_type, message)``) ends a
    stream with an exception frame right after the first text delta.
    """

    text: str = ""
    tool_calls: list[ToolUse] = field(default_factory=list)
    thinking: str | None = None
    thinking_signature: str = "c2lnbmF0dXJlLW9mLXRoZS10aGlua2luZw=="
    usage: tuple[int, int] = (10, 5)
    cache: tuple[int, int] = (0, 0)
    stop_reason: str | None = None
    chunks: list[str] | None = None
    delay: float = 0.0
    exception: tuple[str, str] | None = None
    model: str = "claude-sonnet-4-5-20250929"
    tool_input_pieces: int = 3

    OPERATIONS = ("InvokeModel", "InvokeModelWithResponseStream")

    @property
    def stop(self) -> str:
        return self.stop_reason or ("tool_use" if self.tool_calls else "end_turn")

    def _usage(self, output: int) -> dict[str, int]:
        read, written = self.cache
        return {
            "input_tokens": self.usage[0],
            "cache_creation_input_tokens": written,
            "cache_read_input_tokens": read,
            "output_tokens": output,
        }

    def _blocks(self) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if self.thinking is not None:
            blocks.append(
                {
                    "type": "thinking",
                    "thinking": self.thinking,
                    "signature": self.thinking_signature,
                }
            )
        if self.text or not self.tool_calls:
            blocks.append({"type": "text", "text": self.text})
        blocks += [
            {"type": "tool_use", "id": t.id, "name": t.name, "input": t.input}
            for t in self.tool_calls
        ]
        return blocks

    def message(self) -> dict[str, Any]:
        return {
            "id": f"msg_bdrk_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": self._blocks(),
            "stop_reason": self.stop,
            "stop_sequence": None,
            "usage": self._usage(self.usage[1]),
        }

    def events(self) -> list[dict[str, Any]]:
        """The stream's Claude events (cut after the first text delta when ``exception``)."""
        start = {**self.message(), "content": [], "stop_reason": None, "usage": self._usage(1)}
        events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
        for index, block in enumerate(self._blocks()):
            kind = block["type"]
            if kind == "thinking":
                events.append(_block_start(index, {"type": "thinking", "thinking": ""}))
                events += [
                    _delta(index, {"type": "thinking_delta", "thinking": piece})
                    for piece in split_words(block["thinking"])
                ]
                events.append(
                    _delta(index, {"type": "signature_delta", "signature": block["signature"]})
                )
            elif kind == "text":
                events.append(_block_start(index, {"type": "text", "text": ""}))
                pieces = self.chunks if self.chunks is not None else split_words(block["text"])
                for piece in pieces:
                    events.append(_delta(index, {"type": "text_delta", "text": piece}))
                    if self.exception is not None:
                        return events
            else:
                events.append(
                    _block_start(
                        index,
                        {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}},
                    )
                )
                arguments = json.dumps(block["input"])
                size = max(1, -(-len(arguments) // self.tool_input_pieces))
                events += [
                    _delta(
                        index,
                        {"type": "input_json_delta", "partial_json": arguments[i : i + size]},
                    )
                    for i in range(0, len(arguments), size)
                ]
            events.append({"type": "content_block_stop", "index": index})
        events.append(
            {
                "type": "message_delta",
                "delta": {"stop_reason": self.stop, "stop_sequence": None},
                "usage": {"output_tokens": self.usage[1]},
            }
        )
        events.append({"type": "message_stop"})
        return events

    def render(self, request: RecordedRequest) -> Rendered:
        _require(self, request, self.OPERATIONS)
        read, written = self.cache
        return InvokeReply(
            self.message(),
            list(self.events()),
            input_tokens=self.usage[0] + read + written,
            output_tokens=self.usage[1],
            delay=self.delay,
            exception=self.exception,
        ).render(request)


def _block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def _delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}
