"""The objects that travel through the hooks: what a plugin receives and returns."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .wire import ChatCompletion, ChatRequest, ToolCallDelta, Usage

if TYPE_CHECKING:
    from .config import Deployment, DeploymentParams


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
class ModelPrice:
    """USD per token for a foundation model."""

    input_cost_per_token: float
    output_cost_per_token: float


@dataclass(slots=True)
class ModelRoute:
    """A plugin's claim on a model string (the result of ``outcrop_parse_route``).

    ``provider`` names the plugin's surface; the plugin's other hooks answer only for calls whose
    ``route.provider`` is theirs. ``service`` is the AWS endpoint prefix (``bedrock-agent-runtime``),
    ``signing_name`` the SigV4 service name, ``region`` a region the model string itself fixes
    (an ARN) or ``None`` to use the deployment's. ``chat`` is False for model strings that are
    valid configuration but not served on the chat route (``error`` then says what serves them).
    ``supported_params`` are the OpenAI parameters the provider honours besides the basic ones.
    ``data`` holds whatever the plugin parsed (ids, ARN parts).
    """

    provider: str
    service: str
    signing_name: str
    region: str | None = None
    chat: bool = True
    error: str | None = None
    supported_params: frozenset[str] = frozenset()
    data: dict[str, Any] = field(default_factory=dict)


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
    response_headers: dict[str, str] = field(default_factory=dict)
    response_fields: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    usage: Usage | None = None
    usage_by_model: dict[str, Usage] | None = None
    cost: float | None = None
    started: float = field(default_factory=time.perf_counter)
    upstream_seconds: float = 0.0


@dataclass(slots=True)
class CallEvent:
    """Sent to ``outcrop_after_call`` once per call, success or failure, streamed or not."""

    request_id: str
    surface: str
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
