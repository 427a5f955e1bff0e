"""Model strings: ``bedrock/agent/{AGENT_ID}/{ALIAS_ID}``, as InvokeAgent's URI labels accept them
(botocore's InvokeAgent model)."""

from __future__ import annotations

import re

from outcrop import OutcropError, clip

from . import PREFIX

EXAMPLE_MODEL = "bedrock/agent/L1RT58GYRW/MFPSBCXYTW"
EXPECTED_FORM = (
    "expected bedrock/agent/{AGENT_ID}/{ALIAS_ID}, each ID 1-10 letters or digits "
    f"(for example {EXAMPLE_MODEL})"
)

_AGENT_ID = re.compile(r"[0-9a-zA-Z]{1,10}\Z")


def parse_model(model: str) -> tuple[str, str]:
    """``bedrock/agent/{AGENT_ID}/{ALIAS_ID}`` -> ``(agent_id, alias_id)``; 400 otherwise."""
    parts = model.removeprefix(PREFIX).split("/") if model.startswith(PREFIX) else []
    if len(parts) != 2 or not all(_AGENT_ID.match(p) for p in parts):
        raise OutcropError(
            f"invalid Bedrock agent model {clip(model)!r}: {EXPECTED_FORM}",
            400,
            param="model",
            code="invalid_model",
        )
    return parts[0], parts[1]
