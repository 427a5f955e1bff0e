"""Model strings: ``bedrock/{modelId}`` and ``bedrock/converse/{modelId}`` -> a ``ModelId``.

A model id is a foundation-model id (``anthropic.claude-3-5-sonnet-20240620-v1:0``), a
cross-region inference profile (``us.``, ``eu.``, ``apac.``, ``global.`` in front), or an ARN
(application inference profile, provisioned throughput, imported model), which also fixes the
region. The id goes into the URL path as one label, percent-encoded exactly as botocore does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from outcrop import OutcropError, arn_region

from . import CONVERSE_PREFIX, PREFIX

EXPECTED = "bedrock/{modelId} or bedrock/converse/{modelId} (an id, inference profile or ARN)"
#: What Bedrock accepts as a model identifier (botocore's ConversationalModelId, simplified).
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+-]{0,2047}\Z")
_GEO = re.compile(r"(?:us|eu|apac|us-gov|ca|jp|au|global)\.")
#: botocore leaves only these unescaped in a non-greedy URI label (``:`` -> %3A, ``/`` -> %2F).
_LABEL_SAFE = "-._~"


@dataclass(frozen=True, slots=True)
class ModelId:
    """A parsed model id: what to put in the URL, and what kind of model it names."""

    model_id: str
    #: The URL path label: ``quote(model_id, safe="-._~")``, as botocore serializes it.
    label: str
    #: The region an ARN fixes, else ``None`` (the deployment's region is used).
    region: str | None
    #: The foundation-model id without a cross-region prefix (``anthropic.claude-...``).
    base: str
    #: ``"titan-v1"``, ``"titan-v2"``, ``"cohere-v3"`` or ``"cohere-v4"`` for embedding models.
    embedding: str | None

    @property
    def vendor(self) -> str:
        """``anthropic``, ``amazon``, ``meta``... (empty for ARNs, whose model is hidden)."""
        return "" if self.model_id.startswith("arn:") else self.base.split(".", 1)[0]


def parse_model(model: str) -> ModelId | None:
    """The ``ModelId`` a model string names; ``None`` when the string is not this plugin's.

    Raises ``OutcropError`` (400) when the prefix is ours but the id is malformed.
    """
    if model.startswith(CONVERSE_PREFIX):
        rest = model[len(CONVERSE_PREFIX) :]
    elif model.startswith(PREFIX):
        rest = model[len(PREFIX) :]
    else:
        return None
    if not rest:
        raise OutcropError(
            f"model {model!r} names no model id; expected {EXPECTED}",
            400,
            param="model",
            code="invalid_model",
        )
    if not _MODEL_ID.match(rest):
        raise OutcropError(
            f"model {model!r}: {rest!r} is not a Bedrock model id or ARN "
            f"(letters, digits and ._:/+- only); expected {EXPECTED}",
            400,
            param="model",
            code="invalid_model",
        )
    if "/" in rest and not rest.startswith("arn:"):
        raise OutcropError(
            f"model {model!r}: {rest!r} is not a Bedrock model id (only an ARN has '/'); "
            f"expected {EXPECTED}",
            400,
            param="model",
            code="invalid_model",
        )
    # the ARN's region picks the host and the SigV4 scope: the core's one region check
    region = arn_region(rest)
    base = rest.rsplit("/", 1)[-1] if rest.startswith("arn:") else _GEO.sub("", rest, count=1)
    return ModelId(rest, quote(rest, safe=_LABEL_SAFE), region, base, _embedding_kind(base))


def _embedding_kind(base: str) -> str | None:
    if base.startswith("amazon.titan-embed-text-v1"):
        return "titan-v1"
    if base.startswith("amazon.titan-embed-text-v2"):
        return "titan-v2"
    if base.startswith("cohere.embed-v4"):
        return "cohere-v4"
    if base.startswith(("cohere.embed-english-v3", "cohere.embed-multilingual-v3")):
        return "cohere-v3"
    return None
