"""The ``outcrop`` entry point: Bedrock foundation models behind the OpenAI chat API.

Claims ``bedrock/{modelId}`` and ``bedrock/converse/{modelId}`` and calls Converse (or
ConverseStream for ``stream: true``) on ``bedrock-runtime.{region}``, signed as ``bedrock``
by the core's signer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from outcrop import (
    ChatCall,
    ChatDelta,
    DeploymentParams,
    EmbeddingCall,
    EmbeddingResult,
    ModelPrefix,
    ModelPrice,
    ModelRoute,
    OutcropError,
    UpstreamRequest,
    UpstreamResponse,
    clip,
    hookimpl,
)

from . import CONVERSE_PREFIX, DISTRIBUTION, PREFIX, PROVIDER, SERVICE, SIGNING_NAME
from .embeddings import PRICES, build_requests, parse_answer
from .fetch import HOSTS_KEY, HostRules, fetch_images, image_urls, rules_for
from .models import ModelId, parse_model
from .params import SUPPORTED, check_members
from .request import Sent, build_request
from .response import from_converse, from_stream

EXAMPLE = "bedrock/us.anthropic.claude-3-5-sonnet-20240620-v1:0"


@hookimpl
def outcrop_register_models(register: Callable[[ModelPrefix], None]) -> None:
    register(
        ModelPrefix(
            PREFIX,
            "Bedrock foundation models and inference profiles on the "
            "chat API (Converse, ConverseStream) and, for Titan and Cohere "
            "embedding models, the embeddings API (InvokeModel)",
            EXAMPLE,
            DISTRIBUTION,
        )
    )
    register(
        ModelPrefix(
            CONVERSE_PREFIX,
            "the same, LiteLLM's explicit form",
            CONVERSE_PREFIX + EXAMPLE.removeprefix(PREFIX),
            DISTRIBUTION,
        )
    )


@hookimpl
def outcrop_parse_route(model: str, params: DeploymentParams) -> ModelRoute | None:
    parsed = parse_model(model)
    if parsed is None:
        return None
    check_members(params.extra)
    data: dict[str, object] = {"model": parsed}
    if params.extra.get(HOSTS_KEY) is not None:
        data[HOSTS_KEY] = HostRules.parse(params.extra[HOSTS_KEY])
    embeddings = parsed.embedding is not None
    return ModelRoute(
        provider=PROVIDER,
        service=SERVICE,
        signing_name=SIGNING_NAME,
        region=parsed.region,
        chat=not embeddings,
        error=f"{clip(model)!r} is an embeddings model: call /v1/embeddings"
        if embeddings
        else None,
        supported_params=SUPPORTED,
        data=data,
        embeddings=embeddings,
        resource=parsed.model_id,
    )


@hookimpl
def outcrop_translate_request(call: ChatCall) -> UpstreamRequest | Awaitable[UpstreamRequest]:
    model: ModelId = call.route.data["model"]
    rules = rules_for(call)
    if rules is not None:
        urls = image_urls(call)
        if urls:
            return _fetch_then_build(call, model, rules, urls)
    request, sent = build_request(call, model)
    call.state[PROVIDER] = sent
    return request


async def _fetch_then_build(
    call: ChatCall, model: ModelId, rules: HostRules, urls: list[tuple[str, str]]
) -> UpstreamRequest:
    fetched = await fetch_images(rules, urls)
    request, sent = build_request(call, model, fetched)
    call.state[PROVIDER] = sent
    return request


@hookimpl
def outcrop_translate_response(
    call: ChatCall, response: UpstreamResponse
) -> AsyncIterator[ChatDelta]:
    sent: Sent = call.state[PROVIDER]
    return from_stream(response, sent) if call.stream else from_converse(response, sent)


@hookimpl
def outcrop_register_pricing(register: Callable[[str, ModelPrice], None]) -> None:
    for model_id, per_million in PRICES.items():
        register(model_id, ModelPrice(per_million / 1_000_000, 0.0))


@hookimpl
def outcrop_translate_embeddings_request(call: EmbeddingCall) -> list[UpstreamRequest]:
    model: ModelId = call.route.data["model"]
    call.model = model.model_id  # what the answer names and the price table knows
    return build_requests(call, model)


@hookimpl
def outcrop_translate_embeddings_response(
    call: EmbeddingCall, body: bytes, headers: dict[str, str]
) -> EmbeddingResult:
    return parse_answer(call.route.data["model"], body, headers)


#: The native Bedrock API's URL prefix, which this plugin does not serve.
NATIVE_PATH = "/bedrock"
NATIVE_DISTRIBUTION = "outcrop-bedrock-passthrough"
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


async def _native_not_installed(request: Request) -> Response:
    error = OutcropError(
        f"the native Bedrock API ({NATIVE_PATH}/*) is not installed on this gateway: "
        f"`pip install {NATIVE_DISTRIBUTION}` serves it, with the same model_list; this "
        "gateway serves these models on /v1/chat/completions",
        404,
        aws_type="UnknownOperationException",
    )
    return Response(
        error.aws_body(),
        404,
        {"x-amzn-ErrorType": error.aws_type},
        media_type="application/json",
    )


# trylast: registered after every other plugin's routes, so it answers only the paths that
# no installed plugin serves (with the pass-through installed, none).
@hookimpl(trylast=True)
def outcrop_register_routes(register: Callable[[BaseRoute], None]) -> None:
    for path in (NATIVE_PATH, NATIVE_PATH + "/{path:path}"):
        register(Route(path, _native_not_installed, methods=_METHODS))
