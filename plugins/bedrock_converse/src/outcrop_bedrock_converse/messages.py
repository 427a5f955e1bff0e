"""OpenAI chat messages -> Converse ``system`` blocks and ``messages``.

* ``system`` and ``developer`` messages become system blocks (in order, wherever they are).
* ``assistant`` ``tool_calls`` become ``toolUse`` blocks, its ``thinking_blocks`` signed
  ``reasoningContent`` blocks; ``tool`` messages become ``toolResult`` blocks in a user turn.
* Consecutive messages of one role are merged into one turn, as Converse requires
  (parallel tool results therefore share one user turn).
"""

from __future__ import annotations

from typing import Any

import msgspec

from outcrop import Message, OutcropError, clip

from .content import Attachments, text_parts, user_parts

_json = msgspec.json.Decoder()


def _bad(message: str, param: str) -> OutcropError:
    return OutcropError(message, 400, param=param, code="invalid_messages")


def _tool_uses(message: Message, param: str) -> list[dict[str, Any]]:
    blocks = []
    for i, call in enumerate(message.tool_calls or ()):
        raw = call.function.arguments or "{}"
        try:
            arguments = _json.decode(raw)
        except msgspec.DecodeError:
            arguments = None
        if not isinstance(arguments, dict):
            raise _bad(
                f"{param}.tool_calls[{i}].function.arguments: must be a JSON object, "
                f"got {raw[:80]!r}",
                param,
            )
        blocks.append(
            {"toolUse": {"toolUseId": call.id, "name": call.function.name, "input": arguments}}
        )
    return blocks


def _reasoning(message: Message, param: str) -> list[dict[str, Any]]:
    """``thinking_blocks`` sent back with an assistant turn -> ``reasoningContent`` blocks."""
    blocks = []
    for i, block in enumerate(message.thinking_blocks or ()):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "thinking" and isinstance(block.get("thinking"), str):
            text: dict[str, Any] = {"text": block["thinking"]}
            if isinstance(block.get("signature"), str):
                text["signature"] = block["signature"]
            blocks.append({"reasoningContent": {"reasoningText": text}})
        elif kind == "redacted_thinking" and isinstance(block.get("data"), str):
            blocks.append({"reasoningContent": {"redactedContent": block["data"]}})
        else:
            raise _bad(
                f'{param}.thinking_blocks[{i}]: expected {{"type": "thinking", '
                '"thinking", "signature"} or {"type": "redacted_thinking", '
                '"data"}',
                param,
            )
    return blocks


def _tool_result(message: Message, param: str) -> dict[str, Any]:
    if not message.tool_call_id:
        raise _bad(f"{param}.tool_call_id: required on tool messages", param)
    content = text_parts(message.content, f"{param}.content")
    texts = [b for b in content if "text" in b] or [{"text": ""}]
    return {"toolResult": {"toolUseId": message.tool_call_id, "content": texts}}


def convert(
    messages: list[Message], fetched: dict[str, tuple[str, bytes]] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, Converse messages) for an OpenAI message list; ``fetched`` holds the
    image URLs fetched for it (``url -> (media type, bytes)``)."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    seen = Attachments(fetched)
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        role = message.role
        if role in ("system", "developer"):
            system.extend(text_parts(message.content, f"{param}.content"))
            continue
        if role == "user":
            blocks = user_parts(message.content, f"{param}.content", seen)
        elif role == "assistant":
            blocks = _reasoning(message, param)  # reasoning comes first in the turn
            blocks += text_parts(message.content, f"{param}.content", allow=("text", "refusal"))
            blocks += _tool_uses(message, param)
            role = "assistant"
        elif role == "tool":
            blocks, role = [_tool_result(message, param)], "user"
        else:
            raise _bad(
                f"{param}.role: {clip(role)!r} is not supported (system, developer, user, "
                "assistant and tool are)",
                f"{param}.role",
            )
        if not blocks:
            continue  # an empty message adds nothing; Converse rejects empty turns
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if not turns:
        raise _bad(
            "messages: at least one user message is required (Bedrock Converse takes "
            "system messages only besides a conversation)",
            "messages",
        )
    return system, turns
