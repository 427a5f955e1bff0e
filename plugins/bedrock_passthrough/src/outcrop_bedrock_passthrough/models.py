"""Native Bedrock model strings: ``bedrock/{modelId}``, ``bedrock/converse/{id}``, ``bedrock/invoke/{id}``.

The core hands this plugin only strings under the prefixes it registered and no other plugin
owns (a chat provider registering ``bedrock/`` owns it: the deployments then reach the native
routes through the routes that provider parsed).
"""

from __future__ import annotations

import re

from outcrop import OutcropError, clip

from . import PREFIX

#: LiteLLM's explicit forms, which name the upstream API.
EXPLICIT = ("converse/", "invoke/")
EXPECTED = "bedrock/{modelId} (also bedrock/converse/{modelId} or bedrock/invoke/{modelId})"
#: What Bedrock accepts as a model id: a foundation-model or inference-profile id, or an ARN.
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+-]{0,2047}\Z")


def native_model_id(model: str) -> str:
    """The Bedrock model id a native model string names.

    Raises ``OutcropError`` (400) when it is malformed.
    """
    rest = model.removeprefix(PREFIX)
    if rest.startswith(EXPLICIT):
        rest = rest.split("/", 1)[1]
    if not rest:
        raise _malformed(model, "names no model id")
    if not _MODEL_ID.match(rest) or ("/" in rest and not rest.startswith("arn:")):
        raise _malformed(
            model, f"{clip(rest)!r} is not a Bedrock model id or ARN (letters, digits and ._:+-)"
        )
    return rest


def _malformed(model: str, problem: str) -> OutcropError:
    return OutcropError(
        f"model {clip(model)!r} {problem}; expected {EXPECTED}",
        400,
        param="model",
        code="invalid_model",
    )
