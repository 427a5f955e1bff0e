"""The embeddings pipeline (``POST /v1/embeddings`` and ``outcrop.embedding``).

prepare (route, deployment) -> ``outcrop_translate_embeddings_request`` (one or more upstream
requests) -> sign and send them concurrently -> ``outcrop_translate_embeddings_response`` per
answer -> one OpenAI ``list`` of embeddings, encoded as the caller asked.

Each upstream request goes through the router's loop: a retryable failure moves it to another
deployment of the alias (the call translated again for that deployment, once, and its request
of the same position sent) or repeats it. The deployments of one alias must split the inputs
alike (the same embedding model in several regions or accounts: vectors of different models
do not mix anyway).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import struct
from collections.abc import Mapping
from typing import Any

from .chat import open_call, routed_fields
from .config import Deployment, DeploymentParams
from .errors import OutcropError, error_from_aws
from .gateway import Gateway
from .headers import ATTEMPTS_HEADER, COST_HEADER, raw_headers
from .lifecycle import CallLifecycle, Receive
from .routing import request_tags
from .types import EmbeddingCall, EmbeddingResult, Principal
from .upstream import MAX_ERROR_BODY, UpstreamRequest, UpstreamResponse
from .wire import (
    EmbeddingData,
    EmbeddingList,
    EmbeddingRequest,
    EmbeddingUsage,
    Usage,
    decode_embedding_request,
    encoder,
)

#: OpenAI's own cap on inputs per request.
MAX_INPUTS = 2048
#: Upstream requests of one call in flight at once.
CONCURRENCY = 8


def prepare(
    gateway: Gateway,
    request: EmbeddingRequest,
    provider_params: dict[str, Any],
    headers: Mapping[str, str],
    request_id: str,
    params: DeploymentParams | None = None,
    principal: Principal | None = None,
) -> EmbeddingCall:
    """Route the call and check its input; raises ``OutcropError`` (4xx) on bad input.
    ``principal``: the caller, whose own tags join the request's."""
    count = len(request.texts())
    if count == 0:
        raise OutcropError("`input` must not be empty", 400, param="input")
    if count > MAX_INPUTS:
        raise OutcropError(f"`input` has {count} items; at most {MAX_INPUTS}", 400, param="input")
    metadata = provider_params.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else None
    tags = request_tags(provider_params, metadata, headers, principal)
    route, fields = routed_fields(gateway, request.model, provider_params, params, tags)
    if not route.embeddings:
        raise OutcropError(
            f"model {request.model!r} is not an embeddings model (served by "
            f"{route.provider!r}, which does not answer /v1/embeddings for it)",
            400,
            param="model",
            code="unsupported_model",
        )
    return EmbeddingCall(request_id=request_id, request=request, headers=headers, **fields)


async def serve(life: CallLifecycle, scope: Any, receive: Receive) -> None:
    """One HTTP embeddings call, start to answer, inside its lifecycle."""
    gateway: Gateway = life.gateway
    call = await open_call(life, scope, receive, decode_embedding_request, prepare)
    answer = await run(gateway, call, life)
    out = [(b"content-type", b"application/json"), *raw_headers(call.response_headers)]
    if call.cost is not None:
        out.append((COST_HEADER.encode(), repr(call.cost).encode()))
    await life.send({"type": "http.response.start", "status": 200, "headers": out})
    await life.send({"type": "http.response.body", "body": encoder.encode(answer)})


class _Moves:
    """The call translated for each other deployment a request failed over to (once each)."""

    def __init__(self, gateway: Gateway, call: EmbeddingCall, count: int) -> None:
        self._gateway = gateway
        self._call = call
        self._count = count
        self._done: dict[int, tuple[EmbeddingCall, list[UpstreamRequest]]] = {}

    def on(self, deployment: Deployment) -> tuple[EmbeddingCall, list[UpstreamRequest]]:
        found = self._done.get(deployment.index)
        if found is None:
            call = self._call
            route = self._gateway.route(deployment)
            dparams = deployment.params
            region = self._gateway.aws.region(dparams, route.region)
            body = {k: v for k, v in call.provider_params.items() if k not in call.params.extra}
            moved = dataclasses.replace(
                call,
                route=route,
                params=dparams,
                deployment=deployment,
                provider_params={**dparams.extra, **body},
                region=region,
                endpoint=self._gateway.aws.endpoint(route.service, region, dparams),
                model=call.request.model,
                state={},
            )
            requests = _translate(self._gateway, moved)
            if len(requests) != self._count:
                raise OutcropError(
                    f"deployment {deployment.id!r} splits the inputs into {len(requests)} "
                    f"upstream requests, {self._count} for {call.deployment and call.deployment.id!r}:"
                    " the deployments of an embeddings model_name must serve the same model",
                    500,
                )
            found = self._done[deployment.index] = (moved, requests)
        return found


