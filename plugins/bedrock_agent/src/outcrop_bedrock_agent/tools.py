"""Return of control <-> OpenAI tool calls.

The gateway keeps no state between requests, so everything needed to answer a ``returnControl``
(session, invocation id, action group, function or API path) travels inside the tool call id
the client echoes back in its ``role: "tool"`` message. The function name is a readable, valid
OpenAI name derived from the action group and function/API path (see docs/providers/bedrock_agent.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Any

import msgspec

from outcrop import FunctionCall, OutcropError, ToolCallDelta, decode_json

ID_PREFIX = "call_ba1"  # "ba" = bedrock agent, "1" = encoding version
_NAME_OK = re.compile(r"[^a-zA-Z0-9_-]+")
_MAX_NAME = 64
_SEPARATOR = "__"


@dataclass(frozen=True, slots=True)
class Invocation:
    """One action the agent handed back: enough to build its ``returnControlInvocationResults`` item."""

    invocation_id: str
    session_id: str
    action_group: str
    function: str = ""  # function-details action groups
    api_path: str = ""  # OpenAPI-schema action groups
    http_method: str = ""
    agent_id: str = ""

    @property
    def is_api(self) -> bool:
        return bool(self.api_path)


def encode_id(inv: Invocation) -> str:
    packed = msgspec.json.encode(
        [
            inv.invocation_id,
            inv.session_id,
            inv.action_group,
            inv.function,
            inv.api_path,
            inv.http_method,
            inv.agent_id,
        ]
    )
    return ID_PREFIX + base64.urlsafe_b64encode(packed).rstrip(b"=").decode()


def decode_id(tool_call_id: str) -> Invocation | None:
    """The invocation behind one of our tool call ids; ``None`` for any other id."""
    if not tool_call_id.startswith(ID_PREFIX):
        return None
    token = tool_call_id[len(ID_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        fields = msgspec.json.decode(raw, type=tuple[str, str, str, str, str, str, str])
    except (binascii.Error, ValueError, msgspec.DecodeError):
        return None
    return Invocation(*fields)


def function_name(action_group: str, *target: str) -> str:
    """``{actionGroup}__{function}`` or ``{actionGroup}__{method}_{apiPath}``, made valid.

    Runs of characters outside ``[a-zA-Z0-9_-]`` become one ``_`` (trimmed at the ends of each
    part); names longer than 64 are cut and end with 8 hex digits of a hash, so that different
    actions keep different names.
    """
    name = _clean(action_group) + _SEPARATOR + "_".join(_clean(t) for t in target)
    if len(name) <= _MAX_NAME:
        return name
    digest = hashlib.sha256("\0".join((action_group, *target)).encode()).hexdigest()[:8]
    return f"{name[: _MAX_NAME - 9]}_{digest}"


def _clean(text: str) -> str:
    return _NAME_OK.sub("_", text).strip("_") or "_"


def split_function_name(name: str) -> tuple[str, str] | None:
    """Reverse ``function_name`` for function-details actions: ``(actionGroup, function)``.

    Action group and function names match ``([0-9a-zA-Z][_-]?){1,100}``, so they never contain
    ``__`` and the first ``__`` separates them.
    """
    group, sep, function = name.partition(_SEPARATOR)
    return (group, function) if sep and group and function else None


def _typed(kind: str | None, value: Any) -> Any:
    """InvokeAgent sends every parameter value as a string; give JSON its real type back."""
    if not isinstance(value, str):
        return value
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
        if kind == "boolean" and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if kind in ("array", "object"):
            return decode_json(value)
    except (ValueError, msgspec.DecodeError):
        pass  # keep what the agent sent
    return value


def _params(items: Any) -> dict[str, Any]:
    return {
        p["name"]: _typed(p.get("type"), p.get("value"))
        for p in items or ()
        if isinstance(p, dict) and isinstance(p.get("name"), str)
    }


def tool_calls(payload: dict[str, Any], session_id: str) -> list[ToolCallDelta]:
    """A ``returnControl`` event payload -> one OpenAI tool call per invocation input."""
    invocation_id = str(payload.get("invocationId", ""))
    calls: list[ToolCallDelta] = []
    for item in payload.get("invocationInputs") or ():
        if not isinstance(item, dict):
            continue
        fn = item.get("functionInvocationInput")
        api = item.get("apiInvocationInput")
        if isinstance(fn, dict):
            inv = Invocation(
                invocation_id,
                session_id,
                str(fn.get("actionGroup", "")),
                function=str(fn.get("function", "")),
                agent_id=str(fn.get("agentId") or ""),
            )
            name = function_name(inv.action_group, inv.function)
            args = _params(fn.get("parameters"))
        elif isinstance(api, dict):
            inv = Invocation(
                invocation_id,
                session_id,
                str(api.get("actionGroup", "")),
                api_path=str(api.get("apiPath", "")),
                http_method=str(api.get("httpMethod", "")),
                agent_id=str(api.get("agentId") or ""),
            )
            name = function_name(inv.action_group, inv.http_method.lower(), inv.api_path)
            args = _params(api.get("parameters"))
            request_body = api.get("requestBody")
            content = request_body.get("content") if isinstance(request_body, dict) else None
            body = next(iter(content.values()), None) if isinstance(content, dict) else None
            if isinstance(body, dict) and body.get("properties"):
                args["requestBody"] = _params(body["properties"])
        else:
            continue  # an input kind this plugin does not know: nothing the client could answer
        calls.append(
            ToolCallDelta(
                index=len(calls),
                id=encode_id(inv),
                type="function",
                function=FunctionCall(name=name, arguments=msgspec.json.encode(args).decode()),
            )
        )
    return calls


# -- the client's answers --------------------------------------------------------------------

_ENVELOPE_KEYS = frozenset({"body", "confirmationState", "responseState", "httpStatusCode"})
_ENVELOPE_MARKERS = frozenset({"confirmationState", "responseState", "httpStatusCode"})


def _envelope(content: str) -> dict[str, Any] | None:
    """``{"body": ..., "confirmationState": "CONFIRM"}``-style tool content (documented)."""
    if not content.startswith("{"):
        return None
    try:
        data = decode_json(content)
    except msgspec.DecodeError:  # not JSON, or nested too deep: plain content
        return None
    if (
        isinstance(data, dict)
        and data
        and set(data) <= _ENVELOPE_KEYS
        and set(data) & _ENVELOPE_MARKERS
    ):
        return data
    return None


def invocation_result(inv: Invocation, content: str, where: str) -> dict[str, Any]:
    """One ``returnControlInvocationResults`` item for a ``role: "tool"`` message."""
    env = _envelope(content)
    body = content if env is None else env.get("body")
    if body is not None and not isinstance(body, str):
        body = msgspec.json.encode(body).decode()
    result: dict[str, Any] = {"actionGroup": inv.action_group}
    if inv.agent_id:
        result["agentId"] = inv.agent_id
    for key in ("confirmationState", "responseState"):
        if env is not None and env.get(key) is not None:
            result[key] = env[key]
    if inv.is_api:
        result.update(apiPath=inv.api_path, httpMethod=inv.http_method)
        status = env.get("httpStatusCode", 200) if env is not None else 200
        if not isinstance(status, int) or isinstance(status, bool):
            raise OutcropError(f"{where}: httpStatusCode must be an integer", 400, param=where)
        result["httpStatusCode"] = status
        if body is not None:
            result["responseBody"] = {"application/json": {"body": body}}
        return {"apiResult": result}
    result["function"] = inv.function
    if body is not None:
        result["responseBody"] = {"TEXT": {"body": body}}
    return {"functionResult": result}
