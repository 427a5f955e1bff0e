"""The hooks: the two routes, the config section and its start-up checks."""

from __future__ import annotations

from collections.abc import Callable

from starlette.routing import BaseRoute, Route

import outcrop
from outcrop import ConfigSection, GatewayAPI

from . import SECTION
from .handler import MessagesApp
from .models import Models
from .settings import parse_settings


@outcrop.hookimpl
def outcrop_register_routes(register: Callable[[BaseRoute], None], gateway: GatewayAPI) -> None:
    settings = parse_settings(gateway.sections)
    models = Models(gateway, settings)
    problems = models.check()
    if problems:
        raise outcrop.ConfigError(problems)
    messages = MessagesApp(gateway, settings, models, count=False)
    count = MessagesApp(gateway, settings, models, count=True)
    register(Route("/v1/messages", messages, methods=["POST"], name="anthropic_messages"))
    register(Route("/v1/messages/count_tokens", count, methods=["POST"]))


@outcrop.hookimpl
def outcrop_register_config_sections(register: Callable[[ConfigSection], None]) -> None:
    register(
        ConfigSection(
            SECTION,
            "model aliases and forwarded betas of the Anthropic Messages API (/v1/messages)",
        )
    )


@outcrop.hookimpl
def outcrop_check_config(config: outcrop.Config) -> list[str] | None:
    try:
        parse_settings(config.sections)
    except outcrop.ConfigError as exc:
        return exc.errors
    return None
