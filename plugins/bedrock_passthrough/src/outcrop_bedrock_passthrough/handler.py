"""The ``/bedrock/{path}`` ASGI app: authenticate, route, re-sign, relay.

Plain ASGI rather than a Starlette endpoint: the body of the answer goes to the client chunk by
chunk as the upstream client reads it from AWS, with status and AWS headers first. The core's call lifecycle
(``gateway.http_call``) owns the rest: AWS-shaped error answers, the disconnect watcher that
cancels the upstream call, and exactly one after-call event per request.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import structlog
from starlette.types import Receive, Scope, Send

import outcrop
from outcrop import (
    CallLifecycle,
    Deployment,
    DeploymentParams,
    GatewayAPI,
    OperationMatch,
    OutcropError,
    UpstreamRequest,
    UpstreamResponse,
    clip,
    encode_exception,
    match_operation,
    request_tags,
)

from . import PATH_PREFIX, PROVIDER
from .auth import ClientAuth
from .errors import UNSUPPORTED, aws_answer
from .request import canonical_query, check_segments, forward_request_headers, relative
from .response import relay_response_headers
from .settings import Settings
from .targets import Resolver, Target
from .usage import BODY_FIRST_LIMIT, EventStreamMeter, Meter, Metering, meter_for

log = structlog.get_logger("outcrop.bedrock_passthrough")


COST_HEADER = outcrop.COST_HEADER.encode()
OVERHEAD_HEADER = outcrop.OVERHEAD_HEADER.encode()
EVENT_STREAM = "application/vnd.amazon.eventstream"
_ERROR_SNIPPET = 4096


class PassthroughApp:
    def __init__(self, gateway: GatewayAPI, settings: Settings) -> None:
        self.gateway = gateway
        self.auth = ClientAuth(gateway, settings.secrets(), settings.max_clock_skew_seconds)
        self.resolver = Resolver(gateway, settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        async with self.gateway.http_call(
            scope, receive, send, surface="passthrough", answer=aws_answer
        ) as life:
            life.route, life.provider = PATH_PREFIX, PROVIDER
            await self._serve(scope, receive, life)

    # -- one request ----------------------------------------------------------------------------
    async def _serve(self, scope: Scope, receive: Receive, life: CallLifecycle) -> None:
        method: str = scope["method"]
        raw_full = (scope.get("raw_path") or scope["path"].encode("utf-8")).decode("latin-1")
        path = relative(raw_full, scope.get("root_path", ""))
        query = scope.get("query_string", b"").decode("latin-1")
        received = scope["headers"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in received}

        caller = self.auth.check_headers(headers)
        found = match_operation(method, path)
        pending = None
        if caller is None:  # SigV4 with issued keys: all but the signature before the body
            pending = self.auth.precheck(received, found.operation.signing_name if found else None)
        body = life.request_body = await self.gateway.read_body(receive, received)
        life.watch()  # from here a client disconnect cancels the call, upstream included
        if caller is None:
            assert pending is not None
            caller = self.auth.verify(method, raw_full, query, received, body, pending)
        life.extra["auth"] = caller.method
        life.principal = caller.principal
        if found is None:
            raise OutcropError(
                f"No Bedrock data-plane operation matches {clip(method, 20)} {clip(path or '/')} (the pass-through "
                "serves bedrock-runtime, bedrock-agent-runtime and bedrock-agentcore; control-plane "
                "APIs are not relayed)",
                404,
                aws_type="UnknownOperationException",
            )
        op = found.operation
        life.route = PATH_PREFIX + op.template
        life.extra.update(operation=op.name, service=op.service)
        if op.name in UNSUPPORTED:
            raise OutcropError(UNSUPPORTED[op.name], 400, aws_type="ValidationException")
        check_segments(path)
        # x-litellm-tags and the caller's own: the body is AWS's, as sent
        tags = request_tags({}, None, headers, caller.principal)
        target = self.resolver.resolve(found, path, caller.region, tags, caller.principal)
        life.model, life.region = target.model or _subject(found), target.region
        if "modelId" in found.labels:
            life.requested = unquote(found.labels["modelId"])
        if target.deployment is not None:
            life.deployment, life.group = target.deployment.id, target.deployment.model_name
        life.path = PATH_PREFIX + unquote(path)
        await life.admit()
        try:
            forwarded = forward_request_headers(received)
        except ValueError as exc:
            raise OutcropError(str(exc), 400, aws_type="ValidationException") from None
        target_query = f"?{canonical_query(query)}" if query else ""

        async def attempt(deployment: Deployment | None) -> UpstreamResponse:
            nonlocal target
            if deployment is not None and deployment is not target.deployment:
                # another deployment of the alias: its model id, region and endpoint, and a
                # signature for that region
                target = self.resolver.on_alias(deployment, found, path)
                target.group = group
            request = UpstreamRequest(
                method,
                target.endpoint + target.path + target_query,
                forwarded,  # re-signing replaces the previous signature headers
                body,
                service=op.service,
                signing_name=op.signing_name,
                region=target.region,
                read_timeout=target.params.timeout,
                connect_timeout=target.params.connect_timeout,
            )
            return await self.gateway.send(request, target.params)

        group = target.group
        life.upstream, _ = await self.gateway.send_routed(  # closed by ``life``
            attempt,
            model_name=group,
            deployment=target.deployment,
            life=life,
            fallbacks=False,  # a fallback model_name may not be a native model
            tags=tags,
        )
        await self._relay(life.upstream, target, found, life)

    async def _relay(
        self, response: UpstreamResponse, target: Target, found: OperationMatch, life: CallLifecycle
    ) -> None:
        op = found.operation
        status = response.status
        content_type = response.headers.get("content-type", "")
        life.status = status
        life.stream = op.event_stream or content_type.startswith(
            (EVENT_STREAM, "text/event-stream")
        )
        meter = meter_for(op.name, op.event_stream, status, content_type)
        metering = Metering(meter)
        metering.headers(response.headers)
        body = response.aiter_bytes()
        first: list[bytes] = []
        complete = False
        if meter.needs_body_first:
            first, complete = await _read_up_to(body, BODY_FIRST_LIMIT)
            for part in first:
                metering.feed(part)
            if complete:
                metering.finish()
        # A stream is relayed chunked: its length is not ours to promise if AWS breaks mid-way.
        headers = relay_response_headers(response.headers, keep_length=not life.stream)
        self._account(meter, target, life)
        if life.cost is not None and not life.stream:
            headers.append((COST_HEADER, repr(life.cost).encode()))
        overhead = max(time.perf_counter() - life.started - response.waited, 0.0) * 1000
        headers.append((OVERHEAD_HEADER, f"{overhead:.3f}".encode()))
        headers.append(life.attempts_header())
        await life.send({"type": "http.response.start", "status": status, "headers": headers})

        for part in first:
            await life.send({"type": "http.response.body", "body": part, "more_body": True})
        snippet = bytearray()
        if not complete:
            try:
                async for chunk in body:
                    await life.send(
                        {"type": "http.response.body", "body": chunk, "more_body": True}
                    )
                    metering.feed(chunk)
                    if status >= 300 and len(snippet) < _ERROR_SNIPPET:
                        snippet += chunk[: _ERROR_SNIPPET - len(snippet)]
            except OutcropError as exc:  # the upstream connection broke mid-body
                if metering.active and isinstance(meter, EventStreamMeter) and meter.at_boundary:
                    # A well-formed exception frame makes the SDK raise a clear EventStreamError.
                    life.record(exc)
                    frame = encode_exception("internalServerException", exc.message)
                    await life.send(
                        {"type": "http.response.body", "body": frame, "more_body": False}
                    )
                    return
                raise  # the answer started: the core drops the connection, the client sees it cut
            if metering.active and isinstance(meter, EventStreamMeter):
                try:
                    meter.finish_frames()
                except OutcropError as exc:  # a clean end in the middle of a frame
                    log.warning(
                        "upstream_stream_truncated", request_id=life.request_id, error=exc.message
                    )
                    raise  # dropped, as above: the SDK must not see an end
            metering.finish()
        if status >= 300:
            life.error = _upstream_error(
                status, response.headers, bytes(snippet or b"".join(first))
            )
        else:
            self._account(meter, target, life)
            if meter.error:
                life.error = meter.error
        await life.send({"type": "http.response.body", "body": b"", "more_body": False})

    def _account(self, meter: Meter, target: Target, life: CallLifecycle) -> None:
        if meter.usage is None or meter.usage is life.usage:
            return
        life.usage = meter.usage
        priced = meter.model or target.model_id
        params: DeploymentParams | None = target.params if target.deployment else None
        life.cost = self.gateway.cost(meter.usage, priced, params)


# -- helpers ------------------------------------------------------------------------------------


def _subject(found: OperationMatch) -> str:
    """What a non-model call is about (agent id, knowledge base, runtime ARN...), for logs."""
    for value in found.labels.values():
        return unquote(value)
    return ""


async def _read_up_to(body: AsyncIterator[bytes], limit: int) -> tuple[list[bytes], bool]:
    """Chunks until the body ends (``True``) or more than ``limit`` bytes were read."""
    parts: list[bytes] = []
    size = 0
    async for chunk in body:
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            return parts, False
    return parts, True


def _upstream_error(status: int, headers: Any, snippet: bytes) -> str:
    code = (headers.get("x-amzn-errortype") or str(status)).split(":")[0]
    message = ""
    if snippet:
        text = snippet.decode("utf-8", "replace")
        found = re.search(r'"[Mm]essage"\s*:\s*"((?:[^"\\]|\\.)*)"', text)
        message = found.group(1) if found else text[:200]
    return f"{code}: {message}" if message else code
