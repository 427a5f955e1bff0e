"""OpenAI chat-completions wire shapes as msgspec Structs.

Only the fields the gateway routes on or produces are typed; everything a client sends that is
not an OpenAI field is kept aside (see ``split_request``) and handed to the provider plugin as
provider parameters.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

# -- request ---------------------------------------------------------------------------------


class StreamOptions(msgspec.Struct, omit_defaults=True):
    include_usage: bool = False


class FunctionCall(msgspec.Struct, omit_defaults=True):
    name: str = ""
    arguments: str = ""


class ToolCall(msgspec.Struct):
    id: str
    function: FunctionCall
    type: str = "function"


class Message(msgspec.Struct, omit_defaults=True):
    """One chat message. ``content`` is a string, a list of content parts, or null."""

    role: str
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    #: Signed reasoning an assistant turn produced (LiteLLM's field), sent back unchanged: some
    #: models (Claude with extended thinking) require it beside their tool calls.
    thinking_blocks: list[dict[str, Any]] | None = None


class ChatRequest(msgspec.Struct, omit_defaults=True):
    """The OpenAI fields of a chat-completions request body.

    ``None`` means "not sent": the gateway only rejects parameters a client actually set.
    """

    model: str
    messages: list[Message]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    n: int | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    user: str | None = None
    seed: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    metadata: dict[str, Any] | None = None
    store: bool | None = None
    modalities: list[str] | None = None
    service_tier: str | None = None
    prediction: dict[str, Any] | None = None
    audio: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    # Gateway-level switch (LiteLLM compatible): drop OpenAI params the provider cannot honour.
    drop_params: bool | None = None


#: Every key of ``ChatRequest``: anything else in a body is a provider parameter.
OPENAI_FIELDS: frozenset[str] = frozenset(ChatRequest.__struct_fields__)
#: Fields every provider accepts: routing, streaming and bookkeeping, never "unsupported".
ALWAYS_SUPPORTED: frozenset[str] = frozenset(
    {"model", "messages", "stream", "stream_options", "user", "metadata", "drop_params", "store"}
)

_request_decoder = msgspec.json.Decoder(ChatRequest)
_raw_object_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])

#: Client JSON may nest this deep at most. Far below Python's recursion limit, so whatever the
#: gateway and its plugins do with a value it accepted (encode it, walk it) cannot overflow.
MAX_JSON_DEPTH = 128


class JSONTooDeep(msgspec.DecodeError):
    """Client JSON nested deeper than ``MAX_JSON_DEPTH`` (a ``msgspec.DecodeError``)."""

    def __init__(self) -> None:
        super().__init__(f"JSON nested more than {MAX_JSON_DEPTH} levels deep")


def too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``value`` (dicts, lists, tuples) nests deeper than ``limit``; a cycle does too.

    Level by level, without recursion, so no value can overflow the stack here.
    """
    level = [value] if isinstance(value, dict | list | tuple) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        children: list[Any] = []
        for node in level:
            items = node.values() if isinstance(node, dict) else node
            children.extend(c for c in items if isinstance(c, dict | list | tuple))
        level = children
    return False


def check_json_depth(data: bytes | str) -> None:
    """Raise ``JSONTooDeep`` if the JSON text ``data`` nests deeper than ``MAX_JSON_DEPTH``.

    Counting brackets settles most documents at C speed; only those with more brackets than
    the limit are decoded and measured.
    """
    raw = data.encode() if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        return
    try:
        value = msgspec.json.decode(raw)
    except RecursionError:
        raise JSONTooDeep from None
    except msgspec.DecodeError:
        return  # not JSON: the caller's own decode reports that
    if too_deep(value):
        raise JSONTooDeep


def decode_json(data: bytes | str, decoder: msgspec.json.Decoder[Any] | None = None) -> Any:
    """Decode JSON a client sent: ``msgspec.DecodeError`` when it is not JSON (or not the
    decoder's type), ``JSONTooDeep`` (a ``DecodeError`` too) when it nests too deep."""
    check_json_depth(data)
    try:
        return decoder.decode(data) if decoder is not None else msgspec.json.decode(data)
    except RecursionError:
        raise JSONTooDeep from None


def decode_request(body: bytes) -> tuple[ChatRequest, dict[str, Any]]:
    """Decode a request body into its OpenAI fields and its provider parameters.

    Raises ``msgspec.DecodeError`` (``ValidationError``, ``JSONTooDeep``) on bad input.
    """
    check_json_depth(body)
    try:
        request = _request_decoder.decode(body)
        raw = _raw_object_decoder.decode(body)
        extra = {k: msgspec.json.decode(v) for k, v in raw.items() if k not in OPENAI_FIELDS}
    except RecursionError:
        raise JSONTooDeep from None
    return request, extra


def harmless(request: ChatRequest, name: str) -> bool:
    """Whether parameter ``name`` of ``request`` asks for nothing any target would do
    differently (frameworks send these by default): it is accepted without effect."""
    if name == "n":
        return request.n == 1
    if name == "parallel_tool_calls":
        return request.parallel_tool_calls is True
    if name == "tools":
        return not request.tools
    if name == "tool_choice":
        return not request.tools and request.tool_choice in ("auto", "none")
    return False


#: Parameters never refused: a target that ignores them answers the same question (a seed is
#: best effort everywhere); they are still named as dropped.
SOFT_PARAMS: frozenset[str] = frozenset({"seed"})


