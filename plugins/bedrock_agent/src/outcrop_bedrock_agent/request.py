"""Build the InvokeAgent request from a chat call.

The session is decided here (the client's, the one its tool results answer, or a new one) and
written to the call's response headers and fields, so the client gets it back even when the
call fails.
"""

from __future__ import annotations

from typing import Any

import msgspec

from outcrop import SESSION_HEADER, ChatCall, OutcropError, UpstreamRequest

from . import PROVIDER
from .messages import SYSTEM_ROLES, AgentTurn, read_turn
from .params import AgentParams, parse_params
from .response import StreamOptions
from .sessions import SESSION_FIELD, new_session_id, requested_session_id, valid_session_id

_encode = msgspec.json.Encoder().encode


def build_request(call: ChatCall) -> UpstreamRequest:
    """POST ``{endpoint}/agents/{id}/agentAliases/{alias}/sessions/{session}/text``."""
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
    call.state[PROVIDER] = StreamOptions(
        session_id, params.want_traces, params.include_reasoning, merge_text=not call.stream
    )
    data = call.route.data
    url = (
        f"{call.endpoint}/agents/{data['agent_id']}/agentAliases/{data['alias_id']}"
        f"/sessions/{_quote_session(session_id)}/text"
    )
    return UpstreamRequest("POST", url, headers, _encode(body))


def _quote_session(session_id: str) -> str:
    """``quote(session_id, safe="-._~")`` for a valid session id (``[0-9a-zA-Z._:-]``: only the
    colon is escaped), without ``quote``'s cost."""
    return session_id.replace(":", "%3A")


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
    # gets them back only when it set enableTrace itself (see response.StreamOptions).
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
