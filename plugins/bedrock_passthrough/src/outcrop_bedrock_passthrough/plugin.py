"""The hooks: model strings, the ``/bedrock/{path}`` routes, config validation at start-up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import quote

import structlog
from starlette.routing import BaseRoute, Route

import outcrop
from outcrop import (
    ConfigSection,
    DeploymentParams,
    GatewayAPI,
    ModelPrefix,
    ModelRoute,
    arn_region,
    clip,
    operation_table,
)

from . import DISTRIBUTION, PATH_PREFIX, PREFIX, PROVIDER, SECTION
from .handler import PassthroughApp
from .models import EXPLICIT, native_model_id
from .settings import Settings, aws_params, has_keys, parse_settings

log = structlog.get_logger("outcrop.bedrock_passthrough")
EXAMPLE = "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0"
DESCRIPTION = (
    "native Bedrock models served under /bedrock/* (Converse, InvokeModel, streams, CountTokens)"
)


@outcrop.hookimpl
def outcrop_register_models(register: Callable[[ModelPrefix], None]) -> None:
    # A chat provider registering the same prefixes owns them; the deployments stay native.
    register(ModelPrefix(PREFIX, DESCRIPTION, EXAMPLE, DISTRIBUTION))
    for form in EXPLICIT:
        register(
            ModelPrefix(
                PREFIX + form,
                DESCRIPTION + f" (LiteLLM's explicit {form[:-1]} form)",
                PREFIX + form + EXAMPLE.removeprefix(PREFIX),
                DISTRIBUTION,
            )
        )


@outcrop.hookimpl
def outcrop_parse_route(model: str, params: DeploymentParams) -> ModelRoute:
    model_id = native_model_id(model)
    label = quote(model_id, safe="-._~")
    return ModelRoute(
        provider=PROVIDER,
        service="bedrock-runtime",
        signing_name="bedrock",
        region=arn_region(model_id),
        chat=False,
        error=(
            f"{clip(model)!r} is a native Bedrock model, served by the native pass-through at "
            f"/bedrock/model/{label}/converse (or /bedrock/model/<model_name>/converse, and "
            "converse-stream, invoke, invoke-with-response-stream, count-tokens); chat "
            "completions on bedrock/{modelId} need a chat provider: "
            "`pip install outcrop-bedrock-converse`"
        ),
        resource=model_id,
    )


def _settings(gateway: GatewayAPI) -> Settings:
    return parse_settings(gateway.sections)


@outcrop.hookimpl
def outcrop_register_routes(register: Callable[[BaseRoute], None], gateway: GatewayAPI) -> None:
    operation_table()  # read botocore's service models now, not on the first request
    app = PassthroughApp(gateway, _settings(gateway))
    register(Route(PATH_PREFIX + "/{path:path}", app, methods=None, name=PROVIDER))
    register(Route(PATH_PREFIX, app, methods=None))


@outcrop.hookimpl
def outcrop_register_config_sections(register: Callable[[ConfigSection], None]) -> None:
    register(
        ConfigSection(
            SECTION,
            "defaults, endpoints and SigV4 key pairs of the native pass-through (/bedrock/*)",
            client_credentials=has_keys,
            aws_params=aws_params,
        )
    )


@outcrop.hookimpl
def outcrop_check_config(config: outcrop.Config) -> list[str] | None:
    try:
        settings = parse_settings(config.sections)
    except outcrop.ConfigError as exc:
        return exc.errors
    allow = config.general_settings.allow_raw_models
    if settings.only_aliases is not None and allow is not None and settings.only_aliases == allow:
        return [
            f"{SECTION}.only_aliases: deprecated, and it contradicts "
            f"general_settings.allow_raw_models: {str(allow).lower()}; remove it"
        ]
    return None


@outcrop.hookimpl
def outcrop_startup(gateway: GatewayAPI) -> None:
    settings = _settings(gateway)
    if settings.only_aliases is not None:
        log.warning(
            "passthrough_only_aliases_deprecated",
            message=f"{SECTION}.only_aliases is deprecated: use general_settings."
            f"allow_raw_models: {str(not settings.only_aliases).lower()}",
        )
    if settings.has_credentials():
        asyncio.get_running_loop().create_task(_warm(gateway, settings.params))


async def _warm(gateway: GatewayAPI, params: DeploymentParams) -> None:
    try:
        await gateway.credentials(params)
    except outcrop.OutcropError as exc:
        log.warning("passthrough_credentials_unavailable", error=exc.message)
