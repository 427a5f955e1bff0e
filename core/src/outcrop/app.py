"""The Starlette app: OpenAI-compatible routes, health, plugin routes, request context."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import chat, embeddings
from .chat import openai_answer
from .config import Config, load_config, parse_config
from .errors import OutcropError, clip
from .gateway import Gateway
from .headers import OVERHEAD_HEADER, new_request_id
from .health import health
from .logs import get_logger
from .loopback import LoopbackOnly
from .notfound import not_found
from .route_index import IndexedRouter
from .wire import ModelCard, ModelList, encoder

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
            rid = new_request_id()
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
        exc.openai_body(),
        status_code=exc.status,
        media_type=_JSON,
        headers={**exc.headers, **(headers or {})},
    )


class CallRoute:
    """An OpenAI route as plain ASGI (``serve`` is ``chat.serve`` or ``embeddings.serve``): the
    call's lifecycle owns it from the first byte to its after-call event
    (app -> lifecycle -> provider -> upstream -> lifecycle)."""

    def __init__(self, gateway: Gateway, surface: str, serve: Any) -> None:
        self.gateway = gateway
        self.surface = surface
        self.serve = serve

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with self.gateway.http_call(
            scope, receive, send, surface=self.surface, answer=openai_answer
        ) as life:
            await self.serve(life, scope, receive)


async def list_models(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    try:
        principal = gateway.authenticate(request.headers)
    except OutcropError as exc:
        return error_response(exc)
    created = request.app.state.created
    owners = request.app.state.model_owners
    cards = [
        ModelCard(id=name, created=created, owned_by=owners[name])
        for name in gateway.allowed_models(principal, list(owners))
    ]
    return Response(encoder.encode(ModelList(cards)), media_type=_JSON)


def model_owners(gateway: Gateway) -> dict[str, str]:
    """What ``GET /v1/models`` lists, with its ``owned_by``: every configured ``model_name``
    (its provider); for a wildcard deployment, its ``allowed_models`` patterns when callers send
    them as they are (``model_name`` and model alike, such as ``bedrock/*``), else its
    ``model_name``; and, when raw model strings are served, every registered model-string
    prefix as a wildcard (``bedrock/agent/*``, owned by the plugin that owns the prefix)."""
    owners = {
        name: gateway.route(gateway.deployments(name)[0]).provider for name in gateway.router.listed
    }
    for d in gateway.config.model_list:
        if d.index in gateway.routes:
            continue  # not a wildcard
        claimed = gateway.claims.owner(d.params.model.split("*", 1)[0])
        owner = claimed[1].name if claimed else "outcrop"
        same = d.model_name == d.params.model
        for listed in d.model_info.get("allowed_models", ()) if same else (d.model_name,):
            owners.setdefault(listed, owner)
    if gateway.allow_raw_models:
        for prefix, provider in gateway.claims.owners():
            owners.setdefault(prefix + "*", provider.name)  # LiteLLM's wildcard spelling
    return owners


async def get_model(request: Request) -> Response:
    """``GET /v1/models/{id}``: one configured model_name the caller may use, else a 404."""
    gateway: Gateway = request.app.state.gateway
    try:
        principal = gateway.authenticate(request.headers)
    except OutcropError as exc:
        return error_response(exc)
    name = request.path_params["model"]
    owners = request.app.state.model_owners
    if name not in owners and _served_by_wildcard(gateway, name):
        owners = {name: gateway.route(gateway.deployments(name)[0]).provider}
    if name not in owners or not gateway.allowed_models(principal, [name]):
        return error_response(
            OutcropError(
                f"model {clip(name)!r} is not a configured model_name (GET /v1/models lists them)",
                404,
                code="model_not_found",
                param="model",
            )
        )
    card = ModelCard(id=name, created=request.app.state.created, owned_by=owners[name])
    return Response(encoder.encode(card), media_type=_JSON)


def _served_by_wildcard(gateway: Gateway, model: str) -> bool:
    try:
        return gateway.match_wildcard(model)
    except OutcropError:
        return False


#: The deployment settings ``/model/info`` shows: never credentials, roles or endpoints.
_SHOWN_PARAMS = ("model", "aws_region_name", "timeout", "weight", "rpm", "tpm", "order")


async def model_info(request: Request) -> Response:
    """LiteLLM's ``GET /model/info``: each deployment the caller may use, without secrets."""
    gateway: Gateway = request.app.state.gateway
    try:
        principal = gateway.authenticate(request.headers)
    except OutcropError as exc:
        return error_response(exc)
    names = [d.model_name for d in gateway.config.model_list]
    allowed = set(gateway.allowed_models(principal, names))
    data = []
    for d in gateway.config.model_list:
        if d.model_name not in allowed:
            continue
        params = {k: v for k in _SHOWN_PARAMS if (v := getattr(d.params, k)) is not None}
        route = gateway.routes.get(d.index)
        if route is None:  # a wildcard: each model string it serves has its own route
            info = {**d.model_info, "id": d.id, "provider": "wildcard"}
        else:
            info = {**d.model_info, "id": d.id, "provider": route.provider}
            info.setdefault(
                "mode", "chat" if route.chat else "embedding" if route.embeddings else None
            )
        data.append({"model_name": d.model_name, "litellm_params": params, "model_info": info})
    return Response(encoder.encode({"data": data}), media_type=_JSON)


async def liveliness(request: Request) -> Response:
    return Response(b'"I\'m alive!"', media_type=_JSON)


async def readiness(request: Request) -> Response:
    """Unauthenticated, so it says nothing about the configuration: only whether it serves."""
    ready = request.app.state.ready
    body = b'{"status":"healthy"}' if ready else b'{"status":"starting"}'
    return Response(body, status_code=200 if ready else 503, media_type=_JSON)


def _coerce_config(config: Config | dict[str, Any] | str | None) -> Config:
    if config is None:
        return parse_config({})  # still reads the master key from the environment
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
    completions = CallRoute(gw, "chat", chat.serve)
    embed = CallRoute(gw, "embeddings", embeddings.serve)
    routes: list[BaseRoute] = [
        *plugin_routes,
        Route("/v1/chat/completions", completions, methods=["POST"]),
        Route("/chat/completions", completions, methods=["POST"]),
        Route("/v1/embeddings", embed, methods=["POST"]),
        Route("/embeddings", embed, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/models", list_models, methods=["GET"]),
        Route("/health/liveliness", liveliness, methods=["GET"]),
        Route("/health/liveness", liveliness, methods=["GET"]),
        Route("/health/readiness", readiness, methods=["GET"]),
        Route("/v1/models/{model:path}", get_model, methods=["GET"]),
        Route("/models/{model:path}", get_model, methods=["GET"]),
        Route("/model/info", model_info, methods=["GET"]),
        Route("/v1/model/info", model_info, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
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

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: not_found})
    app.router = IndexedRouter(routes, lifespan=lifespan)  # fixed paths found at once
    app.state.gateway = gw
    app.state.ready = False
    app.state.created = int(time.time())
    app.state.model_owners = model_owners(gw)
    app.add_middleware(RequestContextMiddleware)
    if not gw.requires_auth and not gw.config.general_settings.allow_unauthenticated:
        app.add_middleware(LoopbackOnly)
    return app
