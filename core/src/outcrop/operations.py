"""Which Bedrock data-plane operation a raw request path names, read from botocore's models.

One table for every operation of bedrock-runtime, bedrock-agent-runtime and bedrock-agentcore,
with the signing name, auth traits and URI template each service model declares; the
pass-through routes ``/bedrock/*`` with it and the simulator answers with it. Control-plane paths
(``/guardrails``, ``/agents/{id}/``, ``/runtimes/``...) match nothing. Matching is on the raw,
still percent-encoded path: ``%2F`` inside an ARN is not a separator. Templates are bucketed by
(method, first segment) so a request tries only a handful of patterns.

The table keeps what routing needs, not botocore's models: the three service descriptions are
loaded by a throwaway session and dropped (about 5 MB of a worker's RSS otherwise). The
simulator, which validates inputs against the models, loads them itself (``service_model``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from urllib.parse import unquote

import botocore.session
from botocore.model import OperationModel, ServiceModel

#: The data-plane services in the table.
DATA_PLANE_SERVICES = ("bedrock-runtime", "bedrock-agent-runtime", "bedrock-agentcore")
_LABEL = re.compile(r"\{([^}]+)\}")


@dataclass(frozen=True, slots=True)
class Operation:
    """One data-plane operation: where it goes, how it is signed and how it answers."""

    service: str
    signing_name: str
    #: The service model allows a Bedrock API key (``Authorization: Bearer``) besides SigV4.
    bearer_auth: bool
    name: str
    method: str
    #: The path part of botocore's ``requestUri``, labels in braces: ``/model/{modelId}/converse``.
    template: str
    pattern: re.Pattern[str]
    #: The answer is an event stream.
    event_stream: bool
    #: The status of a successful response.
    status: int

    @property
    def model(self) -> OperationModel:
        """botocore's model of the operation (its shapes), loaded on first use."""
        return service_model(self.service).operation_model(self.name)


@cache  # one per service of DATA_PLANE_SERVICES
def service_model(service: str) -> ServiceModel:
    """botocore's model of one data-plane service (the simulator's; routing never needs it)."""
    return botocore.session.get_session().get_service_model(service)


@dataclass(frozen=True, slots=True)
class OperationMatch:
    """An operation matched on a raw path: label values stay percent-encoded, with their spans."""

    operation: Operation
    labels: dict[str, str]
    spans: dict[str, tuple[int, int]]

    def decoded_labels(self) -> dict[str, str]:
        return {name: unquote(value) for name, value in self.labels.items()}


def _compile(template: str) -> re.Pattern[str]:
    out, pos = [], 0
    for label in _LABEL.finditer(template):
        out.append(re.escape(template[pos : label.start()]))
        name = label.group(1)
        out.append(f"(?P<{name.rstrip('+')}>.+)" if name.endswith("+") else f"(?P<{name}>[^/]+)")
        pos = label.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out) + r"\Z")


def _first_segment(path: str) -> str:
    return path[1:].split("/", 1)[0]


@cache
def operation_table() -> dict[tuple[str, str], tuple[Operation, ...]]:
    """(method, first path segment) -> operations, most literal template first."""
    session = botocore.session.Session()  # its loader's cache goes with it
    buckets: dict[tuple[str, str], list[Operation]] = {}
    for service in DATA_PLANE_SERVICES:
        model = session.get_service_model(service)
        bearer = "smithy.api#httpBearerAuth" in (model.metadata.get("auth") or [])
        for name in model.operation_names:
            op_model = model.operation_model(name)
            template = op_model.http["requestUri"].split("?", 1)[0]
            op = Operation(
                service=service,
                signing_name=model.signing_name,
                bearer_auth=bearer,
                name=name,
                method=op_model.http["method"],
                template=template,
                pattern=_compile(template),
                event_stream=op_model.get_event_stream_output() is not None,
                status=int(op_model.http.get("responseCode", 200)),
            )
            buckets.setdefault((op.method, _first_segment(template)), []).append(op)
    # A literal segment beats a label where two templates could both match.
    return {
        key: tuple(sorted(ops, key=lambda o: -len(_LABEL.sub("", o.template))))
        for key, ops in buckets.items()
    }


def all_operations() -> list[Operation]:
    """Every operation of the table."""
    return [op for ops in operation_table().values() for op in ops]


def match_operation(method: str, raw_path: str) -> OperationMatch | None:
    """The operation for ``method`` on a raw (still percent-encoded) path, or ``None``."""
    for op in operation_table().get((method, _first_segment(raw_path)), ()):
        found = op.pattern.match(raw_path)
        if found:
            names = found.groupdict()
            return OperationMatch(op, names, {name: found.span(name) for name in names})
    return None
