"""An Anthropic Messages body -> the body of Bedrock's InvokeModel for a Claude model.

The two bodies are nearly the same: Bedrock wants ``anthropic_version: bedrock-2023-05-31``,
takes the betas in the body (``anthropic_beta``) and has no ``model`` or ``stream`` (the URL
says both). Everything else passes through unchanged, as raw JSON the gateway never parses:
messages, system, tools, tool results, images, documents, thinking, cache_control,
stop_sequences, metadata. A field Bedrock does not accept is refused here, with its name,
rather than by Bedrock with a less clear message.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, Raw, UnsetType

from outcrop import clip, split_validation_error

from . import BEDROCK_ANTHROPIC_VERSION
from .errors import invalid


class MessagesRequest(msgspec.Struct, forbid_unknown_fields=True):
    """What ``POST /v1/messages`` accepts: Anthropic's fields that Bedrock's Claude takes."""

    model: str
    messages: Raw
    max_tokens: Raw | UnsetType = UNSET
    stream: bool = False
    system: Raw | UnsetType = UNSET
    metadata: Raw | UnsetType = UNSET
    stop_sequences: Raw | UnsetType = UNSET
    temperature: Raw | UnsetType = UNSET
    top_p: Raw | UnsetType = UNSET
    top_k: Raw | UnsetType = UNSET
    tools: Raw | UnsetType = UNSET
    tool_choice: Raw | UnsetType = UNSET
    thinking: Raw | UnsetType = UNSET
    output_config: Raw | UnsetType = UNSET
    context_management: Raw | UnsetType = UNSET
    #: Bedrock's own spellings, accepted from callers that already use them.
    anthropic_version: str | UnsetType = UNSET
    anthropic_beta: list[str] | UnsetType = UNSET
    #: LiteLLM's request tags (tag routing, docs/routing.md); never sent to Bedrock.
    tags: list[str] | str | UnsetType = UNSET


class BedrockBody(msgspec.Struct, omit_defaults=True):
    """InvokeModel's body; ``anthropic_version`` first, as AWS's examples have it."""

    anthropic_version: str
    messages: Raw
    max_tokens: Raw | UnsetType = UNSET
    anthropic_beta: list[str] | UnsetType = UNSET
    system: Raw | UnsetType = UNSET
    metadata: Raw | UnsetType = UNSET
    stop_sequences: Raw | UnsetType = UNSET
    temperature: Raw | UnsetType = UNSET
    top_p: Raw | UnsetType = UNSET
    top_k: Raw | UnsetType = UNSET
    tools: Raw | UnsetType = UNSET
    tool_choice: Raw | UnsetType = UNSET
    thinking: Raw | UnsetType = UNSET
    output_config: Raw | UnsetType = UNSET
    context_management: Raw | UnsetType = UNSET


ACCEPTED = tuple(f for f in MessagesRequest.__struct_fields__)
#: ``metadata`` fields that are for the gateway (LiteLLM's), taken out before Bedrock sees them.
_GATEWAY_METADATA = ("tags",)
_decode = msgspec.json.Decoder(MessagesRequest).decode
_encode = msgspec.json.Encoder().encode
_PASSED = tuple(
    f for f in BedrockBody.__struct_fields__ if f not in ("anthropic_version", "anthropic_beta")
)
#: A count_tokens body needs a max_tokens to be a valid InvokeModel body; it counts nothing.
_COUNT_MAX_TOKENS = Raw(b"1")


def parse(body: bytes, *, count: bool = False) -> MessagesRequest:
    """Decode and check a request body; a 400 naming the field otherwise."""
    try:
        request = _decode(body)
    except msgspec.ValidationError as exc:
        path, message = split_validation_error(exc)
        if message.startswith("Object contains unknown field"):
            name = message.rsplit("`", 2)[-2] if message.count("`") >= 2 else path
            where = f"{path}.{name}" if path else name
            raise invalid(
                f"{clip(where)}: Extra inputs are not permitted (Bedrock's Claude models do not "
                f"accept this field; accepted: {', '.join(ACCEPTED)})"
            ) from None
        if message.startswith("Object missing required field"):
            name = message.rsplit("`", 2)[-2]
            raise invalid(f"{name}: Field required") from None
        raise invalid(f"{path or 'body'}: {message}") from None
    except msgspec.DecodeError as exc:
        raise invalid(f"the request body is not valid JSON: {exc}") from None
    if not count and request.max_tokens is UNSET:
        raise invalid("max_tokens: Field required")
    if request.anthropic_version is not UNSET and request.anthropic_version not in (
        BEDROCK_ANTHROPIC_VERSION,
        "2023-06-01",
    ):
        raise invalid(
            f"anthropic_version: {clip(request.anthropic_version)!r} is not a version Bedrock "
            f"accepts; leave it out (the gateway sends {BEDROCK_ANTHROPIC_VERSION})"
        )
    return request


def take_tags(request: MessagesRequest) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The body's ``tags`` and ``metadata`` as ``outcrop.request_tags`` reads them; ``tags`` is
    taken out of ``metadata`` (Claude's ``metadata`` takes only ``user_id``)."""
    body = {} if request.tags is UNSET else {"tags": request.tags}
    raw = request.metadata
    if raw is UNSET or b'"tags"' not in bytes(raw):
        return body, None
    try:
        metadata = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise invalid("metadata: not valid JSON") from None
    if not isinstance(metadata, dict) or "tags" not in metadata:
        return body, None
    kept = {k: v for k, v in metadata.items() if k not in _GATEWAY_METADATA}
    request.metadata = Raw(_encode(kept)) if kept else UNSET
    return body, metadata


