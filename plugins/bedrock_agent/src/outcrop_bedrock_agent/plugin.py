"""The hooks: ``bedrock/agent/{AGENT_ID}/{ALIAS_ID}`` served by bedrock-agent-runtime InvokeAgent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import msgspec

import outcrop
from outcrop import (
    SESSION_HEADER,
    ChatCall,
    ChatDelta,
    DeploymentParams,
    ModelPrefix,
    ModelRoute,
    OutcropError,
    UpstreamRequest,
    UpstreamResponse,
)

from .errors import http_error
from .ids import (
    EXAMPLE_MODEL,
    PREFIX,
    PROVIDER,
    SERVICE,
    SESSION_FIELD,
    SESSION_FIELD_AWS,
    SIGNING_NAME,
    new_session_id,
    parse_model,
    requested_session_id,
    valid_session_id,
)
from .messages import SYSTEM_ROLES, AgentTurn, read_turn
from .params import AgentParams, parse_params
from .stream import StreamOptions, agent_deltas

DISTRIBUTION = "outcrop-bedrock-agent"
#: OpenAI parameters honoured besides the basic ones. ``tools`` is accepted and not sent: the
#: agent's action groups define its tools. ``tool_choice`` may only be "auto".
SUPPORTED_PARAMS = frozenset({"tools", "tool_choice"})
_STATE_KEY = "bedrock_agent"
_MEMORY_HEADER = "x-amz-bedrock-agent-memory-id"
_encode = msgspec.json.Encoder().encode


@outcrop.hookimpl
def outcrop_register_models(register: Callable[[ModelPrefix], None]) -> None:
    register(ModelPrefix(PREFIX, "Bedrock Agents (InvokeAgent)", EXAMPLE_MODEL, DISTRIBUTION))


@outcrop.hookimpl
def outcrop_parse_route(model: str, params: DeploymentParams) -> ModelRoute:
    agent_id, alias_id = parse_model(model)
    if params.extra:  # deployment config: refuse unknown keys at start-up, not per request
        shared = sorted(k for k in (SESSION_FIELD, SESSION_FIELD_AWS) if k in params.extra)
        if shared:
            raise OutcropError(
                "a session belongs to one conversation; clients send it with each request",
                400,
                param=shared[0],
            )
        parse_params(
            params.extra
        )  # the core reports errors at model_list[i].litellm_params.<param>
    return ModelRoute(
        provider=PROVIDER,
        service=SERVICE,
        signing_name=SIGNING_NAME,
        supported_params=SUPPORTED_PARAMS,
        data={"agent_id": agent_id, "alias_id": alias_id},
        resource=agent_id,
    )


@outcrop.hookimpl
def outcrop_translate_request(call: ChatCall) -> UpstreamRequest:
    choice = call.request.tool_choice
    if choice is not None and choice != "auto" and (call.request.tools or choice != "none"):
        raise OutcropError(
            'Bedrock agents choose their own actions: `tool_choice` may only be "auto"',
            400,
            param="tool_choice",
            code="unsupported_params",
        )
    params = parse_params(call.provider_params)
    explicit = requested_session_id(call.provider_params, call.headers)
    turn = read_turn(
        call.request.messages,
        drop_system=call.drop_params,
        file_use_case=params.file_use_case,
        invocation_id=params.session_state.get("invocationId"),
        session_id=explicit,
    )
    if call.drop_params and any(m.role in SYSTEM_ROLES for m in call.request.messages):
        call.drop("system message")  # the agent's instructions are its configuration
    session_id = _session_for(turn, params, explicit)
    call.response_headers[SESSION_HEADER] = session_id
    call.response_fields[SESSION_FIELD] = session_id
    body = _body(call, params, turn, new_session=explicit is None and turn.invocation is None)
    headers = {"Content-Type": "application/json"}
    if params.source_arn:
        headers["x-amz-source-arn"] = params.source_arn
    call.state[_STATE_KEY] = StreamOptions(session_id, params.want_traces, params.include_reasoning)
    data = call.route.data
    url = (
        f"{call.endpoint}/agents/{data['agent_id']}/agentAliases/{data['alias_id']}"
        f"/sessions/{quote(session_id, safe='-._~')}/text"
    )
    return UpstreamRequest("POST", url, headers, _encode(body))


def _session_for(turn: AgentTurn, params: AgentParams, explicit: str | None) -> str:
    """The client's session, the one its tool results belong to, or a new one."""
    inv = turn.invocation
    if inv is None:
        return explicit or new_session_id()
    if not valid_session_id(inv.session_id) or not inv.invocation_id:
        raise OutcropError(
            "a tool_call_id does not name a valid agent session",
            400,
            param="messages",
            code="unknown_tool_call",
        )
    if explicit is not None and explicit != inv.session_id:
        raise OutcropError(
            "the tool results answer a return of control from another session than `session_id`",
            400,
            param=SESSION_FIELD,
            code="session_mismatch",
        )
    if "returnControlInvocationResults" in params.session_state:
        raise OutcropError(
            'send tool results either as `role: "tool"` messages or as '
            "`returnControlInvocationResults`, not both",
            400,
            param="returnControlInvocationResults",
        )
    return inv.session_id


def _body(
    call: ChatCall, params: AgentParams, turn: AgentTurn, *, new_session: bool
) -> dict[str, Any]:
    body: dict[str, Any] = dict(params.body)
    # Traces are the only place InvokeAgent reports tokens: always ask for them. The client
    # gets them back only when it set enableTrace itself (see stream.StreamOptions).
    body["enableTrace"] = True
    if turn.input_text is not None:
        body["inputText"] = turn.input_text
    if call.stream:
        body["streamingConfigurations"] = {
            **body.get("streamingConfigurations", {}),
            "streamFinalResponse": True,
        }
    state = dict(params.session_state)
    if turn.invocation is not None:
        # The answered invocation names itself: a deployment-wide invocationId must not clash.
        state["invocationId"] = turn.invocation.invocation_id
        state["returnControlInvocationResults"] = turn.results
    if turn.files:
        state["files"] = [*state.get("files", ()), *turn.files]
    send_history = params.send_history if params.send_history is not None else new_session
    if send_history and turn.history and "conversationHistory" not in state:
        state["conversationHistory"] = {"messages": turn.history}
    if state:
        body["sessionState"] = state
    return body


@outcrop.hookimpl
def outcrop_translate_response(
    call: ChatCall, response: UpstreamResponse
) -> AsyncIterator[ChatDelta]:
    memory = response.headers.get(_MEMORY_HEADER)
    if memory:
        call.response_fields["memory_id"] = memory
    return agent_deltas(response, call.state[_STATE_KEY])


@outcrop.hookimpl
def outcrop_map_error(
    call: ChatCall, status: int, body: bytes, headers: dict[str, str]
) -> Exception | None:
    return http_error(status, body, headers)
