"""The ``prometheus:`` config section (all optional) and whether the plugin is on."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

#: The section this plugin reads, and the LiteLLM callback name that turns it on.
SECTION = "prometheus"
CALLBACK = "prometheus"

#: Seconds: a whole call, or the upstream part of it (LLM calls take seconds to minutes).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
#: Seconds the gateway itself adds to a call (sub-millisecond when healthy).
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
#: Seconds to the first streamed token.
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)

Buckets = Annotated[list[Annotated[float, msgspec.Meta(gt=0)]], msgspec.Meta(min_length=1)]


class PrometheusSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``prometheus:`` in the config file."""

    #: Also serve metrics without the ``prometheus`` callback (it turns the plugin on too).
    enabled: bool = False
    #: Where the metrics are served.
    path: str = "/metrics"
    #: A bearer token scrapers must present (``os.environ/NAME`` works); none: open.
    bearer_token: str | None = None
    #: Add the caller's key alias / team id as labels (one series per key or team: see the
    #: cardinality note in docs/observability.md).
    key_labels: bool = False
    team_labels: bool = False
    latency_buckets: Buckets = msgspec.field(default_factory=lambda: list(LATENCY_BUCKETS))
    overhead_buckets: Buckets = msgspec.field(default_factory=lambda: list(OVERHEAD_BUCKETS))
    ttft_buckets: Buckets = msgspec.field(default_factory=lambda: list(TTFT_BUCKETS))


def parse(raw: Any) -> PrometheusSettings:
    """The settings from the section's value; ``msgspec.ValidationError`` when malformed."""
    return msgspec.convert(raw or {}, PrometheusSettings)