def betas(request: MessagesRequest, header: str | None) -> list[str]:
    """The betas asked for: the ``anthropic-beta`` header(s), comma separated, then the body's."""
    found: list[str] = []
    if header:
        found += [b.strip() for b in header.split(",") if b.strip()]
    if request.anthropic_beta is not UNSET:
        found += request.anthropic_beta
    return list(dict.fromkeys(found))


def invoke_body(request: MessagesRequest, beta: list[str], *, count: bool = False) -> bytes:
    """The InvokeModel body bytes (raw fields copied, never re-serialised)."""
    out = BedrockBody(BEDROCK_ANTHROPIC_VERSION, request.messages)
    for name in _PASSED:
        value = getattr(request, name)
        if value is not UNSET:
            setattr(out, name, value)
    if count and out.max_tokens is UNSET:
        out.max_tokens = _COUNT_MAX_TOKENS
    if beta:
        out.anthropic_beta = beta
    return _encode(out)


class _Edits(msgspec.Struct):
    edits: list[dict[str, Any]] = msgspec.field(default_factory=list)


_decode_edits = msgspec.json.Decoder(_Edits).decode


def keep_edits(request: MessagesRequest, accepted: frozenset[str]) -> list[str]:
    """Keep the ``context_management`` edits Bedrock accepts; returns the dropped edit types.

    Claude Code asks for ``clear_thinking_20251015`` on every request, which Bedrock refuses
    (``context_management: Extra inputs are not permitted``); clearing old thinking only saves
    context, so the request goes on without it, and without the field when no edit is left.
    """
    raw = request.context_management
    if raw is UNSET:
        return []
    try:
        edits = _decode_edits(raw).edits
    except msgspec.ValidationError as exc:
        path, message = split_validation_error(exc, "context_management")
        raise invalid(f"{path}: {message}") from None
    kept = [e for e in edits if e.get("type") in accepted]
    if len(kept) == len(edits):
        return []
    request.context_management = (
        Raw(_encode({**msgspec.json.decode(raw), "edits": kept})) if kept else UNSET
    )
    return [str(e.get("type")) for e in edits if e.get("type") not in accepted]
