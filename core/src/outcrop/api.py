"""The in-process Python API: ``outcrop.completion`` and ``await outcrop.acompletion``.

Runs the same plugin pipeline as the server, without HTTP in front. Keyword arguments follow
LiteLLM: OpenAI parameters, deployment settings (``aws_region_name``, ``aws_access_key_id``,
``api_base``, ``input_cost_per_token``...) and provider parameters (anything else, e.g.
``invocationId``, ``qualifier``). ``model`` may also be a ``model_name`` of the config named by
``config=`` or the ``OUTCROP_CONFIG`` environment variable.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import structlog

from . import embeddings, plugins
from .chat import chunks, collect, open_stream, prepare_call
from .config import Config, DeploymentParams, load_config
from .errors import ConfigError, OutcropError, split_validation_error
from .gateway import Gateway
from .lifecycle import CallLifecycle
from .logs import configure_logging
from .params import PARAM_FIELDS, parse_params
from .types import ChatCall
from .wire import (
    EMBEDDING_FIELDS,
    MAX_JSON_DEPTH,
    OPENAI_FIELDS,
    ChatRequest,
    EmbeddingRequest,
    encoder,
    too_deep,
)

_SETTINGS = (PARAM_FIELDS - {"model"}) | {"aws_bedrock_runtime_endpoint"}


class OpenAIObject(dict):  # type: ignore[type-arg]
    """A JSON object with attribute access (``response.choices[0].message.content``).

    Missing optional fields read as ``None``, as on the OpenAI SDK's models.
    """

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.get(name)

    @classmethod
    def wrap(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return cls({k: cls.wrap(v) for k, v in value.items()})
        if isinstance(value, list):
            return [cls.wrap(v) for v in value]
        return value

    def to_dict(self) -> dict[str, Any]:
        decoded: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(self))
        return decoded

    model_dump = to_dict


class ModelResponse(OpenAIObject):
    """A chat completion. ``_hidden_params`` holds ``response_cost``, ``model``, headers."""

    _hidden_params: dict[str, Any]


_gateways: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Any, Gateway]] = (
    weakref.WeakKeyDictionary()
)
#: Per loop, a suspended async generator whose ``finally`` stops that loop's gateways:
#: ``asyncio.run`` closes every async generator before it closes the loop, so the HTTP pool
#: closes cleanly (no "Unclosed client session" at exit).
_closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()


async def _stop_at_loop_end(gateways: dict[Any, Gateway]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for gw in list(gateways.values()):
            await gw.stop()
        gateways.clear()


def _quiet_logging() -> None:
    """In-process, log warnings and errors only (no access line per call) unless the program
    configured logging itself; ``OUTCROP_LOG_LEVEL`` chooses another level."""
    if not structlog.is_configured():
        configure_logging(os.environ.get("OUTCROP_LOG_LEVEL", "WARNING"))


async def _gateway_for(config: Config | str | None) -> Gateway:
    """One started gateway per (event loop, config): its HTTP pool is bound to the loop."""
    config = config if config is not None else os.environ.get("OUTCROP_CONFIG")
    loop = asyncio.get_running_loop()
    per_loop = _gateways.setdefault(loop, {})
    if loop not in _closers:
        _quiet_logging()
        closer = _stop_at_loop_end(per_loop)
        await closer.__anext__()
        _closers[loop] = closer
    key = (id(config) if isinstance(config, Config) else config, plugins.generation)
    gw = per_loop.get(key)
    if gw is None:
        for stale in [k for k in per_loop if k[1] != plugins.generation]:
            await per_loop.pop(stale).stop()
        cfg = (
            config if isinstance(config, Config) else (load_config(config) if config else Config())
        )
        gw = Gateway(cfg)
        gw.in_process = True
        await gw.start()
        per_loop[key] = gw
    return gw


def _split_kwargs(
    model: str, messages: list[Any], kwargs: dict[str, Any]
) -> tuple[ChatRequest, dict[str, Any], DeploymentParams | None]:
    return _split({"model": model, "messages": messages}, kwargs, OPENAI_FIELDS, ChatRequest)


def _split(
    openai: dict[str, Any], kwargs: dict[str, Any], fields: frozenset[str], kind: type[Any]
) -> tuple[Any, dict[str, Any], DeploymentParams | None]:
    """Keyword arguments -> (the OpenAI request, provider parameters, deployment settings)."""
    if too_deep([*openai.values(), list(kwargs.values())], MAX_JSON_DEPTH + 2):  # +2: wrappers
        raise OutcropError(
            f"invalid arguments: nested more than {MAX_JSON_DEPTH} levels deep",
            400,
            code="json_too_deep",
        )
    model = openai["model"]
    params: dict[str, Any] = {}
    provider: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in fields:
            openai[key] = value
        elif key in _SETTINGS:
            params[key] = value
        else:
            provider[key] = value
    try:
        request = msgspec.convert(openai, kind)
    except msgspec.ValidationError as exc:
        path, message = split_validation_error(exc)
        where = f"{path}: " if path else ""
        raise OutcropError(
            f"invalid arguments: {where}{message}", 400, param=path or None, code="invalid_request"
        ) from None
    if not params:
        return request, provider, None
    try:
        dparams = parse_params({"model": model, **params}, provider_params=False)
    except ConfigError as exc:
        param = exc.errors[0].split(":", 1)[0]
        code = "invalid_region" if param == "aws_region_name" else "invalid_request"
        raise OutcropError(
            f"invalid arguments: {'; '.join(exc.errors)}", 400, param=param, code=code
        ) from None
    return request, provider, dparams


async def acompletion(
    model: str, messages: list[Any], *, config: Config | str | None = None, **kwargs: Any
) -> Any:
    """Async chat completion: a ``ModelResponse``, or an async iterator of chunks if ``stream=True``."""
    gateway = await _gateway_for(config)
    async with CallLifecycle(gateway, "chat", "python") as life:
        life.model = model
        request, provider, dparams = _split_kwargs(model, messages, kwargs)
        call = prepare_call(gateway, request, provider, {}, life.request_id, dparams)
        life.bind(call)
        deltas = await open_stream(gateway, call, life)
        if call.stream:
            return life.hand_off(_achunks(gateway, call, deltas))
        completion = await collect(gateway, call, deltas)
    data = msgspec.json.decode(encoder.encode(completion))
    data.update(call.response_fields)
    response = ModelResponse(OpenAIObject.wrap(data))
    response._hidden_params = {
        "response_cost": call.cost,
        "model": call.model,
        "request_id": call.request_id,
        "region": call.region,
        "deployment": call.deployment.id if call.deployment else None,
        "additional_headers": dict(call.response_headers),
    }
    return response


async def _achunks(gateway: Gateway, call: ChatCall, deltas: Any) -> AsyncIterator[OpenAIObject]:
    async for chunk in chunks(gateway, call, deltas):
        yield OpenAIObject.wrap(msgspec.json.decode(chunk))


class _LoopThread:
    """A private event loop in a daemon thread, for the synchronous API."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="outcrop-api", daemon=True
        )
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()


