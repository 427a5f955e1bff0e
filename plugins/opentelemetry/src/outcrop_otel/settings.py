"""The ``otel:`` config section (all optional) and whether the plugin is on.

Where spans go is configured the OpenTelemetry way, with the standard ``OTEL_*`` environment
variables (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_PROTOCOL``,
``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_SERVICE_NAME``, ``OTEL_BSP_*``, ``OTEL_TRACES_SAMPLER``...);
``OTEL_SDK_DISABLED=true`` turns tracing off whatever the configuration says.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec

SECTION = "otel"
CALLBACK = "otel"
#: LiteLLM's callback name: the same traces, exported to Langfuse's OTLP endpoint.
LANGFUSE_CALLBACK = "langfuse"
LANGFUSE_HOST = "https://cloud.langfuse.com"


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


@dataclass(frozen=True, slots=True)
class Target:
    """An OTLP/HTTP traces URL and the headers it needs, named by the configuration rather than
    by the ``OTEL_EXPORTER_OTLP_*`` variables."""

    url: str
    headers: dict[str, str]


def langfuse_target(environ: Mapping[str, str] = os.environ) -> Target:
    """Langfuse's OTLP endpoint (``{LANGFUSE_HOST}/api/public/otel/v1/traces``) with HTTP basic
    auth from the project's key pair, as Langfuse documents it; ``ValueError`` names what is
    missing."""
    public = (environ.get("LANGFUSE_PUBLIC_KEY") or "").strip()
    secret = (environ.get("LANGFUSE_SECRET_KEY") or "").strip()
    missing = [
        n for n, v in (("LANGFUSE_PUBLIC_KEY", public), ("LANGFUSE_SECRET_KEY", secret)) if not v
    ]
    if missing:
        raise ValueError(
            f"callbacks: {LANGFUSE_CALLBACK} needs {' and '.join(missing)} (the Langfuse "
            "project's API keys) in the environment"
        )
    host = (environ.get("LANGFUSE_HOST") or "").strip() or LANGFUSE_HOST
    token = base64.b64encode(f"{public}:{secret}".encode()).decode()
    return Target(
        host.rstrip("/") + "/api/public/otel/v1/traces",
        {"authorization": f"Basic {token}", "x-langfuse-ingestion-version": "4"},
    )
