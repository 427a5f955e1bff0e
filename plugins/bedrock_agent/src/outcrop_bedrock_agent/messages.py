"""OpenAI ``messages`` -> InvokeAgent's ``inputText``, ``conversationHistory``, ``files`` and
``returnControlInvocationResults``.

InvokeAgent takes one user turn per call; the agent's session remembers the rest. The last
message is the turn (a user message, or the ``role: "tool"`` answers to a return of control);
earlier messages are history, sent only when the session is new (see ``plugin.py``).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from outcrop import Message, OutcropError, clip

from .tools import Invocation, decode_id, invocation_result, split_function_name

MAX_FILE_BYTES = 10 * 1024 * 1024  # sessionState.files[].source.byteContent.data
FILE_USE_CASES = ("CHAT", "CODE_INTERPRETER")
SYSTEM_ROLES = ("system", "developer")


@dataclass(slots=True)
class AgentTurn:
    """What one chat request asks of the agent."""

    input_text: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    #: The return of control being answered (its session and invocation id), if any.
    invocation: Invocation | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def read_turn(
    messages: list[Message],
    *,
    drop_system: bool,
    file_use_case: str,
    invocation_id: str | None,
    session_id: str | None,
) -> AgentTurn:
    """Split the conversation into this turn and the earlier history; 400 for what cannot be sent.

    ``invocation_id``/``session_id`` are what the client set explicitly: they identify the
    return of control when a tool message's id is not one this plugin issued.
    """
    for i, msg in enumerate(messages):
        if msg.role in SYSTEM_ROLES and not drop_system:
            raise OutcropError(
                f"messages[{i}]: Bedrock Agents take no {msg.role} message (the agent's instructions "
                "are part of its configuration); remove it, pass context in `promptSessionAttributes`, "
                "or set `drop_params: true` to drop it",
                400,
                param=f"messages[{i}]",
                code="unsupported_message",
            )
        if msg.role not in ("user", "assistant", "tool", *SYSTEM_ROLES):
            raise OutcropError(
                f"messages[{i}]: unsupported role {clip(msg.role)!r}",
                400,
                param=f"messages[{i}].role",
            )
    indexed = [(i, m) for i, m in enumerate(messages) if m.role not in SYSTEM_ROLES]
    if not indexed:
        raise OutcropError("`messages` needs a user message", 400, param="messages")
    turn = AgentTurn()
    last_index, last = indexed[-1]
    if last.role == "tool":
        start = len(indexed)
        while start > 0 and indexed[start - 1][1].role == "tool":
            start -= 1
        _read_results(turn, indexed[start:], messages, invocation_id, session_id)
        earlier = indexed[:start]
    elif last.role == "user":
        turn.input_text = _user_text(last, last_index, turn.files, file_use_case)
        earlier = indexed[:-1]
    else:
        raise OutcropError(
            f"messages[{last_index}]: the last message must be from the user (or `tool` results); "
            f"got {clip(last.role)!r}",
            400,
            param=f"messages[{last_index}]",
        )
    turn.history = _history(m for _, m in earlier)
    return turn


def _text_parts(content: Any, where: str, *, strict: bool) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts: list[str] = []
    for j, part in enumerate(content):
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif strict:
            raise OutcropError(
                f"{where}.content[{j}]: only text parts are accepted here, got {clip(part.get('type'))!r}",
                400,
                param=f"{where}.content[{j}]",
                code="unsupported_content",
            )
    return "\n".join(texts)


def _user_text(msg: Message, index: int, files: list[dict[str, Any]], use_case: str) -> str:
    where = f"messages[{index}]"
    if msg.content is None or isinstance(msg.content, str):
        text = msg.content or ""
    else:
        texts: list[str] = []
        for j, part in enumerate(msg.content):
            kind = part.get("type")
            if kind == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif kind == "file":
                files.append(_file(part.get("file"), f"{where}.content[{j}]", len(files), use_case))
            else:
                raise OutcropError(
                    f"{where}.content[{j}]: Bedrock Agents accept text and files (a `file` part "
                    f"with base64 `file_data`), not {clip(kind)!r}",
                    400,
                    param=f"{where}.content[{j}]",
                    code="unsupported_content",
                )
        text = "\n".join(texts)
    if not text.strip():
        raise OutcropError(
            f"{where}: the user message has no text for the agent", 400, param=f"{where}.content"
        )
    return text


def _file(spec: Any, where: str, number: int, use_case: str) -> dict[str, Any]:
    """An OpenAI ``file`` part (``data:<type>;base64,<data>``) -> a ``sessionState.files`` item."""
    data_url = spec.get("file_data") if isinstance(spec, dict) else None
    if not isinstance(data_url, str) or not data_url.startswith("data:"):
        raise OutcropError(
            f"{where}: a file must carry `file_data` as a base64 data URL "
            "(data:<media type>;base64,<data>); uploaded file ids are not supported",
            400,
            param=where,
            code="unsupported_content",
        )
    header, sep, data = data_url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not sep or encoding != "base64" or not media_type:
        raise OutcropError(
            f"{where}: `file_data` must be data:<media type>;base64,<data>", 400, param=where
        )
    try:
        size = len(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise OutcropError(f"{where}: `file_data` is not valid base64", 400, param=where) from exc
    if size > MAX_FILE_BYTES:
        raise OutcropError(
            f"{where}: files sent to an agent are limited to 10 MiB", 400, param=where
        )
    name = spec.get("filename") or f"file{number + 1}"
    return {
        "name": str(name),
        "source": {
            "sourceType": "BYTE_CONTENT",
            "byteContent": {"data": data, "mediaType": media_type},
        },
        "useCase": use_case,
    }


def _read_results(
    turn: AgentTurn,
    tools: list[tuple[int, Message]],
    messages: list[Message],
    invocation_id: str | None,
    session_id: str | None,
) -> None:
    for index, msg in tools:
        where = f"messages[{index}]"
        if not msg.tool_call_id:
            raise OutcropError(
                f"{where}: a tool message needs `tool_call_id`", 400, param=f"{where}.tool_call_id"
            )
        inv = decode_id(msg.tool_call_id) or _from_name(
            msg.tool_call_id, messages, invocation_id, session_id, where
        )
        if turn.invocation is None:
            turn.invocation = inv
        elif (inv.invocation_id, inv.session_id) != (
            turn.invocation.invocation_id,
            turn.invocation.session_id,
        ):
            raise OutcropError(
                f"{where}: all tool results of one request must answer the same return of control",
                400,
                param=f"{where}.tool_call_id",
            )
        content = _text_parts(msg.content, where, strict=True)
        turn.results.append(invocation_result(inv, content, where))


def _from_name(
    tool_call_id: str,
    messages: list[Message],
    invocation_id: str | None,
    session_id: str | None,
    where: str,
) -> Invocation:
    """A tool call id we did not issue: find its call in the history and reverse the name."""
    name = next(
        (
            tc.function.name
            for m in messages
            if m.role == "assistant"
            for tc in m.tool_calls or ()
            if tc.id == tool_call_id
        ),
        None,
    )
    parsed = split_function_name(name) if name else None
    if parsed is None or not invocation_id or not session_id:
        raise OutcropError(
            f"{where}: unknown `tool_call_id`; send back the id of a tool call this gateway "
            "returned (or, for a function action, name it {actionGroup}__{function} and set "
            "`invocationId` and `session_id`)",
            400,
            param=f"{where}.tool_call_id",
            code="unknown_tool_call",
        )
    return Invocation(invocation_id, session_id, parsed[0], function=parsed[1])


def _history(messages: Any) -> list[dict[str, Any]]:
    """Earlier user/assistant text as ``conversationHistory.messages`` (same roles merged)."""
    out: list[dict[str, Any]] = []
    for msg in messages:
        if msg.role not in ("user", "assistant"):
            continue  # tool traffic of past turns has no place in conversationHistory
        text = _text_parts(msg.content, "", strict=False)
        if not text:
            continue
        if out and out[-1]["role"] == msg.role:
            out[-1]["content"][0]["text"] += "\n" + text
        else:
            out.append({"role": msg.role, "content": [{"text": text}]})
    return out
