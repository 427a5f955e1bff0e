"""Embedding models on InvokeModel: what the simulator checks and answers.

Titan Text Embeddings v1/v2 and Cohere Embed v3/v4 take model-specific JSON bodies that
botocore's model sees only as a blob; these are checked here the way Bedrock checks them
(unknown keys, required keys, types, allowed dimensions, batch sizes), and answered with
deterministic vectors (the same text always gives the same vector) and token counts.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from typing import Any

from .recorded import RecordedRequest
from .replies import InvokeReply, Reply

_GEO = re.compile(r"^(?:us|eu|apac|us-gov|ca|jp|au|global)\.")
_COHERE_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")
_TRUNCATE = ("NONE", "START", "END", "LEFT", "RIGHT")
#: kind -> (allowed keys, native dimensions, allowed ``dimensions`` / ``output_dimension``)
_MODELS: dict[str, tuple[frozenset[str], int, tuple[int, ...]]] = {
    "titan-v1": (frozenset({"inputText"}), 1536, ()),
    "titan-v2": (
        frozenset({"inputText", "dimensions", "normalize", "embeddingTypes"}),
        1024,
        (256, 512, 1024),
    ),
    "cohere-v3": (
        frozenset({"texts", "images", "input_type", "truncate", "embedding_types"}),
        1024,
        (),
    ),
    "cohere-v4": (
        frozenset(
            {
                "texts",
                "images",
                "inputs",
                "input_type",
                "truncate",
                "embedding_types",
                "output_dimension",
                "max_tokens",
            }
        ),
        1536,
        (256, 512, 1024, 1536),
    ),
}


def embedding_kind(model_id: str) -> str | None:
    base = _GEO.sub("", model_id)
    if base.startswith("amazon.titan-embed-text-v1"):
        return "titan-v1"
    if base.startswith("amazon.titan-embed-text-v2"):
        return "titan-v2"
    if base.startswith("cohere.embed-v4"):
        return "cohere-v4"
    if base.startswith(("cohere.embed-english-v3", "cohere.embed-multilingual-v3")):
        return "cohere-v3"
    return None


def validate(kind: str, body: Any) -> list[str]:
    """Bedrock's checks of an embeddings body, as ValidationException messages."""
    if not isinstance(body, dict):
        return ["Malformed input request: expected a JSON object"]
    allowed, _, sizes = _MODELS[kind]
    problems = [f"extraneous key [{key}] is not permitted" for key in body if key not in allowed]
    if kind.startswith("titan"):
        text = body.get("inputText")
        if not isinstance(text, str) or not text:
            problems.append("required key [inputText] not found or empty")
        if "dimensions" in body and body["dimensions"] not in sizes:
            problems.append(f"dimensions: must be one of {list(sizes)}")
        if "normalize" in body and not isinstance(body["normalize"], bool):
            problems.append("normalize: expected type: Boolean")
        return problems
    texts = body.get("texts")
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        problems.append("required key [texts] not found, empty, or not a list of non-empty strings")
    elif len(texts) > 96:
        problems.append(f"texts: expected maximum item count: 96, found: {len(texts)}")
    if body.get("input_type") not in _COHERE_INPUT_TYPES:
        problems.append(f"input_type: must be one of {list(_COHERE_INPUT_TYPES)}")
    if "truncate" in body and body["truncate"] not in _TRUNCATE:
        problems.append(f"truncate: must be one of {list(_TRUNCATE)}")
    if "output_dimension" in body and body["output_dimension"] not in sizes:
        problems.append(f"output_dimension: must be one of {list(sizes)}")
    return problems


def vector(text: str, size: int, normalize: bool = True) -> list[float]:
    """A deterministic vector for ``text`` (unit length unless ``normalize`` is False)."""
    seed = hashlib.sha256(text.encode()).digest()
    raw = [(b - 127.5) / 127.5 for b in (seed * (size // len(seed) + 1))[:size]]
    raw = [struct.unpack("f", struct.pack("f", v))[0] for v in raw]  # float32, as on the wire
    if not normalize:
        return raw
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [struct.unpack("f", struct.pack("f", v / norm))[0] for v in raw]


def tokens(text: str) -> int:
    return max(1, len(text.split()))


def reply(kind: str, body: dict[str, Any]) -> Reply:
    """The answer Bedrock gives for a valid embeddings body."""
    _, native, _ = _MODELS[kind]
    if kind.startswith("titan"):
        text = body["inputText"]
        size = body.get("dimensions", native)
        answer: dict[str, Any] = {
            "embedding": vector(text, size, body.get("normalize", True)),
            "inputTextTokenCount": tokens(text),
        }
        return InvokeReply(answer, input_tokens=tokens(text))
    texts = body["texts"]
    size = body.get("output_dimension", native)
    vectors = [vector(t, size) for t in texts]
    count = sum(tokens(t) for t in texts)
    if kind == "cohere-v4":
        types = body.get("embedding_types") or ["float"]
        return InvokeReply(
            {
                "id": "sim-embed",
                "response_type": "embeddings_by_type",
                "texts": texts,
                "embeddings": {t: vectors for t in types},
            },
            input_tokens=count,
        )
    return InvokeReply(
        {
            "id": "sim-embed",
            "response_type": "embeddings_floats",
            "texts": texts,
            "embeddings": vectors,
        },
        input_tokens=count,
    )


def for_request(request: RecordedRequest) -> tuple[str, Any] | None:
    """(kind, parsed body) when ``request`` is an InvokeModel call on an embeddings model."""
    if request.operation != "InvokeModel":
        return None
    kind = embedding_kind(request.params.get("modelId", ""))
    if kind is None:
        return None
    try:
        return kind, request.json()
    except ValueError:
        return kind, None
