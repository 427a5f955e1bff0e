"""The Starlette app: OpenAI-compatible routes, health, plugin routes, request context."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import embeddings
from .bodies import ClientDisconnected, read_body
from .chat import admit, call_event, chunks, collect, open_stream, prepare_call
from .config import Config, load_config, parse_config
from .errors import OutcropError
from .gateway import Gateway
from .headers import COST_HEADER, OVERHEAD_HEADER
from .logs import get_logger
from .sse import SSEResponse
from .types import CallEvent, ChatCall, EmbeddingCall, Principal
from .wire import (
    JSONTooDeep,
    ModelCard,
    ModelList,
    decode_embedding_request,
    decode_request,
    encode_with_extra,
    encoder,
)

log = get_logger("outcrop.app")

_JSON = "application/json"


class RequestContextMiddleware:
    """Pure ASGI: a request id (taken from ``x-request-id`` when sane) and an overhead header
    on every response. Handlers that know their upstream time set the overhead header
    themselves; otherwise it is the time until the response started."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = ""
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                rid = value.decode("latin-1")
                break
        if not rid or len(rid) > 128 or not rid.isprintable():
            rid = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        scope["state"]["started"] = start
        rid_bytes = rid.encode("latin-1")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                names = {k.lower() for k, _ in headers}
                if b"x-request-id" not in names:
                    headers.append((b"x-request-id", rid_bytes))
                if OVERHEAD_HEADER.encode() not in names:
                    ms = (time.perf_counter() - start) * 1000
                    headers.append((OVERHEAD_HEADER.encode(), f"{ms:.3f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def error_response(exc: OutcropError, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        exc.openai_body(), status_code=exc.status, media_type=_JSON, headers={**exc.headers, **(headers or {})}
    )


def _body_error(exc: Exception) -> OutcropError:
    if isinstance(exc, msgspec.ValidationError):
        text = str(exc)
        param = None
        if " - at `$." in text:
            text, _, where = text.partition(" - at `$.")
            param = where.rstrip("`")
            text = f"{param}: {text}"
        return OutcropError(f"invalid request body: {text}", 400, param=param, code="invalid_request")
    if isinstance(exc, JSONTooDeep):
        return OutcropError(f"request body refused: {exc}", 400, code="json_too_deep")
    return OutcropError(f"request body is not valid JSON: {exc}", 400, code="invalid_json")


def _overhead_ms(call: ChatCall) -> str:
    spent = time.perf_counter() - call.started
    resp = call.state.get("upstream_response")
    waited = resp.waited if resp is not None else 0.0
    return f"{max(spent - waited, 0.0) * 1000:.3f}"


def _failed_event(
    request: Request, model: str, status: int, error: str, principal: Principal | None
) -> CallEvent:
    state = request.scope["state"]
    return CallEvent(
        request_id=state["request_id"],
        surface="chat",
        route=request.url.path,
        model=model,
        deployment=None,
        provider=None,
        status=status,
        stream=False,
        latency_s=time.perf_counter() - state["started"],
        upstream_latency_s=0.0,
        error=error,
        principal=principal,
        client_ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


async def chat_completions(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    state = request.scope["state"]
    rid: str = state["request_id"]
    started: float = state["started"]
    route = request.url.path
    call: ChatCall | None = None
    principal: Principal | None = None
    model = ""
    try:
        principal = gateway.authenticate(request.headers)
        settings = gateway.config.general_settings
        body = await read_body(request.receive, limit=settings.max_request_bytes,
                               timeout=settings.body_timeout, headers=request.scope["headers"])
        try:
            chat_request, extra = decode_request(body)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise _body_error(exc) from exc
        model = chat_request.model
        call = prepare_call(gateway, chat_request, extra, request.headers, rid)
        call.started = started
        call.principal = principal
        call.client_ip = request.client.host if request.client else None
        await admit(gateway, call, route)
        deltas = await open_stream(gateway, call)
    except OutcropError as exc:
        event = call_event(call, exc.status, exc.message, route) if call else _failed_event(
            request, model, exc.status, exc.message, principal
        )
        gateway.after_call(event)
        return error_response(exc, call.response_headers if call else None)
    except ClientDisconnected:
        gateway.after_call(_failed_event(request, model, 499, "client disconnected", principal))
        return Response(status_code=499)  # nobody is left to read it
    except Exception as exc:  # a plugin bug must not take the worker down
        log.exception("chat_failed", request_id=rid)
        event = call_event(call, 500, f"{type(exc).__name__}: {exc}", route) if call else _failed_event(
            request, model, 500, f"{type(exc).__name__}: {exc}", principal
        )
        gateway.after_call(event)
        return error_response(OutcropError(f"internal error: {type(exc).__name__}", 500))

    if call.stream:
        headers = {**call.response_headers, OVERHEAD_HEADER: _overhead_ms(call), "cache-control": "no-cache"}
        return SSEResponse(_sse(gateway, call, deltas, route), headers)  # type: ignore[return-value]
    try:
        completion = await collect(gateway, call, deltas)
    except OutcropError as exc:
        gateway.after_call(call_event(call, exc.status, exc.message, route))
        return error_response(exc, call.response_headers)
    except Exception as exc:
        log.exception("chat_failed", request_id=rid)
        err = OutcropError(f"internal error while reading the upstream answer: {type(exc).__name__}", 500)
        gateway.after_call(call_event(call, 500, str(exc), route))
        return error_response(err, call.response_headers)
    headers = {**call.response_headers, OVERHEAD_HEADER: _overhead_ms(call)}
    if call.cost is not None:
        headers[COST_HEADER] = repr(call.cost)
    gateway.after_call(call_event(call, 200, None, route))
    return Response(encode_with_extra(completion, call.response_fields), media_type=_JSON, headers=headers)


async def _sse(gateway: Gateway, call: ChatCall, deltas: AsyncIterator[Any], route: str) -> AsyncIterator[bytes]:
    """SSE frames for each chunk the moment it exists; an error event ends a failed stream."""
    status, error = 200, None
    try:
        async for chunk, extra in chunks(gateway, call, deltas):
            yield b"data: " + encode_with_extra(chunk, extra) + b"\n\n"
        yield b"data: [DONE]\n\n"
    except OutcropError as exc:
        status, error = exc.status, exc.message
        yield b"data: " + exc.openai_body() + b"\n\n"
    except (asyncio.CancelledError, GeneratorExit):
        status, error = 499, "client disconnected"
        raise
    except Exception as exc:
        log.exception("stream_failed", request_id=call.request_id)
        status, error = 500, f"{type(exc).__name__}: {exc}"
        yield b"data: " + OutcropError("internal error while streaming", 500).openai_body() + b"\n\n"
    finally:
        gateway.after_call(call_event(call, status, error, route))


async def create_embeddings(request: Request) -> Response:
    """``POST /v1/embeddings``: served by the plugin that claims the model (see embeddings.py)."""
    gateway: Gateway = request.app.state.gateway
    rid: str = request.scope["state"]["request_id"]
    route = request.url.path
    call: EmbeddingCall | None = None
    principal: Principal | None = None
    model = ""
    try:
        principal = gateway.authenticate(request.headers)
        settings = gateway.config.general_settings
        raw = await read_body(request.receive, limit=settings.max_request_bytes,
                              timeout=settings.body_timeout, headers=request.scope["headers"])
        try:
            body, extra = decode_embedding_request(raw)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise _body_error(exc) from exc
        model = body.model
        call = embeddings.prepare(gateway, body, extra, request.headers, rid)
        call.started = request.scope["state"]["started"]
        call.principal = principal
        call.client_ip = request.client.host if request.client else None
        await embeddings.admit(gateway, call, route)
        answer = await embeddings.run(gateway, call)
    except ClientDisconnected:
        failed = _failed_event(request, model, 499, "client disconnected", principal)
        failed.surface = "embeddings"
        gateway.after_call(failed)
        return Response(status_code=499)
    except Exception as exc:
        if not isinstance(exc, OutcropError):
            log.exception("embeddings_failed", request_id=rid)
        err = exc if isinstance(exc, OutcropError) else OutcropError(
            f"internal error: {type(exc).__name__}", 500)
        if call is not None:
            gateway.after_call(embeddings.event(call, err.status, err.message, route))
        else:
            failed = _failed_event(request, model, err.status, err.message, principal)
            failed.surface = "embeddings"
            gateway.after_call(failed)
        return error_response(err, call.response_headers if call else None)
    headers = dict(call.response_headers)
    if call.cost is not None:
        headers[COST_HEADER] = repr(call.cost)
    gateway.after_call(embeddings.event(call, 200, None, route))
    return Response(encoder.encode(answer), media_type=_JSON, headers=headers)


async def list_models(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    try:
        principal = gateway.authenticate(request.headers)
    except OutcropError as exc:
        return error_response(exc)
    created = request.app.state.created
    cards = [
        ModelCard(id=name, created=created, owned_by=gateway.routes[group[0].index].provider)
        for name in gateway.allowed_models(principal, gateway.router.names())
        if (group := gateway.router.candidates(name))
    ]
    return Response(encoder.encode(ModelList(cards)), media_type=_JSON)


async def liveliness(request: Request) -> Response:
    return Response(b'"I\'m alive!"', media_type=_JSON)


async def readiness(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    ready = request.app.state.ready
    body = {
        "status": "healthy" if ready else "starting",
        "models": len(gateway.config.model_list),
        "plugins": sorted(n for n, p in gateway.pm.list_name_plugin() if p is not None),
    }
    return Response(encoder.encode(body), status_code=200 if ready else 503, media_type=_JSON)


def _coerce_config(config: Config | dict[str, Any] | str | None) -> Config:
    if config is None:
        return Config()
    if isinstance(config, Config):
        return config
    if isinstance(config, dict):
        return parse_config(config)
    return load_config(config)


def create_app(
    config: Config | dict[str, Any] | str | None = None,
    *,
    gateway: Gateway | None = None,
    pm: Any = None,
) -> Starlette:
    """Build the ASGI app. Raises ``ConfigError`` for an invalid config or unclaimed model."""
    gw = gateway or Gateway(_coerce_config(config), pm)
    plugin_routes: list[BaseRoute] = []
    gw.hook.outcrop_register_routes(register=plugin_routes.append, gateway=gw)
    routes: list[BaseRoute] = [
        *plugin_routes,
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/embeddings", create_embeddings, methods=["POST"]),
        Route("/embeddings", create_embeddings, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/models", list_models, methods=["GET"]),
        Route("/health/liveliness", liveliness, methods=["GET"]),
        Route("/health/liveness", liveliness, methods=["GET"]),
        Route("/health/readiness", readiness, methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gw.start()
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False
            await gw.stop()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.gateway = gw
    app.state.ready = False
    app.state.created = int(time.time())
    app.add_middleware(RequestContextMiddleware)
    return app