_loop_thread: _LoopThread | None = None
_loop_lock = threading.Lock()


def _runner() -> _LoopThread:
    global _loop_thread
    with _loop_lock:
        if _loop_thread is None:
            _loop_thread = _LoopThread()
            atexit.register(_close_sync_gateways, _loop_thread)
        return _loop_thread


def _close_sync_gateways(runner: _LoopThread) -> None:
    """At exit, the synchronous API's gateways close their HTTP pools on their own loop."""
    closer = _closers.get(runner.loop)
    if closer is not None and runner.thread.is_alive():
        with contextlib.suppress(Exception):
            runner.run(closer.aclose())


def completion(
    model: str, messages: list[Any], *, config: Config | str | None = None, **kwargs: Any
) -> Any:
    """Synchronous chat completion: a ``ModelResponse``, or an iterator of chunks if ``stream=True``."""
    runner = _runner()
    result = runner.run(acompletion(model, messages, config=config, **kwargs))
    if kwargs.get("stream"):
        return _sync_iter(runner, result)
    return result


def _sync_iter(runner: _LoopThread, agen: AsyncIterator[Any]) -> Iterator[Any]:
    """Pull the async stream chunk by chunk: nothing is read ahead of the caller."""
    try:
        while True:
            try:
                yield runner.run(agen.__anext__())
            except StopAsyncIteration:
                return
    finally:
        close = getattr(agen, "aclose", None)
        if close is not None:
            runner.run(close())


async def aembedding(
    model: str, input: str | list[Any], *, config: Config | str | None = None, **kwargs: Any
) -> Any:
    """Async embeddings: an OpenAI ``list`` of embeddings (``_hidden_params`` holds the cost)."""
    gateway = await _gateway_for(config)
    async with CallLifecycle(gateway, "embeddings", "python") as life:
        life.model = model
        request, provider, dparams = _split(
            {"model": model, "input": input}, kwargs, EMBEDDING_FIELDS, EmbeddingRequest
        )
        call = embeddings.prepare(gateway, request, provider, {}, life.request_id, dparams)
        life.bind(call)
        answer = await embeddings.run(gateway, call)
    response = ModelResponse(OpenAIObject.wrap(msgspec.json.decode(encoder.encode(answer))))
    response._hidden_params = {
        "response_cost": call.cost,
        "request_id": call.request_id,
        "region": call.region,
        "deployment": call.deployment.id if call.deployment else None,
    }
    return response


def embedding(
    model: str, input: str | list[Any], *, config: Config | str | None = None, **kwargs: Any
) -> Any:
    """Synchronous embeddings (LiteLLM's ``embedding``): see ``aembedding``."""
    return _runner().run(aembedding(model, input, config=config, **kwargs))
