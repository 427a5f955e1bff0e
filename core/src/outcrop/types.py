"""The objects that travel through the hooks: what a plugin receives and returns."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from .wire import ChatCompletion, ChatRequest, EmbeddingRequest, ToolCallDelta, Usage

if TYPE_CHECKING:
    from .config import Deployment, DeploymentParams
    from .upstream import UpstreamResponse


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. Set by the core (master key, open gateway) or by the plugin that
    recognised the credential (``outcrop_authenticate``, ``outcrop_sigv4_secret``).

    ``kind`` is ``master_key``, ``open`` or a plugin's own kind (``virtual_key``,
    ``sigv4_key``). ``id`` is a stable non-secret id (a virtual key's SHA-256 hex), never the
    credential itself. ``admin`` may use management APIs. ``data`` is the owning plugin's state.
    ``tags`` are added to the tags of every call it makes (a virtual key's ``tags``: tag
    routing, ``outcrop.request_tags``). ``model_aliases`` maps a model name the caller sends
    to the name it is served as (a virtual key's ``aliases`` and its team's ``model_aliases``):
    every surface swaps it in before routing, and the key's ``models`` are matched against
    both names (``access_names``). ``None`` (most callers): nothing to look up.
    """

    kind: str
    id: str | None = None
    alias: str | None = None
    team_id: str | None = None
    admin: bool = False
    data: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    model_aliases: Mapping[str, str] | None = None


#: The caller of a gateway without any client credential configured.
OPEN = Principal("open")
#: The caller that presented the master key.
MASTER = Principal("master_key", admin=True)


@dataclass(frozen=True, slots=True)
class Admission:
    """What a call is about to do, asked of plugins (``outcrop_admit``) before any upstream call.

    ``surface`` is ``chat`` or ``passthrough``; ``path`` the inbound route path
    (``/v1/chat/completions``, ``/bedrock/model/x/converse``); ``model`` what the caller named
    (a ``model_name`` or a raw model string; for pass-through calls that name no model, what the
    call is about: an agent id, a runtime ARN); ``deployment`` the deployment id when a
    configured deployment serves it.
    """

    principal: Principal
    surface: str
    path: str
    model: str
    deployment: str | None
    request_id: str
    #: Headers every answer to this call carries (``x-ratelimit-*``): an admitting plugin
    #: adds to it.
    headers: dict[str, str] = field(default_factory=dict)
    #: The name the caller sent when ``model`` is what it resolved to (``None``: the same),
    #: and the ``model_name`` of the deployment serving the call. A key's ``models`` are
    #: matched (``outcrop.model_allowed``) against
    #: ``gateway.access_names(requested or model, model, group)`` (docs/keys.md).
    requested: str | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True)
class ModelPrefix:
    """A model-string prefix a plugin serves, shown by ``outcrop plugins`` and in errors.

    ``example`` is a full model string; ``distribution`` is the pip name that provides it.
    """

    prefix: str
    description: str
    example: str = ""
    distribution: str = ""


