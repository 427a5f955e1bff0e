"""The ``/bedrock/{path}`` ASGI app: authenticate, route, re-sign, relay.

Plain ASGI rather than a Starlette endpoint: the body of the answer goes to the client chunk by
chunk as aiohttp reads it from AWS, with status and AWS headers first, and a watcher cancels the
upstream call the moment the client goes away. Exactly one after-call event is emitted per
request, whatever happens.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import structlog

import outcrop
from outcrop import (
    Admission,
    CallEvent,
    ClientDisconnected,
    DeploymentParams,
    Gateway,
    OutcropError,
    Principal,
    UpstreamRequest,
    UpstreamResponse,
    Usage,
    read_body,
)
from outcrop.eventstream import encode_exception

from . import PREFIX, PROVIDER
from .auth import ClientAuth
from .disconnect import Disconnected, until_disconnect
from .headers import forward_request_headers, relay_response_headers
from .operations import UNSUPPORTED, Match, match
from .paths import canonical_query, check_segments, relative
from .responses import send_error
from .settings import Settings
from .targets import Resolver, Target
from .usage import BODY_FIRST_LIMIT, EventStreamMeter, Meter, Metering, meter_for

log = structlog.get_logger("outcrop.bedrock_passthrough")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

COST_HEADER = outcrop.COST_HEADER.encode()
OVERHEAD_HEADER = outcrop.OVERHEAD_HEADER.encode()
EVENT_STREAM = "application/vnd.amazon.eventstream"
_ERROR_SNIPPET = 4096


class UpstreamBroke(Exception):
    """AWS's connection broke after the answer started; raising aborts the client connection
    so it sees a truncated response, never a short one that looks complete."""


@dataclass(slots=True)
class Record:
    """What the after-call event reports, filled in as the request progresses."""

    request_id: str
    started: float
    route: str = PREFIX
    model: str = ""
    deployment: str | None = None
    status: int = 500
    stream: bool = False
    usage: Usage | None = None
    cost: float | None = None
    error: str | None = None
    region: str | None = None
    upstream: UpstreamResponse | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    principal: Principal | None = None
    client_ip: str | None = None
    user_agent: str | None = None

    def event(self) -> CallEvent:
        return CallEvent(
            request_id=self.request_id,
            surface="passthrough",
            route=self.route,
            model=self.model,
            deployment=self.deployment,
            provider=PROVIDER,
            status=self.status,
            stream=self.stream,
            latency_s=time.perf_counter() - self.started,
            upstream_latency_s=self.upstream.waited if self.upstream else 0.0,
            usage=self.usage,
            cost=self.cost,
            error=self.error,
            region=self.region,
            extra=self.extra,
            principal=self.principal,
            client_ip=self.client_ip,
            user_agent=self.user_agent,
        )


class PassthroughApp:
    def __init__(self, gateway: Gateway, settings: Settings) -> None:
        self.gateway = gateway
        self.auth = ClientAuth(gateway, settings.secrets(), settings.max_clock_skew_seconds)
        self.resolver = Resolver(gateway, settings)
        self.limit = gateway.config.general_settings.max_request_bytes
        self.body_timeout = gateway.config.general_settings.body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        state = scope.get("state") or {}
        record = Record(state.get("request_id") or uuid.uuid4().hex,
                        state.get("started") or time.perf_counter())
        responded = [False]

        async def tracked_send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                responded[0] = True
            await send(message)

        try:
            await self._serve(scope, receive, tracked_send, record)
        except OutcropError as exc:
            record.status, record.error = exc.status, f"{exc.aws_type}: {exc.message}"
            if not responded[0]:
                await send_error(tracked_send, exc, record.request_id)
        except (Disconnected, ClientDisconnected):
            record.status, record.error = 499, "client disconnected"  # nobody left to answer
        except asyncio.CancelledError:
            record.status, record.error = 499, "client disconnected"
            raise
        except UpstreamBroke:
            raise
        except Exception as exc:  # a bug must answer, not take the worker down
            log.exception("passthrough_failed", request_id=record.request_id)
            record.status, record.error = 500, f"{type(exc).__name__}: {exc}"
            if not responded[0]:
                await send_error(tracked_send, OutcropError(
                    f"internal error in the gateway ({type(exc).__name__})", 500,
                    aws_type="InternalServerException"), record.request_id)
        finally:
            self.gateway.after_call(record.event())

    # -- one request ----------------------------------------------------------------------------
    async def _serve(self, scope: Scope, receive: Receive, send: Send, record: Record) -> None:
        method: str = scope["method"]
        raw_full = (scope.get("raw_path") or scope["path"].encode("utf-8")).decode("latin-1")
        path = relative(raw_full, scope.get("root_path", ""))
        query = scope.get("query_string", b"").decode("latin-1")
        received = scope["headers"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in received}
        client = scope.get("client")
        record.client_ip = client[0] if client else None
        record.user_agent = headers.get("user-agent")

        caller = self.auth.check_headers(headers)
        found = match(method, path)
        pending = None
        if caller is None:  # SigV4 with issued keys: all but the signature before the body
            pending = self.auth.precheck(received, found.operation.signing_name if found else None)
        body = await read_body(receive, limit=self.limit, timeout=self.body_timeout,
                               headers=received)
        if caller is None:
            assert pending is not None
            caller = self.auth.verify(method, raw_full, query, received, body, pending)
        record.extra["auth"] = caller.method
        record.principal = caller.principal
        if found is None:
            raise OutcropError(
                f"No Bedrock data-plane operation matches {method} {path or '/'} (the pass-through "
                "serves bedrock-runtime, bedrock-agent-runtime and bedrock-agentcore; control-plane "
                "APIs are not relayed)", 404, aws_type="UnknownOperationException")
        op = found.operation
        record.route = PREFIX + op.template
        record.extra.update(operation=op.name, service=op.service)
        if op.name in UNSUPPORTED:
            raise OutcropError(UNSUPPORTED[op.name], 400, aws_type="ValidationException")
        check_segments(path)
        target = self.resolver.resolve(found, path, caller.region)
        record.model, record.region = target.model or _subject(found), target.region
        record.deployment = target.deployment.id if target.deployment else None
        await self.gateway.admit(Admission(caller.principal, "passthrough", PREFIX + unquote(path),
                                           record.model, record.deployment, record.request_id))
        try:
            forwarded = forward_request_headers(received)
        except ValueError as exc:
            raise OutcropError(str(exc), 400, aws_type="ValidationException") from None
        url = target.endpoint + target.path + (f"?{canonical_query(query)}" if query else "")
        request = UpstreamRequest(method, url, forwarded, body, service=op.service,
                                  signing_name=op.signing_name, region=target.region,
                                  read_timeout=target.params.timeout,
                                  connect_timeout=target.params.connect_timeout)
        await until_disconnect(self._forward(request, target, found, send, record), receive)

    async def _forward(self, request: UpstreamRequest, target: Target, found: Match,
                       send: Send, record: Record) -> None:
        response = await self.gateway.send(request, target.params)
        record.upstream = response
        try:
            await self._relay(response, target, found, send, record)
        finally:
            response.close()

    async def _relay(self, response: UpstreamResponse, target: Target, found: Match,
                     send: Send, record: Record) -> None:
        op = found.operation
        status = response.status
        content_type = response.headers.get("content-type", "")
        record.status = status
        record.stream = op.event_stream or content_type.startswith((EVENT_STREAM, "text/event-stream"))
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
        headers = relay_response_headers(response.headers, keep_length=not record.stream)
        self._account(meter, target, record)
        if record.cost is not None and not record.stream:
            headers.append((COST_HEADER, repr(record.cost).encode()))
        overhead = max(time.perf_counter() - record.started - response.waited, 0.0) * 1000
        headers.append((OVERHEAD_HEADER, f"{overhead:.3f}".encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})

        for part in first:
            await send({"type": "http.response.body", "body": part, "more_body": True})
        snippet = bytearray()
        if not complete:
            try:
                async for chunk in body:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    metering.feed(chunk)
                    if status >= 300 and len(snippet) < _ERROR_SNIPPET:
                        snippet += chunk[:_ERROR_SNIPPET - len(snippet)]
            except OutcropError as exc:  # the upstream connection broke mid-body
                record.status, record.error = exc.status, exc.message
                if metering.active and isinstance(meter, EventStreamMeter) and meter.at_boundary:
                    # A well-formed exception frame makes the SDK raise a clear EventStreamError.
                    frame = encode_exception("internalServerException", exc.message)
                    await send({"type": "http.response.body", "body": frame, "more_body": False})
                    return
                raise UpstreamBroke(exc.message) from exc
            if metering.active and isinstance(meter, EventStreamMeter):
                try:
                    meter.finish_frames()
                except OutcropError as exc:  # a clean end in the middle of a frame
                    record.status, record.error = exc.status, exc.message
                    log.warning("upstream_stream_truncated", request_id=record.request_id,
                                error=exc.message)
                    raise UpstreamBroke(exc.message) from exc  # the SDK must not see an end
            metering.finish()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if status >= 300:
            record.error = _upstream_error(status, response.headers, bytes(snippet or b"".join(first)))
            return
        self._account(meter, target, record)
        if meter.error:
            record.error = meter.error

    def _account(self, meter: Meter, target: Target, record: Record) -> None:
        if meter.usage is None or meter.usage is record.usage:
            return
        record.usage = meter.usage
        priced = meter.model or target.model_id
        params: DeploymentParams | None = target.params if target.deployment else None
        record.cost = self.gateway.prices.cost(meter.usage, priced, params)


# -- helpers ------------------------------------------------------------------------------------


def _subject(found: Match) -> str:
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
