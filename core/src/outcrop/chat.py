"""The chat-completions pipeline, shared by the HTTP route and the Python API.

prepare_call (route, deployment, parameter checks) -> open_stream (translate, sign, send,
translate response) -> either ``collect`` (one ChatCompletion) or ``chunks`` (one
ChatCompletionChunk per delta, as soon as it is yielded). ``serve`` is the HTTP face: it runs
the whole call inside its ``CallLifecycle`` and sends the answer itself.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol, TypeVar

import msgspec

from .config import Deployment, DeploymentParams
from .errors import OutcropError, clip, error_from_aws, split_validation_error
from .gateway import Gateway
from .headers import (
    ATTEMPTS_HEADER,
    COST_HEADER,
    DROPPED_PARAMS_HEADER,
    OVERHEAD_HEADER,
    RequestHeaders,
    raw_headers,
)
from .lifecycle import CallLifecycle, Receive
from .routing import request_tags
from .types import ChatCall, ChatDelta, EmbeddingCall, ModelRoute, Principal
from .upstream import MAX_ERROR_BODY, UpstreamRequest, UpstreamResponse, answer_too_large
from .wire import (
    ALWAYS_SUPPORTED,
    SOFT_PARAMS,
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    Choice,
    ChunkChoice,
    ChunkDelta,
    EmbeddingRequest,
    FunctionCall,
    JSONTooDeep,
    ResponseMessage,
    ToolCall,
    Usage,
    decode_request,
    encode_with_extra,
    encoder,
    harmless,
    set_params,
)

_JSON_HEADERS = [(b"content-type", b"application/json")]


async def serve(life: CallLifecycle, scope: Any, receive: Receive) -> None:
    """One HTTP chat call, start to answer; every error ends in ``life`` (its one exit)."""
    gateway: Gateway = life.gateway
    call = await open_call(life, scope, receive, decode_request, prepare_call)
    deltas = await open_stream(gateway, call, life)
    if call.stream:
        sse_headers = {
            **call.response_headers,
            OVERHEAD_HEADER: overhead_ms(call),
            ATTEMPTS_HEADER: life.attempts_header()[1].decode(),
            "cache-control": "no-cache",
        }
        try:
            await _send_stream(life, chunks(gateway, call, deltas), sse_headers, call.upstream)
        except asyncio.CancelledError:
            if not life.disconnected:  # shutdown: the stream ends with an error event
                err = life.record(asyncio.CancelledError())
                await life.send(
                    {"type": "http.response.body", "body": b"data: " + err.openai_body() + b"\n\n"}
                )
            raise
        return
    completion = await collect(gateway, call, deltas)
    out = [
        *_JSON_HEADERS,
        *raw_headers(call.response_headers),
        (OVERHEAD_HEADER.encode(), overhead_ms(call).encode()),
        life.attempts_header(),
    ]
    if call.cost is not None:
        out.append((COST_HEADER.encode(), repr(call.cost).encode()))
    await life.send({"type": "http.response.start", "status": 200, "headers": out})
    await life.send(
        {"type": "http.response.body", "body": encode_with_extra(completion, call.response_fields)}
    )


_SSE_CONTENT_TYPE = (b"content-type", b"text/event-stream; charset=utf-8")
_DONE = b"data: [DONE]\n\n"
#: At most this many frames share a send: the last of them waits for the others to be made.
_MOST_HELD = 16


async def _send_stream(
    life: CallLifecycle,
    frames: AsyncIterator[bytes],
    headers: Mapping[str, str],
    upstream: UpstreamResponse | None = None,
) -> None:
    """The SSE answer, raw ASGI: each chunk goes out the moment it exists, then ``[DONE]``; an
    error while the chunks are made ends the stream with an error event instead. The call's
    lifecycle has the one watcher for a client that leaves (Starlette's ``StreamingResponse``
    ran an anyio task group per response): it cancels this task, and the ``finally`` closes the
    chunks, which closes the upstream call.

    Chunks made from event-stream messages that arrived in one upstream read go out in one
    ``send``: while ``upstream.events_ready`` says more of that read's messages are decoded and
    waiting, a frame is held; the next frame made once none is, the upstream's ``before_wait``
    (before it waits for more bytes), ``_MOST_HELD`` frames held and the end of the stream send
    what is held. The first frame goes at once (the server sends the answer's head with it).
    No frame waits for the network; a send per frame cost the server more than making it."""
    send = life.send
    held: list[bytes] = []
    first = True
    failed: list[BaseException] = []  # a send that failed inside the chunks' own reading

    async def flush() -> None:
        if held:
            body = b"".join(held)
            held.clear()
            try:
                await send({"type": "http.response.body", "body": body, "more_body": True})
            except BaseException as exc:
                failed.append(exc)
                raise

    if upstream is not None:
        upstream.before_wait = flush
    try:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [_SSE_CONTENT_TYPE, *raw_headers(headers)],
            }
        )
        while True:
            try:
                chunk = await frames.__anext__()
            except StopAsyncIteration:
                held.append(_DONE)
                break
            except Exception as exc:
                if failed and failed[-1] in (exc, exc.__cause__):
                    raise  # sending failed, not making the chunks: as a send of ours would
                if isinstance(exc, OutcropError):
                    life.record(exc)
                    held.append(b"data: " + exc.openai_body() + b"\n\n")
                    break
                life.record(exc)  # logged with its traceback
                err = OutcropError("internal error while streaming", 500)
                held.append(b"data: " + err.openai_body() + b"\n\n")
                break
            held.append(b"data: " + chunk + b"\n\n")
            if (
                upstream is None
                or not upstream.events_ready
                or len(held) >= _MOST_HELD
                or first  # the first token (and the answer's head with it) never waits
            ):
                first = False
                await flush()
        await flush()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except asyncio.CancelledError:
        if held and not life.disconnected:  # shutdown: what was made still goes out first
            await flush()
        raise
    finally:
        if upstream is not None:
            upstream.before_wait = None
        await _aclose(frames)


def openai_answer(
    err: OutcropError, life: CallLifecycle
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """An error in the OpenAI dialect, with the headers the provider set for the client."""
    extra = {**life.call.response_headers, **err.headers} if life.call else err.headers
    out = [*_JSON_HEADERS, *raw_headers(extra)]
    if life.attempts:
        out.append(life.attempts_header())
    return err.status, out, err.openai_body()


def overhead_ms(call: ChatCall) -> str:
    spent = time.perf_counter() - call.started
    waited = call.upstream.waited if call.upstream is not None else 0.0
    return f"{max(spent - waited, 0.0) * 1000:.3f}"


def body_error(exc: Exception) -> OutcropError:
    if isinstance(exc, msgspec.ValidationError):
        param, text = split_validation_error(exc)
        where = f"{param}: " if param else ""
        return OutcropError(
            f"invalid request body: {where}{text}", 400, param=param or None, code="invalid_request"
        )
    if isinstance(exc, JSONTooDeep):
        return OutcropError(f"request body refused: {exc}", 400, code="json_too_deep")
    return OutcropError(f"request body is not valid JSON: {exc}", 400, code="invalid_json")


_Request = TypeVar("_Request", ChatRequest, EmbeddingRequest)
_Call = TypeVar("_Call", ChatCall, EmbeddingCall)
_In = TypeVar("_In", ChatRequest, EmbeddingRequest, contravariant=True)
_Out = TypeVar("_Out", ChatCall, EmbeddingCall, covariant=True)


class _Prepare(Protocol[_In, _Out]):
    """``prepare_call`` and the embeddings' ``prepare``: route a decoded request."""

    def __call__(
        self,
        gateway: Gateway,
        request: _In,
        provider_params: dict[str, Any],
        headers: Mapping[str, str],
        request_id: str,
        *,
        principal: Principal | None = None,
    ) -> _Out: ...


async def open_call(
    life: CallLifecycle,
    scope: Any,
    receive: Receive,
    decode: Callable[[bytes], tuple[_Request, dict[str, Any]]],
    prepare: _Prepare[_Request, _Call],
) -> _Call:
    """The start every OpenAI-style route shares: who calls, the body, the routed call,
    admission. From the body on, a client that disconnects cancels the call."""
    gateway: Gateway = life.gateway
    headers = RequestHeaders(scope=scope)
    life.principal = gateway.authenticate(headers)
    body = life.request_body = await gateway.read_body(receive, scope["headers"])
    life.watch()
    try:
        request, extra = decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise body_error(exc) from exc
    life.requested = request.model
    aliases = life.principal.model_aliases
    if aliases is not None and request.model in aliases:  # the caller's own name for a model
        request.model = aliases[request.model]
    life.model = request.model
    call = prepare(gateway, request, extra, headers, life.request_id, principal=life.principal)
    life.bind(call)
    await life.admit()
    return call


def routed_fields(
    gateway: Gateway,
    model: str,
    provider_params: dict[str, Any],
    params: DeploymentParams | None,
    tags: tuple[str, ...] | None = None,
) -> tuple[ModelRoute, dict[str, Any]]:
    """Route ``model``: its route, and the fields every routed call (chat, embeddings) holds."""
    route, dparams, deployment = gateway.resolve(model, params, tags)
    region = gateway.aws.region(dparams, route.region)
    return route, {
        "tags": tags,
        "route": route,
        "params": dparams,
        "deployment": deployment,
        "provider_params": {**dparams.extra, **provider_params},
        "region": region,
        "endpoint": gateway.aws.endpoint(route.service, region, dparams),
        "model": model,
    }


def prepare_call(
    gateway: Gateway,
    request: ChatRequest,
    provider_params: dict[str, Any],
    headers: Mapping[str, str],
    request_id: str,
    params: DeploymentParams | None = None,
    principal: Principal | None = None,
) -> ChatCall:
    """Route the call and check its parameters; raises ``OutcropError`` (4xx) on bad input.
    ``principal``: the caller, whose own tags join the request's."""
    if not request.messages:
        raise OutcropError("`messages` must contain at least one message", 400, param="messages")
    tags = request_tags(provider_params, request.metadata, headers, principal)
    route, fields = routed_fields(gateway, request.model, provider_params, params, tags)
    return _call(gateway, request, provider_params, headers, request_id, route, fields)


def call_on(
    gateway: Gateway, request: ChatRequest, deployment: Deployment, request_id: str
) -> ChatCall:
    """A call on exactly ``deployment`` (health checks), checked like any other."""
    route = gateway.route(deployment)
    dparams = deployment.params
    region = gateway.aws.region(dparams, route.region)
    fields = {
        "route": route,
        "params": dparams,
        "deployment": deployment,
        "provider_params": dict(dparams.extra),
        "region": region,
        "endpoint": gateway.aws.endpoint(route.service, region, dparams),
        "model": request.model,
    }
    return _call(gateway, request, {}, {}, request_id, route, fields)


def _call(
    gateway: Gateway,
    request: ChatRequest,
    provider_params: dict[str, Any],
    headers: Mapping[str, str],
    request_id: str,
    route: ModelRoute,
    fields: dict[str, Any],
) -> ChatCall:
    drop, dropped = _check_route(gateway, request, route, fields["params"])
    return ChatCall(
        request_id=request_id,
        request=request,
        headers=headers,
        stream=bool(request.stream),
        drop_params=drop,
        body_params=provider_params,
        dropped=dropped or None,
        **fields,
    )


def _check_route(
    gateway: Gateway, request: ChatRequest, route: ModelRoute, dparams: DeploymentParams
) -> tuple[bool, list[str]]:
    """Whether the route serves this call on the chat route: its effective ``drop_params`` and
    the parameters dropped (400 when they may not be)."""
    if not route.chat:
        raise OutcropError(
            route.error
            or f"model {clip(request.model)!r} is not served on the chat-completions route",
            400,
            param="model",
            code="unsupported_model",
        )
    drop = request.drop_params
    if drop is None:
        drop = dparams.drop_params
    if drop is None:
        drop = gateway.config.general_settings.drop_params
    unsupported = set_params(request) - ALWAYS_SUPPORTED - route.supported_params
    if unsupported:
        unsupported = {p for p in unsupported if not harmless(request, p)}
    if unsupported and not drop and not unsupported <= SOFT_PARAMS:
        names = ", ".join(sorted(unsupported - SOFT_PARAMS))
        raise OutcropError(
            f"{route.provider} does not support the OpenAI parameter(s): {names}. "
            "Remove them, or set `drop_params: true` (request body or config) to drop them.",
            400,
            param=sorted(unsupported - SOFT_PARAMS)[0],
            code="unsupported_params",
        )
    return bool(drop), sorted(unsupported)


def _move(gateway: Gateway, call: ChatCall, deployment: Deployment) -> None:
    """A retry goes to another deployment (or a fallback model_name): the call follows it."""
    route = gateway.route(deployment)
    dparams = deployment.params
    call.drop_params, dropped = _check_route(gateway, call.request, route, dparams)
    call.dropped = dropped or None
    call.route, call.params, call.deployment = route, dparams, deployment
    call.provider_params = {**dparams.extra, **call.body_params}
    call.region = gateway.aws.region(dparams, route.region)
    call.endpoint = gateway.aws.endpoint(route.service, call.region, dparams)
    call.model = deployment.model_name
    call.state = {}
    call.response_headers = {}


async def open_stream(
    gateway: Gateway, call: ChatCall, life: CallLifecycle | None = None, *, failover: bool = True
) -> AsyncIterator[ChatDelta]:
    """Send the upstream request (with the router's retries and fallbacks) and return the
    plugin's delta stream (not yet consumed). ``failover=False`` keeps every attempt on the
    call's deployment."""

    async def attempt(deployment: Deployment | None) -> UpstreamResponse:
        if deployment is not call.deployment and deployment is not None:
            _move(gateway, call, deployment)
        provider = gateway.provider(call.route)  # a fallback may be another plugin's model
        translate = provider.translate_request
        upstream = translate(call=call) if translate is not None else None
        if inspect.isawaitable(upstream):  # the plugin needs I/O first (fetching an image...)
            upstream = await upstream
        if not isinstance(upstream, UpstreamRequest):
            raise OutcropError(f"plugin {provider.name!r} did not translate the chat request", 500)
        upstream.fill_in(
            call.route.service,
            call.route.signing_name,
            call.region,
            call.params.timeout,
            call.params.connect_timeout,
        )
        if call.dropped:
            call.response_headers[DROPPED_PARAMS_HEADER] = ",".join(call.dropped)
            if life is not None:
                life.extra["dropped_params"] = call.dropped
        return await gateway.send(upstream, call.params, call)

    deployment = call.deployment
    response, _ = await gateway.send_routed(
        attempt,
        model_name=deployment.model_name if deployment is not None and failover else None,
        deployment=deployment,
        life=life,
        fallbacks=failover,
        tags=call.tags,
    )
    provider = gateway.provider(call.route)  # the final attempt's
    call.upstream = response
    if response.status >= 300:
        try:
            body = await response.read_up_to(MAX_ERROR_BODY)
        finally:
            response.close()
        call.upstream_seconds = response.waited
        hdrs = {k.lower(): v for k, v in response.headers.items()}
        mapped = None
        if provider.map_error is not None:
            mapped = provider.map_error(call=call, status=response.status, body=body, headers=hdrs)
        raise mapped or error_from_aws(response.status, body, hdrs)
    answer = provider.translate_response
    result = answer(call=call, response=response) if answer is not None else None
    if result is None:
        response.close()
        raise OutcropError(f"plugin {provider.name!r} did not translate the chat response", 500)
    if inspect.isawaitable(result):
        return _from_completion(result)
    return result  # type: ignore[no-any-return]  # untyped hook result


async def _from_completion(awaitable: Any) -> AsyncIterator[ChatDelta]:
    completion: ChatCompletion = await awaitable
    msg = completion.choices[0].message if completion.choices else ResponseMessage()
    yield ChatDelta(
        content=msg.content,
        reasoning_content=msg.reasoning_content,
        thinking_blocks=msg.thinking_blocks,
        annotations=msg.annotations,
        tool_calls=[_tool_delta(i, tc) for i, tc in enumerate(msg.tool_calls or [])] or None,
        finish_reason=completion.choices[0].finish_reason if completion.choices else "stop",
        usage=completion.usage,
        model=completion.model,
    )


def _tool_delta(i: int, tc: ToolCall) -> Any:
    from .wire import ToolCallDelta

    return ToolCallDelta(index=i, id=tc.id, type=tc.type, function=tc.function)


def _track(call: ChatCall, delta: ChatDelta) -> None:
    if delta.usage is not None:
        call.usage = delta.usage
    if delta.usage_by_model is not None:
        call.usage_by_model = delta.usage_by_model
    if delta.model:
        call.model = delta.model
    if delta.extra:
        call.response_fields.update(delta.extra)


def finish_accounting(gateway: Gateway, call: ChatCall) -> None:
    resp = call.upstream
    if resp is not None:
        call.upstream_seconds = resp.waited
    if call.usage_by_model and call.cost is None:
        costs = [gateway.prices.cost(u, m, call.params) for m, u in call.usage_by_model.items()]
        call.cost = None if any(c is None for c in costs) else round(sum(costs), 10)  # type: ignore[arg-type]
        if call.usage is None:
            call.usage = sum(call.usage_by_model.values(), Usage())
    if call.usage is not None and call.cost is None:
        call.cost = gateway.prices.cost(call.usage, call.model, call.params)


async def collect(
    gateway: Gateway, call: ChatCall, deltas: AsyncIterator[ChatDelta]
) -> ChatCompletion:
    """Fold the delta stream into one completion (non-streaming calls).

    What is held is capped at ``general_settings.max_response_bytes`` (text counted in
    characters, annotations as JSON): past it the call fails with a 502.
    """
    content: list[str] = []
    reasoning: list[str] = []
    annotations: list[dict[str, Any]] = []
    thinking: list[dict[str, Any]] = []
    tools: dict[int, ToolCall] = {}
    finish: str | None = None
    limit = gateway.config.general_settings.max_response_bytes
    held = 0
    try:
        async for d in deltas:
            _track(call, d)
            if d.content:
                content.append(d.content)
                held += len(d.content)
            if d.reasoning_content:
                reasoning.append(d.reasoning_content)
                held += len(d.reasoning_content)
            if d.annotations:
                annotations.extend(d.annotations)
                held += len(encoder.encode(d.annotations))
            if d.thinking_blocks:
                thinking.extend(d.thinking_blocks)
                held += len(encoder.encode(d.thinking_blocks))
            for tc in d.tool_calls or ():
                if tc.function:
                    held += len(tc.function.name) + len(tc.function.arguments)
                cur = tools.get(tc.index)
                if cur is None:
                    cur = tools[tc.index] = ToolCall(id=tc.id or "", function=FunctionCall())
                if tc.id:
                    cur.id = tc.id
                if tc.function:
                    cur.function.name += tc.function.name
                    cur.function.arguments += tc.function.arguments
            if d.finish_reason:
                finish = d.finish_reason
            if held > limit:
                raise answer_too_large(limit)
    finally:
        await _aclose(deltas)
        _close_upstream(call)
    finish_accounting(gateway, call)
    tool_calls = [tools[i] for i in sorted(tools)] or None
    call.finish_reason = finish or ("tool_calls" if tool_calls else "stop")
    message = ResponseMessage(
        content="".join(content) if content or not tool_calls else None,
        tool_calls=tool_calls,
        annotations=annotations or None,
        reasoning_content="".join(reasoning) if reasoning else None,
        thinking_blocks=thinking or None,
    )
    if gateway.capture_output:
        call.output_text = message.content
    return ChatCompletion(
        id=f"chatcmpl-{call.request_id}",
        created=int(time.time()),
        model=call.model,
        choices=[Choice(0, message, finish or ("tool_calls" if tool_calls else "stop"))],
        usage=call.usage,  # null when the upstream reported none: never invented
    )


class _TextFrames:
    """The JSON of a chunk that carries only text (nearly every chunk of a stream), made from
    the text alone: the encoding of that chunk is a fixed prefix (id, created, model, the
    choice up to ``"content":``), the text as a JSON string, and a fixed suffix. The prefix is
    made by encoding the same chunk, so the bytes are the encoder's own; it is made again when
    the call's model changes."""

    __slots__ = ("_created", "_id", "_model", "_prefix", "_suffix")

    _MARK = b'"\\u0000"'  # what a one-NUL text encodes to: unique in the template

    def __init__(self, cid: str, created: int) -> None:
        self._id, self._created = cid, created
        self._model: str | None = None
        self._prefix = self._suffix = b""

    def __call__(self, model: str, text: str) -> bytes:
        if model != self._model:
            template = encoder.encode(
                ChatCompletionChunk(
                    id=self._id,
                    created=self._created,
                    model=model,
                    choices=[ChunkChoice(0, ChunkDelta(content="\0"), None)],
                )
            )
            at = template.rindex(self._MARK)
            self._prefix, self._suffix = template[:at], template[at + len(self._MARK) :]
            self._model = model
        return self._prefix + encoder.encode(text) + self._suffix


async def chunks(
    gateway: Gateway, call: ChatCall, deltas: AsyncIterator[ChatDelta]
) -> AsyncIterator[bytes]:
    """One chunk per delta as it arrives; the finish chunk; the usage chunk when asked. Each
    chunk is its JSON, the top-level fields to add to it spliced in: ``call.response_fields``
    on the first chunk, then each delta's ``extra`` on the chunk built from that delta.
    """
    cid = f"chatcmpl-{call.request_id}"
    created = int(time.time())
    finish: str | None = None
    saw_tools = False
    first = True
    kept: list[str] | None = [] if gateway.capture_output else None
    text_frame = _TextFrames(cid, created)

    def chunk(delta: ChunkDelta, finish_reason: str | None = None) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=cid,
            created=created,
            model=call.model,
            choices=[ChunkChoice(0, delta, finish_reason)],
        )

    try:
        async for d in deltas:
            text = d.content
            if (  # text alone, after the first chunk: the prefix-made frame
                text is not None
                and not first
                and d.reasoning_content is None
                and d.finish_reason is None
                and d.model is None
                and not d.tool_calls
                and not d.annotations
                and not d.thinking_blocks
                and not d.extra
                and d.usage is None
                and d.usage_by_model is None
            ):
                if kept is not None and text:
                    kept.append(text)
                yield text_frame(call.model, text)
                continue
            _track(call, d)
            if d.finish_reason:
                finish = d.finish_reason
            has_delta = not (
                text is None
                and d.reasoning_content is None
                and not d.tool_calls
                and not d.annotations
                and not d.thinking_blocks
            )
            if not has_delta and not d.extra:
                continue
            saw_tools = saw_tools or bool(d.tool_calls)
            if kept is not None and text:
                kept.append(text)
            extra = {**call.response_fields, **(d.extra or {})} if first else d.extra
            yield encode_with_extra(
                chunk(
                    ChunkDelta(
                        role="assistant" if first else None,
                        content=text if has_delta or not first else "",
                        reasoning_content=d.reasoning_content,
                        thinking_blocks=d.thinking_blocks,
                        tool_calls=d.tool_calls,
                        annotations=d.annotations,
                    )
                ),
                extra,
            )
            first = False
    finally:
        await _aclose(deltas)
        _close_upstream(call)
    finish_accounting(gateway, call)
    call.finish_reason = finish or ("tool_calls" if saw_tools else "stop")
    if kept is not None:
        call.output_text = "".join(kept)
    yield encode_with_extra(
        chunk(
            ChunkDelta(role="assistant" if first else None, content="" if first else None),
            finish or ("tool_calls" if saw_tools else "stop"),
        ),
        (call.response_fields or None) if first else None,
    )
    opts = call.request.stream_options
    if opts is not None and opts.include_usage:
        yield encode_with_extra(
            ChatCompletionChunk(
                id=cid, created=created, model=call.model, choices=[], usage=call.usage
            ),
            ({"response_cost": call.cost} if call.cost is not None else None),
        )


async def _aclose(it: Any) -> None:
    close = getattr(it, "aclose", None)
    if close is not None:
        await close()


def _close_upstream(call: ChatCall) -> None:
    if call.upstream is not None:
        call.upstream.close()
