"""The entry point: traces for a gateway whose configuration turns them on
(``litellm_settings.callbacks: ["otel"]``, or ``otel.enabled``).

A gateway that does not is untouched: no per-call or per-request hook, and the OpenTelemetry SDK
is not even imported.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import structlog

import outcrop
from outcrop import Config, ConfigSection, GatewayAPI

from . import settings as _settings
from .settings import CALLBACK, LANGFUSE_CALLBACK, SECTION, Target

log = structlog.get_logger("outcrop.otel")


@outcrop.hookimpl
def outcrop_register_callbacks(register: Callable[[str], None]) -> None:
    register(CALLBACK)
    register(LANGFUSE_CALLBACK)


@outcrop.hookimpl
def outcrop_register_config_sections(register: Callable[[ConfigSection], None]) -> None:
    register(ConfigSection(SECTION, "outcrop-otel: content capture, service name"))


@outcrop.hookimpl
def outcrop_check_config(config: Config) -> list[str] | None:
    try:
        settings = _settings.parse(config.sections.get(SECTION))
    except msgspec.ValidationError as exc:
        return [f"{SECTION}: {exc}"]
    callbacks = _callbacks(config)
    if LANGFUSE_CALLBACK in callbacks:
        try:
            _settings.langfuse_target()
        except ValueError as exc:
            return [str(exc)]
    if not (settings.enabled or CALLBACK in callbacks):
        return None
    from .export import PROTOCOLS, protocol

    if protocol() not in PROTOCOLS:
        return [
            f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol()!r} is not supported; "
            f"use one of {', '.join(PROTOCOLS)}"
        ]
    return None


@outcrop.hookimpl
def outcrop_startup(gateway: GatewayAPI) -> None:
    settings = _settings.parse(gateway.sections.get(SECTION))
    otlp = CALLBACK in gateway.callbacks or settings.enabled
    langfuse = LANGFUSE_CALLBACK in gateway.callbacks
    if not (otlp or langfuse):
        return
    if _settings.sdk_disabled():
        log.info("otel_disabled", message="OTEL_SDK_DISABLED=true: no traces are recorded")
        return
    from .sampling import from_environment
    from .tracing import Tracing

    sampler, ignored = from_environment()
    for message in ignored:  # the specification's rule: log the value, behave as if unset
        log.warning("otel_setting_ignored", message=message)
    # The per-call hooks belong to this gateway only (a process may run several gateways).
    # Langfuse has its own exporter: the same spans (encoded once), to its OTLP endpoint.
    targets: list[Target | None] = [None] if otlp else []
    if langfuse:
        targets.append(_settings.langfuse_target())
    tracing = Tracing(gateway, settings, sampler, targets)
    gateway.register_plugin(tracing, f"outcrop_otel.{id(gateway)}")
    if settings.capture_content:
        gateway.capture_output = True


def _callbacks(config: Config) -> set[str]:
    s = config.general_settings
    return {*s.callbacks, *s.success_callback, *s.failure_callback}