async def _one(
    gateway: Gateway,
    call: EmbeddingCall,
    position: int,
    upstream: UpstreamRequest,
    gate: asyncio.Semaphore,
    moves: _Moves,
    life: CallLifecycle | None,
    attempts: list[int],
) -> tuple[EmbeddingCall, EmbeddingResult]:
    async def attempt(deployment: Deployment | None) -> UpstreamResponse:
        attempts[0] += 1
        target, request = call, upstream
        if deployment is not None and deployment is not call.deployment:
            target, requests = moves.on(deployment)
            request = requests[position]
        request.fill_in(
            target.route.service,
            target.route.signing_name,
            target.region,
            target.params.timeout,
            target.params.connect_timeout,
        )
        return await gateway.send(request, target.params)

    deployment = call.deployment
    async with gate:
        response, served = await gateway.send_routed(
            attempt,
            model_name=deployment.model_name if deployment is not None else None,
            deployment=deployment,
            life=life,
            fallbacks=False,  # another model_name may be another embedding model
            track=position == 0,  # the router counts the call once
            tags=call.tags,
        )
        try:
            failed = response.status >= 300  # an error body is only read up to its cap
            body = await (response.read_up_to(MAX_ERROR_BODY) if failed else response.read())
        finally:
            response.close()
            call.upstream_seconds = max(call.upstream_seconds, response.waited)
    headers = {k.lower(): v for k, v in response.headers.items()}
    if response.status >= 300:
        raise error_from_aws(response.status, body, headers)
    answered = call if served is None or served is deployment else moves.on(served)[0]
    provider = gateway.provider(answered.route)
    translate = provider.translate_embeddings_response
    result = translate(call=answered, body=body, headers=headers) if translate else None
    if not isinstance(result, EmbeddingResult):
        raise OutcropError(f"plugin {provider.name!r} did not translate the embeddings answer", 500)
    return answered, result


def _translate(gateway: Gateway, call: EmbeddingCall) -> list[UpstreamRequest]:
    provider = gateway.provider(call.route)
    translate = provider.translate_embeddings_request
    requests = translate(call=call) if translate is not None else None
    if not requests:
        raise OutcropError(
            f"plugin {provider.name!r} did not translate the embeddings request", 500
        )
    return list(requests)


def _encode(vector: list[float], encoding: str | None) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector


async def run(
    gateway: Gateway, call: EmbeddingCall, life: CallLifecycle | None = None
) -> EmbeddingList:
    """Send the call's upstream requests and assemble the answer (prices it on ``call``).
    ``life`` (an HTTP call's) records each attempt of a request that made several."""
    requests = _translate(gateway, call)
    gate = asyncio.Semaphore(CONCURRENCY)
    moves = _Moves(gateway, call, len(requests))
    attempts = [0]  # upstream attempts of every request: x-outcrop-attempts
    answered = await asyncio.gather(
        *(_one(gateway, call, i, r, gate, moves, life, attempts) for i, r in enumerate(requests))
    )
    call.response_headers[ATTEMPTS_HEADER] = str(attempts[0])
    results = [result for _, result in answered]
    final = answered[-1][0]  # a request that failed over: the answer names its model
    if final is not call:
        call.model, call.params, call.deployment = final.model, final.params, final.deployment
    vectors = [v for result in results for v in result.vectors]
    expected = len(call.request.texts())
    if len(vectors) != expected:
        raise OutcropError(
            f"the upstream returned {len(vectors)} embeddings for {expected} inputs", 502
        )
    usages = [r.usage for r in results if r.usage is not None]
    if len(usages) == len(results):
        call.usage = sum(usages, Usage())
    call.cost = gateway.prices.cost(call.usage, call.model, call.params)
    encoding = call.request.encoding_format
    data = [EmbeddingData(i, _encode(v, encoding)) for i, v in enumerate(vectors)]
    usage = (
        EmbeddingUsage(call.usage.prompt_tokens, call.usage.prompt_tokens) if call.usage else None
    )
    return EmbeddingList(data, call.model, usage)
