"""``GET /health``: each deployment's health by a cheap real call (LiteLLM's endpoint).

A one-token chat call ("ping", ``max_tokens: 1``, dropped where a target cannot honour it) on
exactly that deployment, no failover, all deployments at once, each within its timeout. It
spends a little (each call is accounted like any other, surface ``health``), so it needs the
master key (or an admin key) when the gateway authenticates callers. ``?model=NAME`` checks
one model_name. Models not served on the chat route are listed as not checked.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .chat import call_on, collect, open_stream
from .config import Deployment
from .errors import OutcropError
from .gateway import Gateway
from .lifecycle import CallLifecycle, describe
from .wire import ChatRequest, Message, encoder

#: Seconds one check may take when its deployment sets no ``timeout``.
CHECK_TIMEOUT_S = 30.0


async def health(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    try:
        principal = gateway.authenticate(request.headers)
        if gateway.requires_auth and not principal.admin:
            raise OutcropError(
                "GET /health makes a call to every deployment: it needs the master key",
                403,
                code="forbidden",
            )
    except OutcropError as exc:
        return Response(exc.openai_body(), status_code=exc.status, media_type="application/json")
    only = request.query_params.get("model")
    deployments = [d for d in gateway.config.model_list if only is None or d.model_name == only]
    results = await asyncio.gather(*(_check(gateway, d) for d in deployments))
    healthy = [r for ok, r in results if ok is True]
    unhealthy = [r for ok, r in results if ok is False]
    body = {
        "healthy_endpoints": healthy,
        "unhealthy_endpoints": unhealthy,
        "healthy_count": len(healthy),
        "unhealthy_count": len(unhealthy),
        "not_checked": [r for ok, r in results if ok is None],
    }
    return Response(encoder.encode(body), media_type="application/json")


async def _check(gateway: Gateway, d: Deployment) -> tuple[bool | None, dict[str, Any]]:
    route = gateway.route(d)
    entry: dict[str, Any] = {
        "model_name": d.model_name,
        "model": d.params.model,
        "id": d.id,
        "provider": route.provider,
    }
    if not route.chat:
        entry["reason"] = "not served on the chat route"
        return None, entry
    ping = ChatRequest(
        model=d.model_name,
        messages=[Message(role="user", content="ping")],
        max_tokens=1,
        drop_params=True,
    )
    async with CallLifecycle(gateway, "health", "/health") as life:
        life.model = d.model_name
        try:
            call = call_on(gateway, ping, d, life.request_id)
            life.bind(call)
            entry["region"] = call.region
            deltas = await open_stream(gateway, call, life, failover=False)
            await asyncio.wait_for(
                collect(gateway, call, deltas), d.params.timeout or CHECK_TIMEOUT_S
            )
        except OutcropError as exc:
            life.record(exc)
            entry["error"] = describe(exc)
            return False, entry
        except TimeoutError:
            entry["error"] = "timed out"
            life.record(OutcropError("health check timed out", 504, code="timeout"))
            return False, entry
    return True, entry