def set_params(request: ChatRequest) -> set[str]:
    """Names of the OpenAI parameters the client actually sent (non-null)."""
    return {f for f in request.__struct_fields__ if getattr(request, f) is not None}


# -- embeddings ------------------------------------------------------------------------------


class EmbeddingRequest(msgspec.Struct, omit_defaults=True):
    """The OpenAI fields of an embeddings request body (anything else is a provider parameter).

    ``input`` is a string, a list of strings, or token arrays (which providers may refuse).
    """

    model: str
    input: str | list[Any]
    dimensions: int | None = None
    encoding_format: Literal["float", "base64"] | None = None
    user: str | None = None

    def texts(self) -> list[Any]:
        """``input`` as a list: one item (a string or a token array) per embedding asked for."""
        if isinstance(self.input, str):
            return [self.input]
        if self.input and isinstance(self.input[0], int):
            return [self.input]
        return list(self.input)


EMBEDDING_FIELDS: frozenset[str] = frozenset(EmbeddingRequest.__struct_fields__)


class EmbeddingData(msgspec.Struct):
    index: int
    embedding: list[float] | str
    object: Literal["embedding"] = "embedding"


class EmbeddingUsage(msgspec.Struct):
    prompt_tokens: int = 0
    total_tokens: int = 0


class EmbeddingList(msgspec.Struct):
    data: list[EmbeddingData]
    model: str
    usage: EmbeddingUsage | None = None
    object: Literal["list"] = "list"


_embedding_decoder = msgspec.json.Decoder(EmbeddingRequest)


def decode_embedding_request(body: bytes) -> tuple[EmbeddingRequest, dict[str, Any]]:
    """Decode an embeddings body into its OpenAI fields and its provider parameters.

    Raises ``msgspec.DecodeError`` (``ValidationError``, ``JSONTooDeep``) on bad input.
    """
    check_json_depth(body)
    try:
        request = _embedding_decoder.decode(body)
        raw = _raw_object_decoder.decode(body)
        extra = {k: msgspec.json.decode(v) for k, v in raw.items() if k not in EMBEDDING_FIELDS}
    except RecursionError:
        raise JSONTooDeep from None
    return request, extra


# -- response --------------------------------------------------------------------------------


class PromptTokensDetails(msgspec.Struct):
    """How many prompt tokens were read from a prompt cache, and how many were written to one.

    Both are included in ``prompt_tokens`` (OpenAI's convention). ``cache_creation_tokens``
    is LiteLLM's name for tokens written to the cache (billed at a higher rate on Bedrock).
    """

    cached_tokens: int = 0
    cache_creation_tokens: int = 0

    def __add__(self, other: PromptTokensDetails) -> PromptTokensDetails:
        return PromptTokensDetails(
            self.cached_tokens + other.cached_tokens,
            self.cache_creation_tokens + other.cache_creation_tokens,
        )


class Usage(msgspec.Struct):
    """Token counts. ``prompt_tokens_details`` is set by providers that report prompt caching."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails | None = None

    def __add__(self, other: Usage) -> Usage:
        p = self.prompt_tokens + other.prompt_tokens
        c = self.completion_tokens + other.completion_tokens
        mine, theirs = self.prompt_tokens_details, other.prompt_tokens_details
        details = mine + theirs if mine and theirs else mine or theirs
        return Usage(p, c, p + c, details)


class ToolCallDelta(msgspec.Struct, omit_defaults=True):
    index: int
    id: str | None = None
    type: str | None = None
    function: FunctionCall | None = None


class ResponseMessage(msgspec.Struct, omit_defaults=False):
    role: str = "assistant"
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    annotations: list[dict[str, Any]] | None = None
    reasoning_content: str | None = None
    thinking_blocks: list[dict[str, Any]] | None = None


class Choice(msgspec.Struct):
    index: int
    message: ResponseMessage
    finish_reason: str | None = "stop"
    logprobs: None = None


class ChatCompletion(msgspec.Struct, omit_defaults=False):
    id: str
    created: int
    model: str
    choices: list[Choice]
    usage: Usage | None = None
    object: Literal["chat.completion"] = "chat.completion"
    system_fingerprint: str | None = None


class ChunkDelta(msgspec.Struct, omit_defaults=True):
    role: str | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    annotations: list[dict[str, Any]] | None = None
    reasoning_content: str | None = None
    thinking_blocks: list[dict[str, Any]] | None = None


class ChunkChoice(msgspec.Struct):
    index: int
    delta: ChunkDelta
    finish_reason: str | None = None
    logprobs: None = None


class ChatCompletionChunk(msgspec.Struct, omit_defaults=True):
    id: str
    created: int
    model: str
    choices: list[ChunkChoice]
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    usage: Usage | None = None


class ErrorBody(msgspec.Struct):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorEnvelope(msgspec.Struct):
    error: ErrorBody


class ModelCard(msgspec.Struct):
    id: str
    created: int
    owned_by: str
    object: Literal["model"] = "model"


class ModelList(msgspec.Struct):
    data: list[ModelCard]
    object: Literal["list"] = "list"


encoder = msgspec.json.Encoder()


def encode_with_extra(obj: msgspec.Struct, extra: dict[str, Any] | None) -> bytes:
    """Encode ``obj`` and splice ``extra`` top-level keys into the JSON object.

    Plugins document extra response fields (a session id, citations); the OpenAI SDK keeps
    unknown keys, so clients read them as attributes.
    """
    body = encoder.encode(obj)
    if not extra:
        return body
    return body[:-1] + b"," + encoder.encode(extra)[1:]
