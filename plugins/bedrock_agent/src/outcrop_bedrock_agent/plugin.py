"""The hooks: ``bedrock/agent/{AGENT_ID}/{ALIAS_ID}`` served by bedrock-agent-runtime InvokeAgent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import outcrop
from outcrop import (
    ChatCall,
    ChatDelta,
    DeploymentParams,
    ModelPrefix,
    ModelRoute,
    UpstreamRequest,
    UpstreamResponse,
)

from . import DISTRIBUTION, PREFIX, PROVIDER, SERVICE, SIGNING_NAME
from .errors import http_error
from .models import EXAMPLE_MODEL, parse_model
from .params import SUPPORTED_PARAMS, check_deployment
from .request import build_request
from .response import deltas_for


@outcrop.hookimpl
def outcrop_register_models(register: Callable[[ModelPrefix], None]) -> None:
    register(ModelPrefix(PREFIX, "Bedrock Agents (InvokeAgent)", EXAMPLE_MODEL, DISTRIBUTION))


@outcrop.hookimpl
def outcrop_parse_route(model: str, params: DeploymentParams) -> ModelRoute:
    agent_id, alias_id = parse_model(model)
    check_deployment(params.extra)
    return ModelRoute(
        provider=PROVIDER,
        service=SERVICE,
        signing_name=SIGNING_NAME,
        supported_params=SUPPORTED_PARAMS,
        data={"agent_id": agent_id, "alias_id": alias_id},
        resource=agent_id,
    )


@outcrop.hookimpl
def outcrop_translate_request(call: ChatCall) -> UpstreamRequest:
    return build_request(call)


@outcrop.hookimpl
def outcrop_translate_response(
    call: ChatCall, response: UpstreamResponse
) -> AsyncIterator[ChatDelta]:
    return deltas_for(call, response)


@outcrop.hookimpl
def outcrop_map_error(
    call: ChatCall, status: int, body: bytes, headers: dict[str, str]
) -> Exception | None:
    return http_error(status, body, headers)
