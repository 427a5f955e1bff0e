"""``POST /v1/messages`` and ``POST /v1/messages/count_tokens``: authenticate, map the model,
call Bedrock, answer in Anthropic's dialect.

Plain ASGI under the core's call lifecycle (``gateway.http_call``), as every surface: it owns
the Anthropic-shaped error answers, the disconnect watcher that cancels the upstream call, and
the one after-call event (usage, cache tokens and cost included) per request.
"""

from __future__ import annotations

import asyncio
import time

import msgspec
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

import outcrop
from outcrop import (
    CallLifecycle,
    Deployment,
    GatewayAPI,
    OutcropError,
    UpstreamRequest,
    UpstreamResponse,
    request_tags,
)

from . import PROVIDER, SURFACE
from .errors import anthropic_answer, from_bedrock
from .models import Models, Target
from .request import betas, invoke_body, keep_edits, parse, take_tags
from .settings import Settings
from .stream import error_event, sse_frames
from .usage import Tally, decode_event

COST_HEADER = outcrop.COST_HEADER.encode()
OVERHEAD_HEADER = outcrop.OVERHEAD_HEADER.encode()
_JSON = (b"content-type", b"application/json")
_SSE = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]
_ERROR_BODY = 64 * 1024
_encode = msgspec.json.Encoder().encode
#: A request's tags (tag routing), ``None`` without any.
Tags = tuple[str, ...] | None


class _Count(msgspec.Struct):
    inputTokens: int


_decode_count = msgspec.json.Decoder(_Count).decode


