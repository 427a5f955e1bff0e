"""``myprov/{modelId}``: OpenAI chat completions served by Bedrock Converse / ConverseStream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import msgspec

import outcrop
from outcrop import (
    ChatCall,
    ChatDelta,
    DeploymentParams,
    ModelPrefix,
    ModelRoute,
    OutcropError,
    UpstreamError,
    UpstreamRequest,
    UpstreamResponse,
    Usage,
)

PREFIX = "myprov/"
PROVIDER = "myprov"
#: Converse's stop reasons -> OpenAI's finish_reason (anything else: "stop").
FINISH = {"max_tokens": "length", "tool_use": "tool_calls", "content_filtered": "content_filter"}


@outcrop.hookimpl
def outcrop_register_models(register: Callable[[ModelPrefix], None]) -> None:
    register(
        ModelPrefix(
            PREFIX,
            "Bedrock Converse models",
            f"{PREFIX}amazon.nova-lite-v1:0",
            "outcrop-my-provider",
        )
    )


@outcrop.hookimpl
def outcrop_parse_route(model: str, params: DeploymentParams) -> ModelRoute:
    # The core asks only the plugin whose registered prefix is the longest match, so every
    # model string arriving here starts with PREFIX.
    model_id = model.removeprefix(PREFIX)
    if not model_id:
        raise OutcropError(f"expected {PREFIX}{{modelId}}", 400, param="model")
    # Keys the core does not know arrive in params.extra; param= names the key in the error
    # (model_list[N].litellm_params.system_prompt: ...).
    system = params.extra.get("system_prompt")
    if system is not None and not isinstance(system, str):
        raise OutcropError(
            f"must be a string, got {type(system).__name__}", 400, param="system_prompt"
        )
    return ModelRoute(
        provider=PROVIDER,
        service="bedrock-runtime",
        signing_name="bedrock",
        supported_params=frozenset({"temperature", "max_tokens"}),
        data={"model_id": model_id},
    )


@outcrop.hookimpl
def outcrop_translate_request(call: ChatCall) -> UpstreamRequest:
    configured = call.provider_params.get("system_prompt")
    system = [configured] if configured is not None else []
    messages: list[dict[str, Any]] = []
    for message in call.request.messages:
        if message.role == "system":
            system.append(_text(message.content))
        else:
            messages.append({"role": message.role, "content": [{"text": _text(message.content)}]})
    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = [{"text": text} for text in system]
    config = {"temperature": call.request.temperature, "maxTokens": call.request.max_tokens}
    if any(v is not None for v in config.values()):
        body["inferenceConfig"] = {k: v for k, v in config.items() if v is not None}
    operation = "converse-stream" if call.stream else "converse"
    model_id = quote(call.route.data["model_id"], safe="")
    return UpstreamRequest(
        "POST",
        f"{call.endpoint}/model/{model_id}/{operation}",
        {"Content-Type": "application/json"},
        msgspec.json.encode(body),
    )


@outcrop.hookimpl
def outcrop_translate_response(
    call: ChatCall, response: UpstreamResponse
) -> AsyncIterator[ChatDelta]:
    return _events(response) if call.stream else _answer(response)


def _text(content: str | list[dict[str, Any]] | None) -> str:
    if isinstance(content, list):  # content parts: keep the text ones
        return "".join(part.get("text", "") for part in content if part.get("type") == "text")
    return content or ""


def _usage(data: dict[str, Any]) -> Usage:
    return Usage(data["inputTokens"], data["outputTokens"], data["totalTokens"])


async def _answer(response: UpstreamResponse) -> AsyncIterator[ChatDelta]:
    """Converse: one JSON document."""
    data = msgspec.json.decode(await response.read())
    text = "".join(block.get("text", "") for block in data["output"]["message"]["content"])
    yield ChatDelta(
        content=text,
        usage=_usage(data["usage"]),
        finish_reason=FINISH.get(data["stopReason"], "stop"),
    )


async def _events(response: UpstreamResponse) -> AsyncIterator[ChatDelta]:
    """ConverseStream: an AWS event stream, each event passed on as soon as it arrives."""
    async for event in response.aiter_events():
        data = event.json()
        if event.message_type != "event":  # an exception frame after the 200
            raw = event.exception_type or "InternalServerException"
            code = raw[:1].upper() + raw[1:]  # frames name the member: throttlingException
            message = data.get("message") or event.headers.get(":error-message", "")
            status = outcrop.aws_status(code) or 502
            raise UpstreamError(f"{code}: {message}", status, aws_code=code)
        if event.event_type == "contentBlockDelta":
            yield ChatDelta(content=data["delta"].get("text", ""))
        elif event.event_type == "messageStop":
            yield ChatDelta(finish_reason=FINISH.get(data["stopReason"], "stop"))
        elif event.event_type == "metadata":
            yield ChatDelta(usage=_usage(data["usage"]))
