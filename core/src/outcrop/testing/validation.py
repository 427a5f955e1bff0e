"""What AWS validates on a matched operation's input, from botocore's shape constraints.

Operations and their matching live in ``outcrop.operations``; this module checks the URI,
header, query and body members of a request the way AWS answers a ValidationException.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from botocore.model import Shape
from botocore.validate import ParamValidator

from outcrop.operations import OperationMatch

#: Services whose JSON bodies are validated member by member, all the way down.
DEEP_VALIDATION = frozenset({"bedrock-runtime"})


# bedrock-agentcore's model puts no constraint on the runtime label; these are the
# AgentRuntimeArn / AgentRuntimeId patterns of bedrock-agentcore-control.
_RUNTIME_ARN = re.compile(
    r"arn:aws(-[^:]+)?:bedrock-agentcore:[a-z0-9-]+:[0-9]{12}:runtime/[a-zA-Z][a-zA-Z0-9_]{0,47}-[a-zA-Z0-9]{10}\Z"
)
_RUNTIME_ID = re.compile(r"[a-zA-Z][a-zA-Z0-9_]{0,99}-[a-zA-Z0-9]{10}\Z")


@cache
def _pattern(raw: str) -> re.Pattern[str] | None:
    try:
        return re.compile(raw)
    except re.error:
        return None  # Java-only classes such as \P{C}: AWS checks them, we cannot


def _violation(name: str, value: str, shape: Shape) -> str | None:
    meta = shape.metadata
    if "min" in meta and len(value) < meta["min"]:
        return f"Member must have length greater than or equal to {meta['min']}"
    if "max" in meta and len(value) > meta["max"]:
        return f"Member must have length less than or equal to {meta['max']}"
    pattern = _pattern(meta["pattern"]) if "pattern" in meta else None
    if pattern is not None and not pattern.search(value):
        return f"Member must satisfy regular expression pattern: {meta['pattern']}"
    enum = getattr(shape, "enum", None)
    if enum and value not in enum:
        return f"Member must satisfy enum value set: [{', '.join(enum)}]"
    return None


def validate(
    found: OperationMatch,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    body: Any,
) -> list[str]:
    """AWS-style validation messages for the URI, header, query and top-level body members.

    ``body`` is the parsed JSON body (a dict) for JSON operations, else ``None``.
    """
    labels = found.decoded_labels()
    shape = found.operation.model.input_shape
    if shape is None:
        return []
    problems: list[str] = []
    required = set(shape.required_members)
    for name, member in shape.members.items():
        where = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if where == "uri":
            value = labels.get(wire)
        elif where == "header":
            value = headers.get(wire.lower())
        elif where == "querystring":
            value = query.get(wire)
        elif shape.serialization.get("payload") or body is None:
            continue  # raw payload: nothing to look into
        else:
            value = body.get(wire)
        if value is None:
            if name in required and not member.metadata.get("idempotencyToken"):
                problems.append(
                    f"Value null at '{name}' failed to satisfy constraint: Member must not be null"
                )
            continue
        if isinstance(value, str) and member.type_name == "string":
            issue = _violation(name, value, member)
            if issue:
                shown = "***" if member.metadata.get("sensitive") else value
                problems.append(
                    f"Value '{shown}' at '{name}' failed to satisfy constraint: {issue}"
                )
    if found.operation.service == "bedrock-agentcore" and "agentRuntimeArn" in labels:
        runtime = labels["agentRuntimeArn"]
        if _RUNTIME_ID.match(runtime):
            if "accountId" not in query:
                problems.append("accountId is required when agentRuntimeArn is an agent runtime id")
        elif not _RUNTIME_ARN.match(runtime):
            problems.append(
                f"Value '{runtime}' at 'agentRuntimeArn' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {_RUNTIME_ARN.pattern}"
            )
    return problems


def _walk(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    """Range, length, enum and pattern checks below the top level (botocore checks types)."""
    meta = shape.metadata
    kind = shape.type_name
    if meta.get("document"):
        return
    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                _walk(member, value[name], f"{path}.{name}", problems)
    elif kind == "list" and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            problems.append(
                f"Value at '{path}' failed to satisfy constraint: Member must have "
                f"length less than or equal to {meta['max']}"
            )
        for i, item in enumerate(value):
            _walk(shape.member, item, f"{path}.{i + 1}.member", problems)
    elif kind == "map" and isinstance(value, dict):
        if "max" in meta and len(value) > meta["max"]:
            problems.append(
                f"Value at '{path}' failed to satisfy constraint: Member must have "
                f"length less than or equal to {meta['max']}"
            )
        for key, item in value.items():
            if isinstance(key, str):
                issue = _violation(path, key, shape.key)
                if issue:
                    problems.append(
                        f"Value '{key}' at '{path}' failed to satisfy constraint: {issue}"
                    )
            _walk(shape.value, item, f"{path}.{key}", problems)
    elif kind == "string" and isinstance(value, str):
        issue = _violation(path, value, shape)
        if issue:
            shown = "***" if meta.get("sensitive") else value
            problems.append(f"Value '{shown}' at '{path}' failed to satisfy constraint: {issue}")
    elif kind in ("integer", "long", "float", "double") and isinstance(value, int | float):
        if "min" in meta and value < meta["min"]:
            problems.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: Member "
                f"must have value greater than or equal to {meta['min']}"
            )
        if "max" in meta and value > meta["max"]:
            problems.append(
                f"Value '{value}' at '{path}' failed to satisfy constraint: Member "
                f"must have value less than or equal to {meta['max']}"
            )


def validate_body(found: OperationMatch, body: dict[str, Any]) -> list[str]:
    """A JSON body checked against the operation's input shape, as deeply as AWS does:
    types, required members, unions, unknown members (botocore's validator), then ranges,
    lengths, enums and patterns. Blobs are base64 text on the wire, which botocore accepts."""
    shape = found.operation.model.input_shape
    if shape is None:
        return []
    labels = found.decoded_labels()
    located = {n for n, m in shape.members.items() if m.serialization.get("location")}
    params = {k: v for k, v in body.items() if k not in located}
    params.update({n: labels[n] for n in located if n in labels})
    report = ParamValidator().validate(params, shape)
    problems = (
        [line for line in report.generate_report().splitlines() if line]
        if report.has_errors()
        else []
    )
    for name, member in shape.members.items():
        if name in params and name not in located:
            _walk(member, params[name], name, problems)
    return problems
