"""The ``otel:`` config section (all optional) and whether the plugin is on.

Where spans go is configured the OpenTelemetry way, with the standard ``OTEL_*`` environment
variables (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_PROTOCOL``,
``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_SERVICE_NAME``, ``OTEL_BSP_*``, ``OTEL_TRACES_SAMPLER``...);
``OTEL_SDK_DISABLED=true`` turns tracing off whatever the configuration says.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

SECTION = "otel"
CALLBACK = "otel"


class OtelSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``otel:`` in the config file."""

    #: Trace calls even without the ``otel`` callback (the callback turns tracing on too).
    enabled: bool = False
    #: Record what was sent to the model and what it answered on the spans (off: never).
    capture_content: bool = False
    #: The most characters of a prompt or an answer a span keeps.
    max_content_chars: Annotated[int, msgspec.Meta(gt=0)] = 16384
    #: ``service.name`` when ``OTEL_SERVICE_NAME`` is not set.
    service_name: str = "outcrop"


def parse(raw: Any) -> OtelSettings:
    """The settings from the section's value; ``msgspec.ValidationError`` when malformed."""
    return msgspec.convert(raw or {}, OtelSettings)


def sdk_disabled(environ: Mapping[str, str] = os.environ) -> bool:
    """``OTEL_SDK_DISABLED=true`` (any case): OpenTelemetry's switch that turns every SDK into a
    no-op; here, no trace is recorded, propagated or sent."""
    return (environ.get("OTEL_SDK_DISABLED") or "").strip().lower() == "true"
