"""Which Bedrock data-plane operation a raw request path names, read from botocore's models.

One table for every operation of bedrock-runtime, bedrock-agent-runtime and bedrock-agentcore,
with the signing name, auth traits and URI template each service model declares; the
pass-through routes ``/bedrock/*`` with it and the simulator answers with it. Control-plane paths
(``/guardrails``, ``/agents/{id}/``, ``/runtimes/``...) match nothing. Matching is on the raw,
still percent-encoded path: ``%2F`` inside an ARN is not a separator. Templates are bucketed by
(method, first segment) so a request tries only a handful of patterns.

The table keeps what routing needs, not botocore's models: the three service descriptions (the
JSON files botocore ships, found as botocore's loader finds them: its ``data_path`` setting,
``AWS_DATA_PATH`` or the AWS config file's ``data_path``, for custom or newer models) are read
and dropped, without importing botocore (about 70 ms and several MB of a worker otherwise; the
AWS config file, when there is one, is parsed by botocore). The simulator, which
validates inputs against the models, loads them through botocore (``service_model``).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from .aws import shared_config_file

if TYPE_CHECKING:
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
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def _data_paths() -> list[Path]:
    """Where botocore's loader looks for service descriptions, in its order: its ``data_path``
    setting (``_data_path_setting``), ``~/.aws/models``, then the data botocore ships."""
    paths = [
        Path(os.path.expanduser(os.path.expandvars(p)))
        for p in _data_path_setting().split(os.pathsep)
        if p
    ]
    paths.append(Path.home() / ".aws" / "models")
    spec = importlib.util.find_spec("botocore")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("botocore is not installed: its service descriptions are needed")
    paths.append(Path(next(iter(spec.submodule_search_locations))) / "data")
    return paths


def _data_path_setting() -> str:
    """botocore's ``data_path`` setting: ``AWS_DATA_PATH``, else the ``data_path`` of the AWS
    config file's profile (``AWS_PROFILE``, else ``default``). The file is parsed by botocore,
    as ``outcrop.aws`` does for a default region, and only when it exists."""
    if "AWS_DATA_PATH" in os.environ:
        return os.environ["AWS_DATA_PATH"]
    if not shared_config_file():
        return ""
    import botocore.session
    from botocore.exceptions import ProfileNotFound

    try:
        value = botocore.session.Session().get_config_variable("data_path")
    except ProfileNotFound:  # the loader then fails too; the gateway says so elsewhere
        return ""
    return value if isinstance(value, str) else ""


_SERVICE_FILES = ("service-2.json", "service-2.json.gz")


def service_description(service: str) -> dict[str, Any]:
    """The service description (``service-2.json``) botocore would load for ``service``: its
    newest API version across the search paths, from the first path that has it."""
    paths = _data_paths()
    versions = {
        version.name
        for base in paths
        if (base / service).is_dir()
        for version in (base / service).iterdir()
        if any((version / name).is_file() for name in _SERVICE_FILES)
    }
    if not versions:
        raise RuntimeError(f"no service description for {service} in {[str(p) for p in paths]}")
    latest = max(versions)
    for base in paths:
        for name in _SERVICE_FILES:
            path = base / service / latest / name
            if path.is_file():
                raw = path.read_bytes()
                loaded: dict[str, Any] = json.loads(
                    gzip.decompress(raw) if name.endswith(".gz") else raw
                )
                return loaded
    raise AssertionError("unreachable: a version was found")


def _event_stream_output(operation: dict[str, Any], shapes: dict[str, Any]) -> bool:
    """botocore's ``get_event_stream_output() is not None``: a member of the output structure
    is an event stream."""
    output = operation.get("output", {}).get("shape")
    if output is None:
        return False
    members = shapes[output].get("members", {})
    return any(shapes[m["shape"]].get("eventstream") for m in members.values())


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
    buckets: dict[tuple[str, str], list[Operation]] = {}
    for service in DATA_PLANE_SERVICES:
        description = service_description(service)
        metadata, shapes = description["metadata"], description["shapes"]
        bearer = "smithy.api#httpBearerAuth" in (metadata.get("auth") or [])
        signing_name = metadata.get("signingName") or metadata["endpointPrefix"]
        for name, operation in description["operations"].items():
            http = operation["http"]
            template = http["requestUri"].split("?", 1)[0]
            op = Operation(
                service=service,
                signing_name=signing_name,
                bearer_auth=bearer,
                name=name,
                method=http["method"],
                template=template,
                pattern=_compile(template),
                event_stream=_event_stream_output(operation, shapes),
                status=int(http.get("responseCode", 200)),
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
