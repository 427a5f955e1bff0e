"""Which AWS operation a raw ``/bedrock/{path}`` names, read from botocore's service models.

The table holds every operation of the three Bedrock data planes (bedrock-runtime,
bedrock-agent-runtime, bedrock-agentcore), so control-plane paths (``/guardrails``,
``/agents/{id}/``, ``/runtimes/``...) match nothing. Matching is on the raw, still
percent-encoded path: ``%2F`` inside an ARN is not a separator. Templates are bucketed by
(method, first segment) so a request tries only a handful of patterns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import botocore.session

SERVICES = ("bedrock-runtime", "bedrock-agent-runtime", "bedrock-agentcore")
_LABEL = re.compile(r"\{([^}]+)\}")
#: Operations botocore's model lists but the pass-through cannot relay, with the reason.
UNSUPPORTED = {
    "InvokeModelWithBidirectionalStream": (
        "InvokeModelWithBidirectionalStream needs a bidirectional HTTP/2 event stream, which the "
        "pass-through does not relay; call Bedrock directly for it"
    ),
}


@dataclass(frozen=True, slots=True)
class Operation:
    """One data-plane operation: where it goes and how its response is shaped."""

    service: str
    signing_name: str
    name: str
    method: str
    template: str
    pattern: re.Pattern[str]
    event_stream: bool


@dataclass(frozen=True, slots=True)
class Match:
    """An operation matched on a raw path: label values stay percent-encoded, with their spans."""

    operation: Operation
    labels: dict[str, str]
    spans: dict[str, tuple[int, int]]


def _compile(template: str) -> re.Pattern[str]:
    out, pos = [], 0
    for label in _LABEL.finditer(template):
        out.append(re.escape(template[pos:label.start()]))
        name = label.group(1)
        out.append(f"(?P<{name.rstrip('+')}>.+)" if name.endswith("+") else f"(?P<{name}>[^/]+)")
        pos = label.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out) + r"\Z")


def _first_segment(path: str) -> str:
    return path[1:].split("/", 1)[0]


@cache
def table() -> dict[tuple[str, str], tuple[Operation, ...]]:
    """(method, first path segment) -> operations, most literal template first."""
    session = botocore.session.get_session()
    buckets: dict[tuple[str, str], list[Operation]] = {}
    for service in SERVICES:
        model = session.get_service_model(service)
        for name in model.operation_names:
            op_model = model.operation_model(name)
            template = op_model.http["requestUri"].split("?", 1)[0]
            op = Operation(
                service=service,
                signing_name=model.signing_name,
                name=name,
                method=op_model.http["method"],
                template=template,
                pattern=_compile(template),
                event_stream=op_model.get_event_stream_output() is not None,
            )
            buckets.setdefault((op.method, _first_segment(template)), []).append(op)
    # A literal segment beats a label where two templates could both match.
    return {
        key: tuple(sorted(ops, key=lambda o: -len(_LABEL.sub("", o.template))))
        for key, ops in buckets.items()
    }


def match(method: str, raw_path: str) -> Match | None:
    """The operation for ``method`` on ``raw_path`` (the part after ``/bedrock``), or ``None``."""
    for op in table().get((method, _first_segment(raw_path)), ()):
        found = op.pattern.match(raw_path)
        if found:
            names = found.groupdict()
            return Match(op, names, {name: found.span(name) for name in names})
    return None
