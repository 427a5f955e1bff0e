"""The ``otel:`` config section (all optional) and whether the plugin is on.

Where spans go is configured the OpenTelemetry way, with the standard ``OTEL_*`` environment
variables (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_PROTOCOL``,
``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_SERVICE_NAME``, ``OTEL_BSP_*``...).
"""

from __future__ import annotations

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
