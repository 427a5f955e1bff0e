"""Native Bedrock model strings: ``bedrock/{modelId}``, ``bedrock/converse/{id}``, ``bedrock/invoke/{id}``.

``bedrock/agent/...`` and ``bedrock/agentcore/...`` belong to other plugins and are never
claimed here.
"""

from __future__ import annotations

import re

from outcrop import OutcropError

PREFIX = "bedrock/"
_EXPLICIT = ("converse/", "invoke/")
_OTHER_PLUGINS = ("agent", "agentcore")
EXPECTED = "bedrock/{modelId} (also bedrock/converse/{modelId} or bedrock/invoke/{modelId})"
#: What Bedrock accepts as a model id: a foundation-model or inference-profile id, or an ARN.
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+-]{0,2047}\Z")
_ARN_REGION = re.compile(r"arn:aws[a-z-]*:bedrock:([a-z]{2,}(?:-[a-z]+)+-\d{1,2}):")


def native_model_id(model: str) -> str | None:
    """The Bedrock model id a native model string names, ``None`` when it is not one.

    Raises ``OutcropError`` (400) when the string is ours but malformed.
    """
    if not model.startswith(PREFIX):
        return None
    rest = model[len(PREFIX):]
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
        raise OutcropError(f"model {model!r} names no model id; expected {EXPECTED}", 400,
                           param="model", code="invalid_model")
    if not _MODEL_ID.match(rest):
        raise OutcropError(
            f"model {model!r}: {rest!r} is not a Bedrock model id or ARN (letters, digits and "
            f"._:/+- only); expected {EXPECTED}", 400, param="model", code="invalid_model")
    return rest


def arn_region(model_id: str) -> str | None:
    """The region an ARN model id (inference profile, provisioned model...) fixes."""
    found = _ARN_REGION.match(model_id)
    return found.group(1) if found else None