@dataclass(frozen=True, slots=True)
class ConfigSection:
    """A part of the config file a plugin reads (registered with
    ``outcrop_register_config_sections``); the gateway refuses any part nobody claims.

    ``name`` is a top-level section (``bedrock_passthrough``) or a key of a settings section by
    its dotted path (``litellm_settings.service_callback``). The value arrives in
    ``config.sections[name]``. ``client_credentials`` is given that value (``None`` when the
    file does not have it) and returns True when it configures credentials callers present
    (key pairs, virtual keys): the gateway then requires one on every route. ``aws_params``
    is given the same value and returns the AWS settings it configures for calls no deployment
    serves (``None``: none), which start-up checks as a deployment's (a named profile must
    exist and give a region when nothing else does).
    """

    name: str
    description: str = ""
    client_credentials: Callable[[Any], bool] | None = None
    aws_params: Callable[[Any], DeploymentParams | None] | None = None


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per token for a foundation model.

    Prompt-cache reads and writes cost the input price unless their own prices are set.
    """

    input_cost_per_token: float
    output_cost_per_token: float
    cache_read_input_token_cost: float | None = None
    cache_creation_input_token_cost: float | None = None


@dataclass(slots=True)
class ModelRoute:
    """A plugin's claim on a model string (the result of ``outcrop_parse_route``).

    ``provider`` names the plugin's surface (``CallEvent.provider``, ``owned_by`` in
    ``/v1/models``). ``service`` is the AWS endpoint prefix (``bedrock-agent-runtime``),
    ``signing_name`` the SigV4 service name, ``region`` a region the model string itself fixes
    (an ARN) or ``None`` to use the deployment's. ``chat`` is False for model strings that are
    valid configuration but not served on the chat route (``error`` then says what serves them).
    ``supported_params`` are the OpenAI parameters the provider honours besides the basic ones.
    ``data`` holds whatever the plugin parsed (ids, ARN parts). ``resource`` is what the model
    string calls in ``service``'s own terms (a Bedrock model id or ARN, an agent id, an agent
    runtime ARN): surfaces that serve the native AWS APIs find deployments by it
    (``Gateway.serving``).
    """

    provider: str
    service: str
    signing_name: str
    region: str | None = None
    chat: bool = True
    error: str | None = None
    supported_params: frozenset[str] = frozenset()
    data: dict[str, Any] = field(default_factory=dict)
    #: True when the model is served on ``/v1/embeddings`` (see ``outcrop_translate_embeddings_request``).
    embeddings: bool = False
    resource: str | None = None
    #: Set by the core: the name of the plugin that claimed the model string.
    plugin: str = ""


@dataclass(slots=True)
class ChatDelta:
    """One piece of an answer, produced by ``outcrop_translate_response``.

    The core turns each delta into an SSE chunk as soon as it is yielded (streaming) or folds
    them into one ``ChatCompletion`` (non-streaming). ``extra`` holds documented top-level
    response fields (merged; for streams they ride on the chunk that carries them).
    ``usage`` is the call's running total (the last one wins). ``usage_by_model`` is the same
    total split by the model that spent it (last one wins), for calls that use several models:
    the cost is then priced per model.
    """

    content: str | None = None
    reasoning_content: str | None = None
    #: Complete signed reasoning blocks (``{"type": "thinking", "thinking", "signature"}`` or
    #: ``{"type": "redacted_thinking", "data"}``), for the client to send back next turn.
    thinking_blocks: list[dict[str, Any]] | None = None
    tool_calls: list[ToolCallDelta] | None = None
    annotations: list[dict[str, Any]] | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None
    extra: dict[str, Any] | None = None
    usage_by_model: dict[str, Usage] | None = None


#: What ``outcrop_translate_response`` returns: a stream of deltas, or a finished completion.
ChatResult = AsyncIterator[ChatDelta] | Awaitable[ChatCompletion]


@dataclass(slots=True)
class ChatCall:
    """Everything known about one chat-completions call, passed to every chat hook.

    ``params`` are the deployment's gateway settings (region, credentials, endpoint);
    ``provider_params`` are the non-OpenAI parameters, deployment config first, request body
    over it. Plugins write ``response_headers`` and ``response_fields`` to return things to the
    client (a session id), ``state`` for their own bookkeeping between hooks, and ``model`` /
    ``usage`` / ``cost`` as they learn them.
    """

    request_id: str
    request: ChatRequest
    route: ModelRoute
    params: DeploymentParams
    deployment: Deployment | None
    provider_params: dict[str, Any]
    headers: Mapping[str, str]
    stream: bool
    region: str
    endpoint: str
    model: str
    #: The effective ``drop_params``: request body, then deployment, then ``general_settings``.
    drop_params: bool = False
    #: The provider parameters of the request itself (``provider_params`` without the
    #: deployment's), kept for a retry on another deployment.
    body_params: Mapping[str, Any] = field(default_factory=dict)
    #: The request's tags (body ``tags``, ``metadata.tags``, ``x-litellm-tags``), for tag
    #: routing; ``None`` when it has none.
    tags: tuple[str, ...] | None = None
    #: What was dropped under ``drop_params`` (``drop``): named in ``x-outcrop-dropped-params``
    #: and the access log.
    dropped: list[str] | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_fields: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    usage: Usage | None = None
    usage_by_model: dict[str, Usage] | None = None
    cost: float | None = None
    started: float = field(default_factory=time.perf_counter)
    upstream_seconds: float = 0.0
    #: The upstream response once it arrived (the core closes it when the call ends).
    upstream: UpstreamResponse | None = None
    #: Who called and from where (``None`` for the in-process Python API).
    principal: Principal | None = None
    client_ip: str | None = None
    #: Why the answer ended (``stop``, ``length``, ``tool_calls``), once it did.
    finish_reason: str | None = None
    #: The answer's text, kept only while ``gateway.capture_output`` is on.
    output_text: str | None = None

    def drop(self, name: str) -> None:
        """Note that ``name`` (a parameter, or ``system message``) was dropped under
        ``drop_params``: the client sees it in ``x-outcrop-dropped-params``."""
        if self.dropped is None:
            self.dropped = [name]
        elif name not in self.dropped:
            self.dropped.append(name)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One upstream attempt of a call that made more than one (retries, failover, fallbacks).

    ``deployment`` is the deployment id (``None`` for a raw model string), ``status`` the HTTP
    status AWS answered (502 when it could not be reached, 504 on a timeout), ``latency_s`` the
    attempt's time until that answer, ``error`` the AWS error type (``None`` when it served).
    """

    deployment: str | None
    status: int
    latency_s: float
    error: str | None = None
    region: str | None = None


