"""Build the InvokeAgentRuntime request from a chat call.

``POST {endpoint}/runtimes/{percent-encoded ARN}/invocations[?qualifier=...]``; the raw body is
the payload; the session, user and trace values travel as headers. The session id is decided
here and written to the call's response headers and fields, so the client gets it back even
when the call fails.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import msgspec

from outcrop import SESSION_HEADER, ChatCall, Message, OutcropError, UpstreamRequest, clip

from . import params as p
from .models import RuntimeArn

#: botocore's ``percent_encode`` keeps only these unreserved characters (``SAFE_CHARS``).
_SAFE = "-._~"
RUNTIME_SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
USER_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-User-Id"
SESSION_FIELD = "session_id"
#: Inbound headers the runtime forwards into the agent container (AgentCore's allow-list).
CUSTOM_HEADER_PREFIX = "x-amzn-bedrock-agentcore-runtime-custom-"

_encoder = msgspec.json.Encoder()


def invocation_url(endpoint: str, arn: str, qualifier: str | None) -> str:
    url = f"{endpoint}/runtimes/{quote(arn, safe=_SAFE)}/invocations"
    if qualifier:
        url += f"?qualifier={quote(qualifier, safe=_SAFE)}"
    return url


def _part_text(message: Message) -> str:
    content = message.content
    if content is None or isinstance(content, str):
        return content or ""
    texts: list[str] = []
    for part in content:
        kind = part.get("type", "text")
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        else:
            raise OutcropError(
                f"the AgentCore prompt payload carries text only, got a {clip(kind)!r} content part; "
                "send an explicit `payload`, or set `payload_format: messages`",
                400,
                param="messages",
                code="unsupported_content",
            )
    return "".join(texts)


def last_user_text(messages: list[Message]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            return _part_text(message)
    raise OutcropError(
        "AgentCore needs a user message to send as the prompt (or an explicit `payload`)",
        400,
        param="messages",
    )


def build_payload(call: ChatCall) -> bytes:
    """The request's ``payload``, else the shape chosen by ``payload_format``."""
    provider = call.provider_params
    fmt = p.check_payload_format(
        provider.get("payload_format") or "prompt"
    )  # checked even with `payload`
    if provider.get("payload") is not None:
        try:
            return _encoder.encode(provider["payload"])
        except (TypeError, msgspec.EncodeError) as exc:
            raise OutcropError(
                f"`payload` is not JSON-serializable: {exc}", 400, param="payload"
            ) from exc
    if fmt == "messages":
        return _encoder.encode({"messages": call.request.messages})
    if any(m.role in ("system", "developer") for m in call.request.messages):
        call.drop("system message")  # the prompt payload carries the last user message only
    return _encoder.encode({"prompt": last_user_text(call.request.messages)})


def resolve_session(call: ChatCall) -> str:
    """Request body, then the ``x-outcrop-session-id`` header, then the deployment, then new."""
    session = p.session_from_request(call)
    if session is None:
        header = call.headers.get(SESSION_HEADER)
        if header is not None:
            session = p.check_session_id(header, SESSION_HEADER)
    if session is None:
        session = p.session_from_deployment(call)
    return session or str(uuid.uuid4())


def remember_session(call: ChatCall, session: str) -> None:
    call.response_headers[SESSION_HEADER] = session
    call.response_headers[RUNTIME_SESSION_HEADER.lower()] = (
        session  # lower-case, as HTTP/2 sends it
    )
    call.response_fields[SESSION_FIELD] = session


def _trace_headers(call: ChatCall) -> dict[str, str]:
    """W3C/X-Ray trace headers: explicit parameters win; inbound ones pass if AWS would take them."""
    out: dict[str, str] = {}
    for name, (header, limit) in p.TRACE_PARAMS.items():
        explicit = call.provider_params.get(name)
        if explicit is not None:
            value = p.check_trace(name, explicit)
        else:
            # An oversized or malformed trace header from a proxy must not fail the call: drop it.
            value = call.headers.get(header.lower()) or ""
            if len(value) > limit or not p.header_safe(value):
                value = ""
        if value:
            out[header] = value
    return out


def _custom_headers(call: ChatCall) -> dict[str, str]:
    return {
        name: value
        for name, value in call.headers.items()
        if name.lower().startswith(CUSTOM_HEADER_PREFIX) and p.header_safe(value)
    }


def build_request(call: ChatCall, runtime: RuntimeArn) -> UpstreamRequest:
    provider: dict[str, Any] = call.provider_params
    p.check_known(provider, "request")
    qualifier = provider.get("qualifier")
    if qualifier is not None:
        qualifier = p.check_qualifier(qualifier)
    session = resolve_session(call)
    remember_session(call, session)
    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if call.stream else "application/json",
        RUNTIME_SESSION_HEADER: session,
    }
    user = provider.get("runtimeUserId")
    if user is not None:
        headers[USER_HEADER] = p.check_user_id(user)
    headers.update(_trace_headers(call))
    headers.update(_custom_headers(call))
    return UpstreamRequest(
        "POST",
        invocation_url(call.endpoint, runtime.arn, qualifier),
        headers,
        build_payload(call),
    )