class MessagesApp:
    """The ASGI app behind both routes (``count`` picks count_tokens)."""

    def __init__(self, gateway: GatewayAPI, settings: Settings, models: Models, *, count: bool):
        self.gateway = gateway
        self.models = models
        self.count = count
        self.betas = frozenset(settings.betas)
        self.edits = frozenset(settings.context_edits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        async with self.gateway.http_call(
            scope, receive, send, surface=SURFACE, answer=anthropic_answer
        ) as life:
            life.provider = PROVIDER
            await self._serve(scope, receive, life)

    async def _serve(self, scope: Scope, receive: Receive, life: CallLifecycle) -> None:
        gateway = self.gateway
        headers = Headers(scope=scope)
        life.principal = gateway.authenticate(headers)
        body = await gateway.read_body(receive, scope["headers"])
        life.watch()  # from here a client disconnect cancels the call, upstream included
        request = parse(body, count=self.count)
        body_tags, metadata = take_tags(request)
        tags = request_tags(body_tags, metadata, headers, life.principal)
        sent = request.model
        aliases = life.principal.model_aliases
        if aliases is not None and sent in aliases:  # the caller's own name for a model
            request.model = aliases[sent]
        found = self.models.find(request.model, tags, life.principal)
        claude, name, group = found.claude, found.name, found.group
        target = self.models.target(claude)
        life.model, life.region, life.requested = name, target.region, sent
        if claude.deployment is not None:
            life.deployment, life.group = claude.deployment.id, claude.deployment.model_name
        life.stream = request.stream and not self.count
        if name != sent:
            life.extra["requested_model"] = sent
        await life.admit()
        asked = betas(request, ",".join(headers.getlist("anthropic-beta")))
        kept = [b for b in asked if b in self.betas]
        if len(kept) != len(asked):
            life.extra["dropped_betas"] = [b for b in asked if b not in self.betas]
        dropped = keep_edits(request, self.edits)
        if dropped:
            life.extra["dropped_context_edits"] = dropped
        payload = invoke_body(request, kept, count=self.count)
        if self.count:
            await self._count(payload, target, group, tags, life)
        elif life.stream:
            await self._stream(payload, target, group, tags, life)
        else:
            await self._invoke(payload, target, group, tags, life)

    # -- the three upstream calls ---------------------------------------------------------------
    async def _call(
        self,
        target: Target,
        group: str | None,
        tags: Tags,
        action: str,
        body: bytes,
        headers: dict[str, str],
        life: CallLifecycle,
    ) -> Target:
        """Send to ``target``, with the router's retries and failover within ``group`` (the
        ``model_name`` it was picked from, among the deployments ``tags`` select); the target
        that answered, or the error."""
        answered = target

        async def attempt(deployment: Deployment | None) -> UpstreamResponse:
            nonlocal answered
            if deployment is not None and deployment is not answered.claude.deployment:
                answered = self.models.target(self.models.claude_of(deployment))
            claude = answered.claude
            label = claude.base_label if action == "count-tokens" else claude.label
            request = UpstreamRequest(
                "POST",
                f"{answered.endpoint}/model/{label}/{action}",
                {"content-type": "application/json", **headers},
                body,
                service="bedrock-runtime",
                signing_name="bedrock",
                region=answered.region,
                read_timeout=claude.params.timeout,
                connect_timeout=claude.params.connect_timeout,
            )
            return await self.gateway.send(request, claude.params)

        life.upstream, _ = await self.gateway.send_routed(  # closed by ``life``
            attempt,
            model_name=group,
            deployment=target.claude.deployment,
            life=life,
            fallbacks=False,  # a fallback model_name may not be a Claude model
            tags=tags,
        )
        if answered is not target and answered.claude.deployment is not None:
            life.deployment, life.region = answered.claude.deployment.id, answered.region
        if life.upstream.status >= 300:
            snippet = await life.upstream.read_up_to(_ERROR_BODY)
            raise from_bedrock(life.upstream.status, snippet, life.upstream.headers)
        return answered

    async def _invoke(
        self, payload: bytes, target: Target, group: str | None, tags: Tags, life: CallLifecycle
    ) -> None:
        accept = {"accept": "application/json"}
        target = await self._call(target, group, tags, "invoke", payload, accept, life)
        assert life.upstream is not None
        answer = await life.upstream.read()
        tally = Tally()
        try:
            event = decode_event(answer)
        except msgspec.DecodeError:
            raise OutcropError("Bedrock answered with a body that is not JSON", 502) from None
        if event.usage is not None:
            tally.add(event.usage)
        self._account(tally, target, life)
        headers = self._headers(life, [_JSON])
        if life.cost is not None:
            headers.append((COST_HEADER, repr(life.cost).encode()))
        await life.send({"type": "http.response.start", "status": 200, "headers": headers})
        await life.send({"type": "http.response.body", "body": answer, "more_body": False})

    async def _stream(
        self, payload: bytes, target: Target, group: str | None, tags: Tags, life: CallLifecycle
    ) -> None:
        accept = {"x-amzn-bedrock-accept": "application/json"}
        action = "invoke-with-response-stream"
        target = await self._call(target, group, tags, action, payload, accept, life)
        assert life.upstream is not None
        tally = Tally()
        frames = sse_frames(life.upstream, tally, life)
        await life.send(
            {"type": "http.response.start", "status": 200, "headers": self._headers(life, _SSE)}
        )
        try:
            async for frame in frames:
                await life.send({"type": "http.response.body", "body": frame, "more_body": True})
        except asyncio.CancelledError:
            if not life.disconnected:  # the gateway stops: the stream ends with an error event
                err = life.record(asyncio.CancelledError())
                await life.send(
                    {"type": "http.response.body", "body": error_event(err, life.request_id)}
                )
            raise
        finally:
            await frames.aclose()
            self._account(tally, target, life)
        await life.send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _count(
        self, payload: bytes, target: Target, group: str | None, tags: Tags, life: CallLifecycle
    ) -> None:
        body = _encode({"input": {"invokeModel": {"body": payload}}})  # bytes -> base64, as AWS
        # CountTokens takes the foundation model, not an inference profile (base_label)
        await self._call(target, group, tags, "count-tokens", body, {}, life)
        assert life.upstream is not None
        try:
            counted = _decode_count(await life.upstream.read()).inputTokens
        except msgspec.DecodeError:
            raise OutcropError("Bedrock's CountTokens answer is not readable", 502) from None
        answer = _encode({"input_tokens": counted})
        headers = self._headers(life, [_JSON])
        await life.send({"type": "http.response.start", "status": 200, "headers": headers})
        await life.send({"type": "http.response.body", "body": answer, "more_body": False})

    # -- answers --------------------------------------------------------------------------------
    @staticmethod
    def _headers(life: CallLifecycle, base: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        waited = life.upstream.waited if life.upstream is not None else 0.0
        overhead = max(time.perf_counter() - life.started - waited, 0.0) * 1000
        return [
            *base,
            (b"request-id", life.request_id.encode("latin-1", "replace")),
            (OVERHEAD_HEADER, f"{overhead:.3f}".encode()),
            life.attempts_header(),
        ]

    def _account(self, tally: Tally, target: Target, life: CallLifecycle) -> None:
        usage = tally.usage()
        if usage is None:
            return
        life.usage = usage
        claude = target.claude
        life.cost = self.gateway.cost(usage, claude.base, claude.params)
