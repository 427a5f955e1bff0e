"""Model strings: ``bedrock/agentcore/{AGENT_RUNTIME_ARN}``, parsed and validated, with an error
that says what is wrong.

``arn:{partition}:bedrock-agentcore:{region}:{account}:runtime/{runtime_id}``. The runtime id is
checked loosely (AWS owns the exact pattern) so documentation placeholders such as
``runtime/my-agent-runtime`` are valid configuration; the region must be real, because it picks
the endpoint host and the SigV4 scope.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from outcrop import OutcropError, clip, is_region

from . import PREFIX

EXPECTED = f"{PREFIX}arn:aws:bedrock-agentcore:{{region}}:{{account_id}}:runtime/{{runtime_id}}"

_PARTITION = re.compile(r"aws(?:-[a-z]+)*\Z")
_ACCOUNT = re.compile(r"\d{12}\Z")
_RUNTIME_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}\Z")


@dataclass(frozen=True, slots=True)
class RuntimeArn:
    arn: str
    partition: str
    region: str
    account: str
    runtime_id: str


def _bad(arn: str, problem: str) -> OutcropError:
    return OutcropError(
        f"invalid AgentCore model {PREFIX}{clip(arn)!r}: {problem}; expected {EXPECTED}",
        400,
        param="model",
        code="invalid_model",
    )


def parse_runtime_arn(arn: str) -> RuntimeArn:
    """The parts of ``arn``; raises ``OutcropError`` (400) naming the first problem."""
    if not arn:
        raise _bad(arn, "the agent runtime ARN is missing")
    if any(c.isspace() or not c.isprintable() for c in arn):
        raise _bad(arn, "the ARN contains whitespace or control characters")
    parts = arn.split(":", 5)
    if parts[0] != "arn" or len(parts) != 6:
        raise _bad(
            arn,
            "not an ARN (a runtime id alone is not enough: the ARN fixes the region and account)",
        )
    _, partition, service, region, account, resource = parts
    if not _PARTITION.match(partition):
        raise _bad(arn, f"unknown partition {clip(partition)!r}")
    if service != "bedrock-agentcore":
        hint = (
            " (Bedrock Agents use bedrock/agent/{AGENT_ID}/{ALIAS_ID})"
            if service == "bedrock"
            else ""
        )
        raise _bad(arn, f"the service must be bedrock-agentcore, not {clip(service)!r}{hint}")
    if not is_region(region):  # the core's one region check: it picks the host and the scope
        raise _bad(arn, f"{clip(region)!r} is not an AWS region")
    if not _ACCOUNT.match(account):
        raise _bad(arn, f"the account id must be 12 digits, got {clip(account)!r}")
    kind, _, runtime_id = resource.partition("/")
    if kind != "runtime":
        raise _bad(arn, f"the resource must be runtime/{{runtime_id}}, got {clip(resource)!r}")
    if "/runtime-endpoint/" in f"/{runtime_id}":
        raise _bad(
            arn,
            "this is a runtime endpoint ARN: use the runtime ARN and pass the endpoint "
            "name as `qualifier`",
        )
    if not _RUNTIME_ID.match(runtime_id):
        raise _bad(arn, f"{clip(runtime_id)!r} is not a runtime id (letters, digits, '_' and '-')")
    return RuntimeArn(arn, partition, region, account, runtime_id)
