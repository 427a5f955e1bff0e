"""Provider parameters: an allow-list of InvokeAgent members plus a few gateway switches.

They come from the deployment's config and the request body (or Python keyword arguments),
request over config, key by key. Each is checked here and put where AWS expects it; anything
else is refused with a 400 (or a config error at start-up) naming it, never its value, so
credentials or gateway settings sent by mistake never reach AWS or the logs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec

from outcrop import OutcropError, split_validation_error

from .messages import FILE_USE_CASES
from .sessions import SESSION_FIELD, SESSION_FIELD_AWS, valid_session_id

#: OpenAI parameters honoured besides the basic ones. ``tools`` is accepted and not sent: the
#: agent's action groups define its tools. ``tool_choice`` may only be "auto".
SUPPORTED_PARAMS = frozenset({"tools", "tool_choice"})


class StreamingConfigurations(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    streamFinalResponse: bool | None = None
    applyGuardrailInterval: Annotated[int, msgspec.Meta(ge=1)] | None = None


class PerformanceConfig(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    latency: Literal["standard", "optimized"] | None = None


class BedrockModelConfigurations(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    performanceConfig: PerformanceConfig | None = None


class PromptCreationConfigurations(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    excludePreviousThinkingSteps: bool | None = None
    previousConversationTurnsToInclude: Annotated[int, msgspec.Meta(ge=0)] | None = None


class SessionState(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """InvokeAgent's ``sessionState``; deep shapes are left to AWS's own validation."""

    sessionAttributes: dict[str, str] | None = None
    promptSessionAttributes: dict[str, str] | None = None
    invocationId: str | None = None
    knowledgeBaseConfigurations: list[dict[str, Any]] | None = None
    files: list[dict[str, Any]] | None = None
    conversationHistory: dict[str, Any] | None = None
    returnControlInvocationResults: list[dict[str, Any]] | None = None


#: Top-level InvokeAgent members accepted as provider parameters, with their checked type.
BODY_MEMBERS: dict[str, Any] = {
    "enableTrace": bool,
    "endSession": bool,
    "memoryId": str,
    "streamingConfigurations": StreamingConfigurations,
    "bedrockModelConfigurations": BedrockModelConfigurations,
    "promptCreationConfigurations": PromptCreationConfigurations,
}
#: ``sessionState`` members also accepted at the top level (LiteLLM's ``invocationId=...``).
_SESSION_TYPES: dict[str, Any] = {f.name: f.type for f in msgspec.structs.fields(SessionState)}
SESSION_MEMBERS: tuple[str, ...] = tuple(_SESSION_TYPES)
#: Gateway switches of this plugin (never sent to AWS).
GATEWAY_PARAMS: dict[str, Any] = {
    SESSION_FIELD: str,
    SESSION_FIELD_AWS: str,
    "include_reasoning": bool,
    "send_history": bool,
    "file_use_case": Literal["CHAT", "CODE_INTERPRETER"],
}
#: LiteLLM bookkeeping keys accepted and ignored (they select a provider, which the model does).
IGNORED = frozenset({"custom_llm_provider"})
ALLOWED = frozenset({*BODY_MEMBERS, *SESSION_MEMBERS, *GATEWAY_PARAMS, "sessionState", "sourceArn"})

_SOURCE_ARN = re.compile(
    r"arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:agent/[0-9a-zA-Z]{10}\Z"
)
_ENUM_VALUE = re.compile(r"Invalid enum value .*")
_GATEWAY_HINT = re.compile(r"^(aws_|api_|input_cost|output_cost)|^(timeout|weight|model)$")


@dataclass(slots=True)
class AgentParams:
    """Checked provider parameters, sorted by where they go."""

    body: dict[str, Any] = field(default_factory=dict)
    session_state: dict[str, Any] = field(default_factory=dict)
    source_arn: str | None = None
    want_traces: bool = False
    include_reasoning: bool = False
    send_history: bool | None = None
    file_use_case: str = FILE_USE_CASES[0]


def check_names(params: dict[str, Any]) -> None:
    unknown = sorted(k for k in params if k not in ALLOWED and k not in IGNORED)
    if not unknown:
        return
    gateway = [k for k in unknown if _GATEWAY_HINT.search(k)]
    if gateway:
        message = (
            f"gateway setting(s) {', '.join(gateway)} cannot be sent with a request: set them on "
            "the deployment (config `litellm_params`, or Python keyword arguments)"
        )
    else:
        message = (
            f"unknown Bedrock agent parameter(s): {', '.join(unknown)}. Accepted: "
            f"{', '.join(sorted(ALLOWED))} (see docs/providers/bedrock_agent.md)"
        )
    raise OutcropError(message, 400, param=unknown[0], code="unknown_parameter")


def _convert(value: Any, kind: Any, name: str) -> Any:
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        where, text = split_validation_error(exc, name)
        text = _ENUM_VALUE.sub("Invalid enum value", text)  # never echo what the client sent
        raise OutcropError(
            f"invalid `{where}`: {text}", 400, param=where, code="invalid_parameter"
        ) from exc


def parse_params(params: dict[str, Any]) -> AgentParams:
    """Check every provider parameter and sort it into body, session state and switches."""
    if not params:  # most calls: nothing to look up
        return AgentParams()
    check_names(params)
    out = AgentParams()
    for name, kind in BODY_MEMBERS.items():
        if params.get(name) is not None:
            value = _convert(params[name], kind, name)
            out.body[name] = (
                msgspec.to_builtins(value) if isinstance(value, msgspec.Struct) else value
            )
    memory = out.body.get("memoryId")
    if memory is not None and not valid_session_id(memory):
        raise OutcropError(
            "invalid `memoryId`: expected 2-100 characters of letters, digits and . _ : -",
            400,
            param="memoryId",
            code="invalid_parameter",
        )
    state = params.get("sessionState")
    if state is not None:
        out.session_state = msgspec.to_builtins(_convert(state, SessionState, "sessionState"))
    for name, kind in _SESSION_TYPES.items():  # top-level shorthands win over sessionState's
        if params.get(name) is not None:
            out.session_state[name] = _convert(params[name], kind, name)
    arn = params.get("sourceArn")
    if arn is not None:
        if not isinstance(arn, str) or not _SOURCE_ARN.match(arn):
            raise OutcropError(
                "invalid `sourceArn`: expected arn:aws:bedrock:{region}:{account}:agent/{AGENT_ID}",
                400,
                param="sourceArn",
                code="invalid_parameter",
            )
        out.source_arn = arn
    switches = {
        k: _convert(params[k], t, k) for k, t in GATEWAY_PARAMS.items() if params.get(k) is not None
    }
    out.want_traces = out.body.get("enableTrace") is True
    out.include_reasoning = bool(switches.get("include_reasoning"))
    out.send_history = switches.get("send_history")
    out.file_use_case = switches.get("file_use_case", out.file_use_case)
    return out


def check_deployment(extra: dict[str, Any]) -> None:
    """Refuse unknown or misplaced keys in a deployment's config at start-up, not per request
    (the core reports errors at ``model_list[i].litellm_params.<param>``)."""
    if not extra:
        return
    shared = sorted(k for k in (SESSION_FIELD, SESSION_FIELD_AWS) if k in extra)
    if shared:
        raise OutcropError(
            "a session belongs to one conversation; clients send it with each request",
            400,
            param=shared[0],
        )
    parse_params(extra)
