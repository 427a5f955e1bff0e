"""Which calls are recorded: ``OTEL_TRACES_SAMPLER`` and ``OTEL_TRACES_SAMPLER_ARG``.

The OpenTelemetry SDK's samplers, by their standard names:

- ``always_on`` / ``always_off``: every trace / none;
- ``traceidratio``: a share of traces (``OTEL_TRACES_SAMPLER_ARG``, 0 to 1, default 1.0),
  decided from the trace id as the SDK does, so every service sampling at the same ratio keeps
  the same traces;
- ``parentbased_always_on`` (the default), ``parentbased_always_off``,
  ``parentbased_traceidratio``: a call that continues a client's trace follows the client's
  ``sampled`` flag; a call that starts a trace uses the named root sampler.

As the OpenTelemetry specification asks, an unknown sampler name, or an argument that is not
a probability, is logged and ignored (the default sampler, a ratio of 1.0). A call that is not
sampled still sends ``traceparent`` upstream, with the ``sampled`` flag off, and records no
span.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .context import Parent

DEFAULT = "parentbased_always_on"
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
SAMPLED = 0x01
#: The SDK's ``TraceIdRatioBased``: the low 64 bits of the trace id against the ratio's bound.
_LOW_64 = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class Sampler:
    """A sampler's decision for a call: the trace flags its spans and upstream requests carry."""

    name: str
    #: The share of new traces recorded (0.0 for ``*always_off``, 1.0 for ``*always_on``).
    ratio: float
    #: Follow the client's ``sampled`` flag when the call continues its trace.
    parent_based: bool
    #: Trace ids whose low 64 bits are below this are sampled (from ``ratio``).
    bound: int

    @classmethod
    def named(cls, name: str, ratio: float = 1.0) -> Sampler:
        return cls(name, ratio, name.startswith("parentbased_"), round(ratio * (_LOW_64 + 1)))

    def flags(self, parent: Parent | None, trace_id: int) -> int:
        """The trace flags of a call: the client's when parent-based and there is a client
        trace, else the client's other flags with ``sampled`` from the trace id and the ratio."""
        if parent is not None and self.parent_based:
            return parent.flags
        sampled = SAMPLED if (trace_id & _LOW_64) < self.bound else 0
        return (parent.flags & ~SAMPLED if parent is not None else 0) | sampled


def from_environment(environ: Mapping[str, str] = os.environ) -> tuple[Sampler, list[str]]:
    """The sampler the environment names, and a warning for each value it had to ignore."""
    warnings: list[str] = []
    name = (environ.get("OTEL_TRACES_SAMPLER") or "").strip().lower() or DEFAULT
    if name not in SAMPLERS:
        warnings.append(
            f"OTEL_TRACES_SAMPLER: {name[:64]!r} is not a supported sampler (one of "
            f"{', '.join(SAMPLERS)}); using {DEFAULT}"
        )
        name = DEFAULT
    if name.endswith("always_off"):
        ratio = 0.0
    elif name.endswith("traceidratio"):
        ratio = _ratio(environ.get("OTEL_TRACES_SAMPLER_ARG"), warnings)
    else:
        ratio = 1.0
    return Sampler.named(name, ratio), warnings


def _ratio(raw: str | None, warnings: list[str]) -> float:
    if raw is None or not raw.strip():
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:  # NaN included
        warnings.append(
            f"OTEL_TRACES_SAMPLER_ARG: {raw.strip()[:64]!r} is not a probability from 0 to 1; "
            "using 1.0"
        )
        return 1.0
    return value
