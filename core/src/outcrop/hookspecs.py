"""The Outcrop plugin contract. This is the one file a plugin author must read.

A plugin is a module (or object) with functions decorated ``@outcrop.hookimpl`` whose names are
hooks below, published through the ``outcrop`` entry-point group::

    [project.entry-points.outcrop]
    my_plugin = "my_package.plugin"

Hooks are synchronous. Async work comes back as awaitables or async iterators, which the core
awaits on the event loop. A hook marked *first result wins* stops at the first plugin returning
something other than ``None``; plugins registered later are asked first, and built-in defaults
(``tryfirst``/``trylast`` as noted) give way to installed plugins.

Call order for one chat completion (``POST /v1/chat/completions`` or ``outcrop.completion``)::

    outcrop_authenticate -> outcrop_parse_route -> outcrop_admit -> outcrop_translate_request
        -> outcrop_before_upstream -> outcrop_sign_request -> (HTTP call) -> outcrop_translate_response -> outcrop_after_call

(``outcrop_authenticate`` and ``outcrop_admit`` only for HTTP callers; ``outcrop_authenticate``
only for a credential that is not the master key.)

Provider hooks go only to the plugin that claimed the model: a model string belongs to the
plugin that registered the longest prefix it starts with (``outcrop_register_models``); only that
plugin's ``outcrop_parse_route`` is asked about it, and only its ``outcrop_translate_request``,
``outcrop_translate_response``, ``outcrop_map_error`` and embeddings hooks are called for the
call. A provider never needs to check that a call is its own. When two plugins register the same
prefix, the one that translates chat or embeddings calls owns it over one that serves the model
only on its own routes (the native pass-through, which finds the deployments through
``Gateway.deployments``/``Gateway.serving``); two such providers are a configuration error.

``outcrop_parse_route`` is also called at start-up for every configured deployment, so a model
string nobody claims (or a malformed one) is a configuration error, not a runtime surprise.
Every hook is documented with its exact signature in ``docs/plugin_hooks.md``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from .aws import FrozenCredentials
    from .config import Config, DeploymentParams
    from .gateway_api import GatewayAPI
    from .types import (
        Admission,
        CallEvent,
        ChatCall,
        ChatResult,
        ConfigSection,
        EmbeddingCall,
        EmbeddingResult,
        ModelPrefix,
        ModelPrice,
        ModelRoute,
        Principal,
    )
    from .upstream import UpstreamRequest, UpstreamResponse

hookspec = pluggy.HookspecMarker("outcrop")


@hookspec
def outcrop_register_models(register: Callable[[ModelPrefix], None]) -> None:
    """Register the model-string prefixes this plugin serves.

    Called once when a gateway is built. ``register`` takes a ``ModelPrefix`` (prefix,
    description, example, distribution). The prefixes are the routing key: a model string goes
    to the plugin that registered the longest prefix it starts with, and only that plugin's
    provider hooks are called for it. They also feed ``outcrop plugins``, ``outcrop demo`` and
    the error for a model string nobody claims. All results are collected.
    """


@hookspec
def outcrop_register_routes(register: Callable[[BaseRoute], None], gateway: GatewayAPI) -> None:
    """Register extra HTTP routes (Starlette ``Route``/``Mount`` objects) on the gateway app.

    Called once per app, before the app serves. This is how a plugin claims inbound requests
    that are not chat completions (the pass-through's ``/bedrock/{path}``). ``gateway`` is the
    ``GatewayAPI``: settings, auth, deployments, regions, endpoints, credentials, sending, costs
    and the call lifecycle (``gateway.http_call``: error answers, disconnects, the one
    after-call event).
    All results are collected; routes are matched before the core's own routes.
    """


@hookspec
def outcrop_register_pricing(register: Callable[[str, ModelPrice], None]) -> None:
    """Register USD prices per token for foundation-model ids (``register(model_id, price)``).

    Called once when a gateway is built. Later registrations override earlier ones for the same
    id. A deployment's ``input_cost_per_token``/``output_cost_per_token`` override any table.
    All results are collected.
    """


@hookspec
def outcrop_parse_route(model: str, params: DeploymentParams) -> ModelRoute | None:
    """Parse a model string under one of this plugin's prefixes into a ``ModelRoute``.

    Called only on the plugin that registered the longest prefix ``model`` starts with, at
    start-up for every configured deployment (``params`` is its ``litellm_params``) and per
    request for raw model strings that are not a configured ``model_name`` (``params`` then
    holds only ``model``, or the Python API's keyword arguments). Raise ``OutcropError``
    (status 400) when the rest of the string is malformed, naming the expected form; ``None``
    means the plugin does not serve it after all (a 400 naming the plugin).
    """


@hookspec
def outcrop_translate_request(
    call: ChatCall,
) -> UpstreamRequest | Awaitable[UpstreamRequest] | None:
    """Turn a chat call into the upstream HTTP request (URL, headers, body bytes).

    Called once per chat call after routing and deployment choice, only on the plugin that
    claimed the model (``call.route``). Build the URL on ``call.endpoint`` (the
    base URL, which already honours ``api_base`` and ``AWS_ENDPOINT_URL_*``) and sign for
    ``call.region``.
    Raise ``OutcropError`` for bad input (it becomes a 400 in the caller's dialect). Set
    ``call.response_headers``/``call.response_fields`` for values the client gets back.
    Return an awaitable when the request needs I/O first (the Converse plugin fetches the image
    URLs an operator allowed); the core awaits it inside the call's lifecycle, so a client that
    disconnects cancels it.
    """


@hookspec(firstresult=True)
def outcrop_sign_request(
    request: UpstreamRequest, credentials: FrozenCredentials, call: ChatCall | None
) -> UpstreamRequest | None:
    """Sign ``request`` in place (or return a new one) before it is sent.

    Called for every upstream request, chat or pass-through (``call`` is ``None`` for the
    latter). The core's built-in implementation (``trylast``) adds SigV4 for
    ``request.signing_name``/``request.region`` over exactly the bytes and headers sent.
    A plugin overrides it by returning a request first. First result wins.
    """


@hookspec
def outcrop_translate_response(call: ChatCall, response: UpstreamResponse) -> ChatResult | None:
    """Turn a successful (2xx) upstream response into the answer.

    Called once per chat call, right after the upstream response headers arrived.
    Return an async iterator of ``ChatDelta`` (preferred: the core streams each delta to the
    client the moment it is yielded, or folds them into one completion for non-streaming
    calls), or an awaitable returning a ``ChatCompletion``. Never read the whole body before
    yielding what the client could already have. Raise ``OutcropError`` inside the iterator for
    a mid-stream failure: the client gets an SSE error event (stream) or the mapped error status.
    Non-2xx responses never reach this hook: the core maps them (see ``outcrop_map_error``).
    Called only on the plugin that claimed the model.
    """


@hookspec
def outcrop_map_error(
    call: ChatCall, status: int, body: bytes, headers: dict[str, str]
) -> Exception | None:
    """Map a non-2xx upstream response to the error the client gets (an ``OutcropError``).

    Called once per chat call whose upstream answered with an error status, with the whole
    (small) error body, only on the plugin that claimed the model. Return ``None`` to use the
    core's default map (``outcrop.error_from_aws``).
    """


@hookspec
def outcrop_translate_embeddings_request(call: EmbeddingCall) -> list[UpstreamRequest] | None:
    """Turn an embeddings call (``POST /v1/embeddings``) into upstream HTTP requests.

    Called once per embeddings call whose model's route has ``embeddings=True``, after routing.
    Return one request per upstream call the inputs need (a model taking one text per call
    gets one request per input; one taking batches gets one per batch), in input order; the core
    signs and sends them concurrently and hands each answer to
    ``outcrop_translate_embeddings_response``. Raise ``OutcropError`` for bad input (a 400).
    Called only on the plugin that claimed the model.
    """


@hookspec
def outcrop_translate_embeddings_response(
    call: EmbeddingCall, body: bytes, headers: dict[str, str]
) -> EmbeddingResult | None:
    """Turn one successful upstream answer (its whole body) into vectors and token usage.

    Called once per request returned by ``outcrop_translate_embeddings_request``, in the same
    order. Return float vectors: the core encodes them as ``encoding_format`` asks (``base64``
    is little-endian float32, as OpenAI sends it), sums usage and prices it. Non-2xx answers
    never reach this hook: the core maps them with ``error_from_aws``. Called only on the
    plugin that claimed the model.
    """


@hookspec
def outcrop_after_call(event: CallEvent) -> None:
    """Observe one finished call: success or failure, streamed or not, any surface.

    Called exactly once per call by the core's call lifecycle (disconnect: 499, shutdown: 503),
    when the answer is complete (just before its last byte) or the error was answered, for
    logs, spend and metrics. Must be fast and must not raise (exceptions are logged and
    swallowed). All implementations are called.
    """


@hookspec
def outcrop_before_upstream(
    request: UpstreamRequest, request_id: str, request_headers: Sequence[tuple[bytes, bytes]]
) -> None:
    """Look at (and add headers to) an upstream request just before it is signed and sent.

    Called for every upstream request, chat or pass-through, once per attempt of a call that
    is retried, and only when some plugin implements it (otherwise it costs nothing).
    ``request_id`` is the call's id (the ``CallEvent.request_id`` its ``outcrop_after_call``
    will carry; ``""`` outside a call), ``request_headers`` the client's request headers (ASGI
    byte pairs, lower-case names; empty for the Python API). Headers added to
    ``request.headers`` are signed and sent (a trace's ``traceparent``). Must be fast and must
    not raise (exceptions are logged and the request goes on). All implementations are called.
    """


@hookspec
def outcrop_register_callbacks(register: Callable[[str], None]) -> None:
    """Claim LiteLLM callback names this plugin implements (``register("prometheus")``).

    Called once when a gateway is built. A name in ``litellm_settings.callbacks``,
    ``success_callback`` or ``failure_callback`` that no installed plugin claims is a
    configuration error naming the distribution to install. ``gateway.callbacks`` holds the
    names the configuration turns on: a plugin checks for its own (in ``outcrop_startup``) and
    stays idle, at no cost per call, when it is not there. All results are collected.
    """


@hookspec
def outcrop_report_gauges(report: Callable[[str, str, float], None]) -> None:
    """Report this plugin's current levels for metrics: ``report(name, description, value)``.

    Called by ``gateway.gauges()`` when a metrics plugin samples (a scrape, a timer), never per
    call. ``name`` is a short metric-style name (``spend_buffer_rows``); the metrics plugin
    publishes it with its own prefix. Must be fast (read memory only). All implementations are
    called.
    """


@hookspec
def outcrop_register_config_sections(register: Callable[[ConfigSection], None]) -> None:
    """Claim the parts of the config file this plugin reads (``register(ConfigSection(...))``).

    Called once when a gateway is built (so ``outcrop check-config`` sees it too), before the
    configuration is checked. A top-level section, or a key of ``general_settings`` /
    ``litellm_settings`` / ``router_settings`` the core does not read, that no installed plugin
    claims is a configuration error (with a "did you mean" hint). A section whose
    ``client_credentials`` says it configures caller credentials makes every route require
    one. All results are collected.
    """


@hookspec
def outcrop_check_config(config: Config) -> list[str] | None:
    """Validate this plugin's part of the configuration (its section in ``config.sections``).

    Called once when a gateway is built, right after the core validated ``model_list`` — so
    ``outcrop check-config`` and start-up both report it. Return error lines in the form
    ``path: problem`` (``bedrock_passthrough.keys[0].secret_access_key: required``), or ``None``.
    All results are collected; any error refuses the configuration.
    """


@hookspec
def outcrop_startup(gateway: GatewayAPI) -> None:
    """Called once per worker when the gateway starts serving (inside the event loop).

    Use it to warm caches or start background work (validate config in
    ``outcrop_check_config``); raising ``ConfigError`` still refuses to start. All
    implementations are called.
    """


@hookspec
def outcrop_shutdown(gateway: GatewayAPI) -> Awaitable[None] | None:
    """Called once per worker when the gateway stops serving (inside the event loop), after the
    last call finished. Flush buffers and stop background work here; return an awaitable for
    async work (it is awaited). Exceptions are logged and swallowed. All implementations are
    called.
    """


# -- caller identity and admission ---------------------------------------------------------------


@hookspec(firstresult=True)
def outcrop_authenticate(token: str) -> Principal | None:
    """Name the caller presenting ``token``: a bearer token or ``x-api-key`` that is not the
    master key.

    Called by ``Gateway.authenticate`` on every HTTP call that presents such a credential (chat,
    models, ``/bedrock/*`` bearer, management routes), on the hot path: answer from memory.
    Return the ``Principal`` the token names, ``None`` if it is not yours (the caller then gets
    401), or raise ``OutcropError`` (401/403) for a known credential that is refused (blocked,
    expired). Implementing it makes the gateway require a credential on every route, even
    without a master key. First result wins.
    """


@hookspec(firstresult=True)
def outcrop_sigv4_secret(access_key_id: str) -> tuple[str, Principal] | None:
    """The secret access key and ``Principal`` for a SigV4 access key id this plugin issued.

    Called when a request to ``/bedrock/*`` is signed with a key id that is not one of the
    statically configured key pairs; the signature is then verified with the returned secret.
    Return ``None`` for ids that are not yours. First result wins.
    """


@hookspec
def outcrop_admit(admission: Admission) -> Awaitable[None] | None:
    """May this call go ahead? Called once per HTTP call after routing and before any upstream
    byte is sent.

    Raise ``OutcropError`` (or return an awaitable that raises) to refuse: 403 for a model or
    route the caller may not use, 429 for a budget or limit. The refusal reaches the caller in
    its dialect (OpenAI JSON on chat, AWS shape on ``/bedrock/*``) and nothing is sent upstream.
    Headers added to ``admission.headers`` (``x-ratelimit-*``) go out on the call's answer.
    All implementations are called; every awaitable is awaited.
    """


@hookspec
def outcrop_allowed_models(
    principal: Principal, models: list[str], requested: str | None
) -> list[str] | None:
    """The subset of ``models`` (configured ``model_name`` values) ``principal`` may use.

    Called by ``GET /v1/models`` (``requested`` is ``None``: each name as if the caller sent
    it), and by a surface choosing among the names that serve what the caller sent
    (``requested``: a name of ``models`` is kept when a call of ``requested`` served by it
    would be admitted, ``GatewayAPI.access_names(requested, name)``). Return ``None`` to leave
    the list alone. All implementations are called; the caller sees the names every answer
    kept.
    """


@hookspec
def outcrop_register_commands(subparsers: Any) -> None:
    """Add ``outcrop`` sub-commands (``outcrop keys ...``).

    Called once when the command-line parser is built. ``subparsers`` is the
    ``argparse`` sub-parsers object: ``p = subparsers.add_parser("keys")`` then
    ``p.set_defaults(func=callable)``, where ``callable(args) -> int`` runs the command and
    returns the exit status. All implementations are called.
    """
