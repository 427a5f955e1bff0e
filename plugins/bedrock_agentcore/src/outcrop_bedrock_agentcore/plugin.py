"""The ``outcrop`` entry point: AgentCore runtimes behind ``POST /v1/chat/completions``.

Claims ``bedrock/agentcore/{AGENT_RUNTIME_ARN}`` and calls InvokeAgentRuntime on
``bedrock-agentcore.{region}`` signed as ``bedrock-agentcore`` (the core's signer does the
signing; the region is the ARN's unless the deployment sets ``aws_region_name``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from outcrop import (
    ChatCall,
    ChatDelta,
    DeploymentParams,
    ModelPrefix,
    ModelRoute,
    UpstreamRequest,
    UpstreamResponse,
    hookimpl,
)

from . import DISTRIBUTION, PREFIX, PROVIDER, SERVICE, SIGNING_NAME
from .errors import map_error
from .models import RuntimeArn, parse_runtime_arn
from .params import check_deployment
from .request import RUNTIME_SESSION_HEADER, build_request, remember_session
from .response import deltas_for

EXAMPLE = f"{PREFIX}arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/my_agent-AbCdEf1234"


@hookimpl
def outcrop_register_models(register: Callable[[ModelPrefix], None]) -> None:
    register(
        ModelPrefix(
            PREFIX,
            "AgentCore agent runtimes (InvokeAgentRuntime)",
            EXAMPLE,
            DISTRIBUTION,
        )
    )


@hookimpl
def outcrop_parse_route(model: str, params: DeploymentParams) -> ModelRoute:
    runtime = parse_runtime_arn(model[len(PREFIX) :])
    check_deployment(params.extra)
    return ModelRoute(
        provider=PROVIDER,
        service=SERVICE,
        signing_name=SIGNING_NAME,
        region=runtime.region,
        data={"runtime": runtime},
        resource=runtime.arn,
    )


@hookimpl
def outcrop_translate_request(call: ChatCall) -> UpstreamRequest:
    runtime: RuntimeArn = call.route.data["runtime"]
    return build_request(call, runtime)


@hookimpl
def outcrop_translate_response(
    call: ChatCall, response: UpstreamResponse
) -> AsyncIterator[ChatDelta]:
    # AWS echoes the session it used; it is the one the client must send next time.
    echoed = response.headers.get(RUNTIME_SESSION_HEADER)
    if echoed and echoed.isprintable() and echoed.isascii():
        remember_session(call, echoed)
    return deltas_for(response)


@hookimpl
def outcrop_map_error(
    call: ChatCall, status: int, body: bytes, headers: dict[str, str]
) -> Exception | None:
    return map_error(status, body, headers)
