"""Native Bedrock model strings: ``bedrock/{modelId}``, ``bedrock/converse/{id}``, ``bedrock/invoke/{id}``.

``bedrock/agent/...`` and ``bedrock/agentcore/...`` belong to other plugins and are never
claimed here.
"""

from __future__ import annotations

import re

from outcrop import OutcropError, check_region, clip

PREFIX = "bedrock/"
_EXPLICIT = ("converse/", "invoke/")
_OTHER_PLUGINS = ("agent", "agentcore")
EXPECTED = "bedrock/{modelId} (also bedrock/converse/{modelId} or bedrock/invoke/{modelId})"
#: What Bedrock accepts as a model id: a foundation-model or inference-profile id, or an ARN.
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+-]{0,2047}\Z")


def native_model_id(model: str) -> str | None:
    """The Bedrock model id a native model string names, ``None`` when it is not one.

    Raises ``OutcropError`` (400) when the string is ours but malformed.
    """
    if not model.startswith(PREFIX):
        return None
    rest = model[len(PREFIX) :]
    explicit = rest.startswith(_EXPLICIT)
    if explicit:
        rest = rest.split("/", 1)[1]
    else:
        head = rest.split("/", 1)[0]
        if head in _OTHER_PLUGINS:
            return None
        if "/" in rest and not rest.startswith("arn:"):
            return None  # some other plugin's bedrock/{kind}/... form
    if not rest:
        raise OutcropError(
            f"model {clip(model)!r} names no model id; expected {EXPECTED}",
            400,
            param="model",
            code="invalid_model",
        )
    if not _MODEL_ID.match(rest):
        raise OutcropError(
            f"model {clip(model)!r}: {clip(rest)!r} is not a Bedrock model id or ARN (letters, digits and "
            f"._:/+- only); expected {EXPECTED}",
            400,
            param="model",
            code="invalid_model",
        )
    return rest


def arn_region(model_id: str, where: str = "model ARN") -> str | None:
    """The region an ARN (inference profile, provisioned model, runtime...) fixes, ``None`` for
    an id that is not an ARN or an ARN without a region. Raises ``OutcropError`` (400) when the
    ARN's region field is not a region: it would pick the host the request is signed for."""
    if not model_id.startswith("arn:"):
        return None
    parts = model_id.split(":", 4)
    region = parts[3] if len(parts) > 3 else ""
    return check_region(region, f"the region of the {where}", param="model") if region else None
