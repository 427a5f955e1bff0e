"""The AgentCore provider parameters: which exist, where they may come from, what is valid.

Provider parameters reach the plugin merged (deployment config first, request body or Python
keyword arguments over it). Every key is checked here so a typo such as ``qualifer`` is a clear
400 (or a start-up error in the config) instead of a silently ignored setting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from outcrop import ChatCall, OutcropError, clip

#: Request body field names accepted for the runtime session id (LiteLLM's docs use the first).
SESSION_PARAMS = ("runtimeSessionId", "session_id")
PAYLOAD_FORMATS = ("prompt", "messages")

#: Optional trace parameters (boto3's member names) -> (header, max length).
TRACE_PARAMS: dict[str, tuple[str, int]] = {
    "traceId": ("X-Amzn-Trace-Id", 128),
    "traceParent": ("traceparent", 128),
    "traceState": ("tracestate", 512),
    "baggage": ("baggage", 8192),
}

KNOWN = frozenset(
    {*SESSION_PARAMS, "qualifier", "runtimeUserId", "payload", "payload_format", *TRACE_PARAMS}
)

SESSION_MIN, SESSION_MAX = 33, 256
USER_ID_MAX = 1024
QUALIFIER_MAX = 256


def header_safe(value: str) -> bool:
    """Visible ASCII and inner spaces only: anything else cannot travel as an HTTP header."""
    return value == value.strip() and all(" " <= c <= "~" for c in value)


def _string(
    name: str,
    value: Any,
    low: int,
    high: int,
    *,
    allowed: Callable[[str], bool] = header_safe,
    what: str = "printable ASCII without leading or trailing spaces",
    code: str | None = None,
) -> str:
    if not isinstance(value, str):
        raise OutcropError(
            f"`{name}` must be a string, got {type(value).__name__}", 400, param=name, code=code
        )
    if not low <= len(value) <= high:
        raise OutcropError(
            f"`{name}` must be {low} to {high} characters long, got {len(value)}",
            400,
            param=name,
            code=code,
        )
    if not allowed(value):
        raise OutcropError(f"`{name}` must be {what}", 400, param=name, code=code)
    return value


def check_session_id(value: Any, name: str = "runtimeSessionId") -> str:
    """AgentCore requires 33-256 characters (a uuid4 is 36)."""
    if isinstance(value, str) and len(value) < SESSION_MIN:
        raise OutcropError(
            f"`{name}` must be {SESSION_MIN} to {SESSION_MAX} characters long (AgentCore's limit), "
            f"got {len(value)} characters; use a longer id such as a UUID, or omit it and use the "
            "generated one returned in `session_id`",
            400,
            param=name,
            code="invalid_session_id",
        )
    return _string(name, value, SESSION_MIN, SESSION_MAX, code="invalid_session_id")


def check_qualifier(value: Any) -> str:
    # It travels percent-encoded in the query, so any printable text is safe; AWS judges the name.
    return _string(
        "qualifier", value, 1, QUALIFIER_MAX, allowed=str.isprintable, what="printable text"
    )


def check_user_id(value: Any) -> str:
    return _string("runtimeUserId", value, 1, USER_ID_MAX)


def check_payload_format(value: Any) -> str:
    if value not in PAYLOAD_FORMATS:
        raise OutcropError(
            f"`payload_format` must be one of {', '.join(PAYLOAD_FORMATS)}, got {clip(value)!r}",
            400,
            param="payload_format",
        )
    return str(value)


def check_trace(name: str, value: Any) -> str:
    _, limit = TRACE_PARAMS[name]
    return _string(name, value, 0, limit)


def check_known(params: Mapping[str, Any], where: str) -> None:
    unknown = sorted(set(params) - KNOWN)
    if unknown:
        raise OutcropError(
            f"unknown AgentCore parameter(s) in the {where}: {', '.join(unknown)}; "
            f"supported: {', '.join(sorted(KNOWN))}",
            400,
            param=unknown[0],
            code="unknown_parameter",
        )


def check_deployment(extra: Mapping[str, Any]) -> None:
    """Validate a deployment's plugin keys once, at start-up."""
    check_known(extra, "deployment config")
    if extra.get("qualifier") is not None:
        check_qualifier(extra["qualifier"])
    if extra.get("runtimeUserId") is not None:
        check_user_id(extra["runtimeUserId"])
    if extra.get("payload_format") is not None:
        check_payload_format(extra["payload_format"])
    for name in SESSION_PARAMS:
        if extra.get(name) is not None:
            check_session_id(extra[name], name)
    for name in TRACE_PARAMS:
        if extra.get(name) is not None:
            check_trace(name, extra[name])


def from_request(call: ChatCall, name: str) -> Any:
    """The value the request itself set (not inherited from the deployment), or ``None``."""
    value = call.provider_params.get(name)
    if value is None:
        return None
    deployed = call.params.extra
    return value if name not in deployed or value is not deployed[name] else None


def session_from_request(call: ChatCall) -> str | None:
    """The session id the request set in the body (either name); both must agree."""
    found: dict[str, str] = {}
    for name in SESSION_PARAMS:
        value = from_request(call, name)
        if value is not None:
            found[name] = check_session_id(value, name)
    if len(set(found.values())) > 1:
        raise OutcropError(
            "`runtimeSessionId` and `session_id` disagree; send one of them",
            400,
            param="runtimeSessionId",
        )
    return next(iter(found.values()), None)


def session_from_deployment(call: ChatCall) -> str | None:
    for name in SESSION_PARAMS:
        value = call.params.extra.get(name)
        if value is not None:
            return check_session_id(value, name)
    return None