@dataclass(slots=True)
class CallEvent:
    """Sent to ``outcrop_after_call`` once per call, success or failure, streamed or not."""

    request_id: str
    #: ``chat``, ``embeddings``, ``passthrough`` or a plugin's own (``messages``).
    surface: str
    #: The route's path template, low in cardinality (``/v1/chat/completions``,
    #: ``/bedrock/model/{modelId}/converse``): a path, never a model route (``ModelRoute``).
    route: str
    model: str
    deployment: str | None
    provider: str | None
    status: int
    stream: bool
    latency_s: float
    upstream_latency_s: float
    usage: Usage | None = None
    cost: float | None = None
    error: str | None = None
    region: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Who called (``None`` for the in-process Python API and calls refused before
    #: authentication).
    principal: Principal | None = None
    #: The direct peer's address and the ``User-Agent`` header (``None`` when unknown).
    client_ip: str | None = None
    user_agent: str | None = None
    #: Every upstream attempt, in order, when the call made more than one (empty otherwise:
    #: the event's own deployment, status and upstream latency describe its single attempt).
    attempts: tuple[Attempt, ...] = ()
    #: The error's AWS type (``ThrottlingException``) and OpenAI-style code
    #: (``budget_exceeded``, ``client_disconnected``) when the call ended with an ``OutcropError``.
    error_type: str | None = None
    error_code: str | None = None
    #: Seconds from the call's arrival to the first body bytes of a streamed answer sent to the
    #: client (time to first token); ``None`` for answers sent in one piece.
    first_token_s: float | None = None
    #: The client's request headers as received (ASGI byte pairs, lower-case names; empty for
    #: the Python API), for observers that continue a trace (``traceparent``). They include the
    #: caller's credential (``authorization``, ``x-api-key``): read what you need, log none.
    request_headers: Sequence[tuple[bytes, bytes]] = ()
    #: Why a chat answer ended (``stop``, ``length``, ``tool_calls``), ``None`` otherwise.
    finish_reason: str | None = None
    #: A chat answer's text, only while a plugin turned ``gateway.capture_output`` on (for
    #: tracing prompts and answers, an operator's opt-in); ``None`` otherwise.
    output_text: str | None = None
    #: The request body and the answer's body bytes as sent, at most ``CAPTURED_BYTES`` each:
    #: only with ``general_settings.store_prompts_in_spend_logs`` (else ``None``).
    request_body: bytes | None = None
    response_body: bytes | None = None

    CAPTURED_BYTES: ClassVar[int] = 64 * 1024


@dataclass(slots=True)
class EmbeddingCall:
    """Everything known about one embeddings call, passed to the embeddings hooks.

    Like ``ChatCall``: ``params`` are the deployment's gateway settings, ``provider_params`` the
    non-OpenAI body fields over the deployment's extra keys, ``state`` is the plugin's space.
    ``model`` starts as what the caller named; plugins set the model id they call (the answer
    names it and the price table looks it up).
    """

    request_id: str
    request: EmbeddingRequest
    route: ModelRoute
    params: DeploymentParams
    deployment: Deployment | None
    provider_params: dict[str, Any]
    headers: Mapping[str, str]
    region: str
    endpoint: str
    model: str
    response_headers: dict[str, str] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    #: The request's tags, for tag routing (as ``ChatCall.tags``).
    tags: tuple[str, ...] | None = None
    usage: Usage | None = None
    cost: float | None = None
    started: float = field(default_factory=time.perf_counter)
    upstream_seconds: float = 0.0
    principal: Principal | None = None
    client_ip: str | None = None


@dataclass(slots=True)
class EmbeddingResult:
    """One upstream answer's vectors, in input order, and the tokens it counted (or ``None``)."""

    vectors: list[list[float]]
    usage: Usage | None = None
