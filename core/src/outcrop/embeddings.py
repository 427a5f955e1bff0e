"""The embeddings pipeline (``POST /v1/embeddings`` and ``outcrop.embedding``).

prepare (route, deployment) -> ``outcrop_translate_embeddings_request`` (one or more upstream
requests) -> sign and send them concurrently -> ``outcrop_translate_embeddings_response`` per
answer -> one OpenAI ``list`` of embeddings, encoded as the caller asked.
"""

from __future__ import annotations

import asyncio
import base64
import struct
from collections.abc import Mapping
from typing import Any

from .chat import open_call, routed_fields
from .config import DeploymentParams
from .errors import OutcropError, error_from_aws
from .gateway import Gateway
from .headers import COST_HEADER, raw_headers
from .lifecycle import CallLifecycle, Receive
from .types import EmbeddingCall, EmbeddingResult
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
) -> EmbeddingCall:
    """Route the call and check its input; raises ``OutcropError`` (4xx) on bad input."""
    count = len(request.texts())
    if count == 0:
        raise OutcropError("`input` must not be empty", 400, param="input")
    if count > MAX_INPUTS:
        raise OutcropError(f"`input` has {count} items; at most {MAX_INPUTS}", 400, param="input")
    route, fields = routed_fields(gateway, request.model, provider_params, params)
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
    answer = await run(gateway, call)
    out = [(b"content-type", b"application/json"), *raw_headers(call.response_headers)]
    if call.cost is not None:
        out.append((COST_HEADER.encode(), repr(call.cost).encode()))
    await life.send({"type": "http.response.start", "status": 200, "headers": out})
    await life.send({"type": "http.response.body", "body": encoder.encode(answer)})


async def _one(
    gateway: Gateway, call: EmbeddingCall, upstream: UpstreamRequest, gate: asyncio.Semaphore
) -> EmbeddingResult:
    upstream.fill_in(
        call.route.service,
        call.route.signing_name,
        call.region,
        call.params.timeout,
        call.params.connect_timeout,
    )

    async def attempt(_: object) -> UpstreamResponse:
        return await gateway.send(upstream, call.params)

    async with gate:
        # the request was translated for this deployment: retries repeat it there
        response, _ = await gateway.send_routed(
            attempt, model_name=None, deployment=call.deployment
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
    provider = gateway.provider(call.route)
    translate = provider.translate_embeddings_response
    result = translate(call=call, body=body, headers=headers) if translate is not None else None
    if not isinstance(result, EmbeddingResult):
        raise OutcropError(f"plugin {provider.name!r} did not translate the embeddings answer", 500)
    return result


def _encode(vector: list[float], encoding: str | None) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector


async def run(gateway: Gateway, call: EmbeddingCall) -> EmbeddingList:
    """Send the call's upstream requests and assemble the answer (prices it on ``call``)."""
    provider = gateway.provider(call.route)
    translate = provider.translate_embeddings_request
    requests = translate(call=call) if translate is not None else None
    if not requests:
        raise OutcropError(
            f"plugin {provider.name!r} did not translate the embeddings request", 500
        )
    gate = asyncio.Semaphore(CONCURRENCY)
    results = await asyncio.gather(*(_one(gateway, call, r, gate) for r in requests))
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
