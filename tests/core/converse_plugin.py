"""A provider plugin defined inside the test suite: ``testprov/{modelId}`` served by Bedrock
ConverseStream (or Converse). It records the order in which the core calls its hooks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from urllib.parse import quote

import msgspec

import outcrop
from outcrop import (
    ChatCall,
    ChatDelta,
    ModelPrefix,
    ModelPrice,
    ModelRoute,
    OutcropError,
    UpstreamRequest,
    Usage,
)
from outcrop.testing import CallEvents


class ConversePlugin:
    def __init__(self, always_stream: bool = False, prefix: str = "testprov/") -> None:
        self.always_stream = always_stream  # read ConverseStream even for non-streaming calls
        self.prefix = prefix
        self.calls: list[str] = []
        #: Its after-call events (``after_call`` is in ``calls`` once an event is here).
        self.events = CallEvents()

    @outcrop.hookimpl
    def outcrop_register_models(self, register: Callable[[ModelPrefix], None]) -> None:
        self.calls.append("register_models")
        register(
            ModelPrefix(
                self.prefix, "test provider", self.prefix + "amazon.nova-lite-v1:0", "tests"
            )
        )

    @outcrop.hookimpl
    def outcrop_register_pricing(self, register: Callable[[str, ModelPrice], None]) -> None:
        register("testprov-priced-model", ModelPrice(0.001, 0.002))

    @outcrop.hookimpl
    def outcrop_parse_route(
        self, model: str, params: outcrop.DeploymentParams
    ) -> ModelRoute | None:
        self.calls.append("parse_route")
        model_id = model.removeprefix(self.prefix)
        if not model_id:
            raise OutcropError(f"expected {self.prefix}{{modelId}}", 400)
        return ModelRoute(
            provider="testprov",
            service="bedrock-runtime",
            signing_name="bedrock",
            supported_params=frozenset({"temperature", "max_tokens"}),
            data={"model_id": model_id},
        )

    @outcrop.hookimpl
    def outcrop_translate_request(self, call: ChatCall) -> UpstreamRequest | None:
        self.calls.append("translate_request")
        text = call.request.messages[-1].content
        body: dict = {"messages": [{"role": "user", "content": [{"text": text}]}]}
        if call.request.temperature is not None:
            body["inferenceConfig"] = {"temperature": call.request.temperature}
        op = "converse-stream" if call.stream or self.always_stream else "converse"
        call.response_headers["x-testprov-op"] = op
        call.response_fields["testprov_op"] = op
        return UpstreamRequest(
            "POST",
            f"{call.endpoint}/model/{quote(call.route.data['model_id'], safe='')}/{op}",
            {"Content-Type": "application/json"},
            msgspec.json.encode(body),
        )

    @outcrop.hookimpl
    def outcrop_sign_request(self, request, credentials, call):
        self.calls.append("sign_request")
        return None  # let the built-in SigV4 signer do it

    @outcrop.hookimpl
    def outcrop_translate_response(
        self, call: ChatCall, response
    ) -> AsyncIterator[ChatDelta] | None:
        self.calls.append("translate_response")
        return self._stream(response) if call.stream or self.always_stream else self._json(response)

    async def _stream(self, response) -> AsyncIterator[ChatDelta]:
        async for event in response.aiter_events():
            if event.message_type != "event":
                data = event.json()
                raise OutcropError(f"{event.exception_type}: {data.get('message')}", 502)
            data = event.json()
            if event.event_type == "contentBlockDelta":
                yield ChatDelta(content=data["delta"]["text"])
            elif event.event_type == "messageStop":
                yield ChatDelta(
                    finish_reason="stop" if data["stopReason"] == "end_turn" else "length"
                )
            elif event.event_type == "metadata":
                u = data["usage"]
                yield ChatDelta(usage=Usage(u["inputTokens"], u["outputTokens"], u["totalTokens"]))
                yield ChatDelta(extra={"testprov_latency_ms": data["metrics"]["latencyMs"]})

    async def _json(self, response) -> AsyncIterator[ChatDelta]:
        data = msgspec.json.decode(await response.read())
        u = data["usage"]
        yield ChatDelta(
            content=data["output"]["message"]["content"][0]["text"],
            usage=Usage(u["inputTokens"], u["outputTokens"], u["totalTokens"]),
            finish_reason="stop",
        )

    @outcrop.hookimpl
    def outcrop_after_call(self, event: outcrop.CallEvent) -> None:
        self.calls.append("after_call")
        self.events.outcrop_after_call(event)
