"""OpenAI embeddings -> InvokeModel bodies for Titan Text Embeddings v1/v2 and Cohere Embed v3/v4.

Titan embeds one text per call (one request per input); Cohere takes batches of up to 96.
Vectors come back as floats; the core encodes them as ``encoding_format`` asks.
"""

from __future__ import annotations

from typing import Any

import msgspec

from outcrop import EmbeddingCall, EmbeddingResult, OutcropError, UpstreamRequest, Usage

from .models import ModelId

#: On-demand prices, USD per million input tokens (us-east-1).
PRICES = {
    "amazon.titan-embed-text-v1": 0.1,
    "amazon.titan-embed-text-v2:0": 0.02,
    "cohere.embed-english-v3": 0.1,
    "cohere.embed-multilingual-v3": 0.1,
    "cohere.embed-v4:0": 0.12,
}
#: Cohere Embed's batch size on Bedrock.
COHERE_BATCH = 96
#: ``dimensions`` each model accepts (v1 and Cohere v3 have one fixed size).
DIMENSIONS = {
    "titan-v1": (1536,),
    "titan-v2": (256, 512, 1024),
    "cohere-v3": (1024,),
    "cohere-v4": (256, 512, 1024, 1536),
}
#: Provider parameters accepted in the body or from the deployment.
EXTRA = {
    "titan-v1": (),
    "titan-v2": ("normalize",),
    "cohere-v3": ("input_type", "truncate"),
    "cohere-v4": ("input_type", "truncate"),
}
_encode = msgspec.json.Encoder().encode
_json = msgspec.json.Decoder()


def _bad(message: str, param: str) -> OutcropError:
    return OutcropError(message, 400, param=param, code="invalid_parameter")


def _texts(call: EmbeddingCall) -> list[str]:
    texts = call.request.texts()
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise _bad(
                f"input[{i}]: token arrays are not supported by Bedrock embedding models; "
                "send text",
                "input",
            )
        if not text:
            raise _bad(f"input[{i}]: must not be empty", "input")
    return texts


def _options(call: EmbeddingCall, kind: str) -> dict[str, Any]:
    options = {k: v for k, v in call.provider_params.items() if k in EXTRA[kind]}
    body_only = set(call.provider_params) - set(call.params.extra)
    unknown = sorted(body_only - set(EXTRA[kind]))
    if unknown:
        raise _bad(
            f"{unknown[0]}: not a parameter of this embeddings model (accepted: "
            f"{', '.join(EXTRA[kind]) or 'none'})",
            unknown[0],
        )
    dims = call.request.dimensions
    if dims is not None and dims not in DIMENSIONS[kind]:
        raise _bad(
            f"dimensions: this model gives {' / '.join(map(str, DIMENSIONS[kind]))}, not {dims}",
            "dimensions",
        )
    return options


def _request(call: EmbeddingCall, model: ModelId, body: dict[str, Any]) -> UpstreamRequest:
    return UpstreamRequest(
        "POST",
        f"{call.endpoint}/model/{model.label}/invoke",
        {"Content-Type": "application/json", "Accept": "application/json"},
        _encode(body),
    )


def build_requests(call: EmbeddingCall, model: ModelId) -> list[UpstreamRequest]:
    """One InvokeModel request per Titan input, one per batch of 96 for Cohere."""
    kind = model.embedding
    assert kind is not None
    texts = _texts(call)
    options = _options(call, kind)
    dims = call.request.dimensions
    if kind.startswith("titan"):
        extra: dict[str, Any] = {}
        if kind == "titan-v2":
            if dims is not None:
                extra["dimensions"] = dims
            if "normalize" in options:
                extra["normalize"] = options["normalize"]
        return [_request(call, model, {"inputText": text, **extra}) for text in texts]
    common: dict[str, Any] = {"input_type": options.get("input_type", "search_document")}
    if "truncate" in options:
        common["truncate"] = options["truncate"]
    if kind == "cohere-v4":
        common["embedding_types"] = ["float"]
        if dims is not None:
            common["output_dimension"] = dims
    return [
        _request(call, model, {"texts": texts[i : i + COHERE_BATCH], **common})
        for i in range(0, len(texts), COHERE_BATCH)
    ]


def _tokens(headers: dict[str, str], body: dict[str, Any]) -> int | None:
    counted = body.get("inputTextTokenCount")
    if isinstance(counted, int):
        return counted
    header = headers.get("x-amzn-bedrock-input-token-count", "")
    return int(header) if header.isdigit() else None


def parse_answer(model: ModelId, body: bytes, headers: dict[str, str]) -> EmbeddingResult:
    """An InvokeModel answer -> vectors and usage (a 502 when it has no vectors)."""
    try:
        data = _json.decode(body)
        if model.embedding and model.embedding.startswith("titan"):
            vectors = [data["embedding"]]
        else:
            found = data["embeddings"]
            vectors = found["float"] if isinstance(found, dict) else found
        if not isinstance(vectors, list) or not all(isinstance(v, list) for v in vectors):
            raise TypeError("vectors are not lists of numbers")
    except (msgspec.DecodeError, KeyError, TypeError) as exc:
        raise OutcropError(
            f"Bedrock sent an embeddings answer without vectors: {exc!r}", 502
        ) from exc
    count = _tokens(headers, data)
    return EmbeddingResult(vectors, None if count is None else Usage(count, 0, count))
