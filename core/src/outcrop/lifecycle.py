"""One owner for a call's life, on every face: the HTTP chat route, the Python API and any plugin
route (the pass-through) that opens it through ``Gateway.http_call``.

``CallLifecycle`` is an async context manager. It times the call, maps whatever ends it to a
status (``OutcropError`` -> its status; client gone -> 499; gateway shutting down -> 503;
anything else -> 500, logged with its traceback), answers an error in the caller's dialect when
no answer started yet, and emits the call's single ``CallEvent``. After the request body was
read, ``watch()`` starts one watcher task: a client that disconnects cancels the call, and with
it the upstream request, streamed or not.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextvars import ContextVar
from types import TracebackType
from typing import TYPE_CHECKING, Any

from starlette.types import Message, Receive, Send

__all__ = [
    "CLIENT_GONE",
    "CLIENT_LEFT",
    "SHUTDOWN",
    "CallLifecycle",
    "ClientLeft",
    "ErrorAnswer",
    "Receive",
    "Send",
    "describe",
]

from .bodies import ClientDisconnected
from .errors import OutcropError, UpstreamError
from .headers import ATTEMPTS_HEADER, new_request_id
from .logs import get_logger
from .types import OPEN, Admission, CallEvent

if TYPE_CHECKING:
    from .types import Attempt, ChatCall, EmbeddingCall, Principal
    from .upstream import UpstreamResponse

log = get_logger("outcrop.lifecycle")

#: Turns the error a call ends with into its HTTP answer (status, headers, body), in the
#: caller's dialect.
ErrorAnswer = Callable[
    [OutcropError, "CallLifecycle"], tuple[int, list[tuple[bytes, bytes]], bytes]
]

_ATTEMPTS = ATTEMPTS_HEADER.encode()
CLIENT_GONE = 499
SHUTDOWN = 503

#: The call the running task works on (set while inside ``async with life``), so an upstream
#: request sent from any surface knows its call (``outcrop_before_upstream``).
current_call: ContextVar[CallLifecycle | None] = ContextVar("outcrop_current_call", default=None)


#: The ASGI scope extension (``scope["extensions"]``) through which a server tells a call that
#: its client left, so the call needs no task waiting on ``receive()`` to learn it.
CLIENT_LEFT = "outcrop.client_left"


class ClientLeft:
    """``scope["extensions"][CLIENT_LEFT]``: the server sets ``left`` and runs every callback
    when it delivers the request's ``http.disconnect`` (``outcrop serve`` under hypercorn does;
    without it, ``CallLifecycle.watch`` starts a task that waits on ``receive()``)."""

    __slots__ = ("callbacks", "left")

    def __init__(self) -> None:
        self.left = False
        self.callbacks: list[Callable[[], None]] = []

    def tell(self) -> None:
        """The client left: run (and drop) the callbacks."""
        self.left = True
        callbacks, self.callbacks = self.callbacks, []
        for callback in callbacks:
            callback()


def describe(exc: OutcropError) -> str:
    """The one spelling of an error in a ``CallEvent``: ``AwsType: message``."""
    if isinstance(exc, UpstreamError) or exc.message.startswith(exc.aws_type):
        return exc.message
    return f"{exc.aws_type}: {exc.message}"


class CallLifecycle:
    """One call from its arrival to its after-call event (emitted exactly once).

    Faces fill the typed fields as they learn them; a routed call binds its ``ChatCall``
    (``bind``), whose model, deployment, usage and cost the event then reports.
    """

    __slots__ = (
        "_active",
        "_answer",
        "_captured",
        "_cut",
        "_emitted",
        "_handed",
        "_left",
        "_receive",
        "_send",
        "_task",
        "_watcher",
        "_watching",
        "attempts",
        "call",
        "charge_to",
        "client_ip",
        "cost",
        "deployment",
        "disconnected",
        "error",
        "error_code",
        "error_type",
        "extra",
        "first_token",
        "gateway",
        "group",
        "headers_out",
        "model",
        "path",
        "principal",
        "provider",
        "region",
        "request_body",
        "request_headers",
        "request_id",
        "requested",
        "responded",
        "route",
        "routed",
        "started",
        "status",
        "stream",
        "surface",
        "upstream",
        "usage",
        "user_agent",
    )

    def __init__(
        self,
        gateway: Any,
        surface: str,
        route: str,
        *,
        request_id: str | None = None,
        started: float | None = None,
        receive: Receive | None = None,
        send: Send | None = None,
        answer: ErrorAnswer | None = None,
        left: ClientLeft | None = None,
    ) -> None:
        self.gateway = gateway
        self.surface = surface
        #: What the event reports as the route (a plugin may name its template); ``path`` is
        #: the inbound path, as admission sees it.
        self.route = route
        self.path = route
        self.request_id = request_id or new_request_id()
        self.started = started if started is not None else time.perf_counter()
        self.model = ""
        #: The model name the caller sent, when ``model`` is what it resolved to (an alias's
        #: ``model_name``); ``group``: the ``model_name`` of the deployment serving the call.
        #: A key's ``models`` are matched against all three (``GatewayAPI.access_names``).
        self.requested: str | None = None
        self.group: str | None = None
        self.deployment: str | None = None
        self.provider: str | None = None
        self.region: str | None = None
        self.stream = False
        self.usage: Any = None
        self.cost: float | None = None
        #: The upstream response, once there is one (its ``waited`` is the upstream time).
        self.upstream: UpstreamResponse | None = None
        self.extra: dict[str, Any] = {}
        #: Who called (``None`` for the Python API and before authentication), from where.
        self.principal: Principal | None = None
        self.client_ip: str | None = None
        self.user_agent: str | None = None
        #: The routed call (chat or embeddings) once there is one: ``bind``.
        self.call: ChatCall | EmbeddingCall | None = None
        self.status = 200
        self.error: str | None = None
        #: Every upstream attempt when there was more than one (the retry loop fills it).
        self.attempts: list[Attempt] | None = None
        #: The deployment id the router counts this call against until it ends.
        self.routed: str | None = None
        self.error_type: str | None = None
        self.error_code: str | None = None
        #: When the first body bytes of a streamed answer went out (``perf_counter``).
        self.first_token: float | None = None
        #: The client's request headers (ASGI byte pairs), for ``CallEvent.request_headers``.
        self.request_headers: Sequence[tuple[bytes, bytes]] = ()
        #: An answer (``http.response.start``) went out: errors can no longer be answered.
        self.responded = False
        self.disconnected = False
        self._receive = receive
        self._left = left
        self._watching = False
        self._send = send
        self._answer = answer
        self._task: asyncio.Task[Any] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._active = False
        self._cut = False
        self._handed = False
        self._emitted = False
        #: Headers every answer carries (``Admission.headers``: ``x-ratelimit-*``).
        self.headers_out: list[tuple[bytes, bytes]] | None = None
        #: The capped deployment whose token counter this call's usage is charged to.
        self.charge_to: str | None = None
        #: ``store_prompts_in_spend_logs``: the request body (faces set it) and the answer.
        self.request_body: bytes | None = None
        self._captured: bytearray | None = (
            bytearray() if getattr(gateway, "capture_bodies", False) else None
        )

    # -- the faces fill these in --------------------------------------------------------------
    def bind(self, call: ChatCall | EmbeddingCall) -> None:
        """Report a routed call: its event fields come from ``call`` from now on."""
        self.call = call
        self.model = call.model
        self.provider = call.route.provider
        self.stream = getattr(call, "stream", False)
        self.region = call.region
        self.deployment = call.deployment.id if call.deployment else None
        self.group = call.deployment.model_name if call.deployment else None
        call.started = self.started
        call.principal = self.principal
        call.client_ip = self.client_ip

    async def admit(self) -> None:
        """Ask every ``outcrop_admit`` whether this routed call may go ahead (before any
        upstream byte); the first refusal (``OutcropError``) ends the call. Headers the
        admitting plugins add (``x-ratelimit-*``) go out on the answer."""
        if not self.gateway.admits:  # nobody asks: no Admission to build
            return
        admission = Admission(
            principal=self.principal or OPEN,
            surface=self.surface,
            path=self.path,
            model=self.model,
            deployment=self.deployment,
            request_id=self.request_id,
            requested=self.requested,
            group=self.group,
        )
        await self.gateway.admit(admission)
        if admission.headers:
            self.headers_out = [
                (k.lower().encode("latin-1"), v.encode("latin-1"))
                for k, v in admission.headers.items()
            ]

    async def send(self, message: Message) -> None:
        """Send an ASGI message to the client (HTTP faces), noting when the answer started."""
        if message["type"] == "http.response.start":
            self.responded = True
            if self.headers_out:
                message = {**message, "headers": [*message["headers"], *self.headers_out]}
        else:
            if self._captured is not None:  # store_prompts_in_spend_logs
                room = CallEvent.CAPTURED_BYTES - len(self._captured)
                if room > 0:
                    self._captured += message.get("body", b"")[:room]
            if not message.get("more_body", False):
                # The event goes out before the answer's last byte: once a client holds the
                # whole answer, its call is accounted (logs, spend, budgets) and nothing else
                # can change.
                self.finish()
            elif self.first_token is None and self.stream and message.get("body"):
                self.first_token = time.perf_counter()  # a streamed answer's first bytes
        assert self._send is not None
        await self._send(message)

    def watch(self) -> None:
        """From now on (the body has been read) a client disconnect cancels the call."""
        if self._receive is None or self._watching or self._task is None:
            return
        self._watching = True
        left = self._left
        if left is not None:  # the server tells: no task needed
            if left.left:
                self._client_left()
            else:
                left.callbacks.append(self._client_left)
            return
        self._watcher = asyncio.get_running_loop().create_task(self._watch(self._receive))

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self._client_left()

    def _client_left(self) -> None:
        if self._emitted:
            return  # the call is over: nothing to cancel
        self.disconnected = True
        if self._active and self._task is not None:
            self._task.cancel()

    def attempts_header(self) -> tuple[bytes, bytes]:
        """``x-outcrop-attempts`` for the answer: how many upstream attempts it took."""
        return _ATTEMPTS, str(len(self.attempts)).encode() if self.attempts else b"1"

    def record(self, exc: BaseException) -> OutcropError:
        """Note what ends the call; returns the error to answer with."""
        if isinstance(exc, OutcropError):
            err = exc
            self.status, self.error = err.status, describe(err)
        elif isinstance(exc, ClientDisconnected) or (
            isinstance(exc, asyncio.CancelledError | GeneratorExit)
            and not self._cut
            and (self.disconnected or self._send is None)
        ):
            err = OutcropError("client disconnected", CLIENT_GONE, code="client_disconnected")
            self.status, self.error = CLIENT_GONE, "client disconnected"
        elif isinstance(exc, asyncio.CancelledError | GeneratorExit):
            err = _shutting_down()
            self.status, self.error = SHUTDOWN, "the gateway is shutting down"
        else:  # a bug in the core or a plugin: answer 500, keep the traceback in the log
            log.error("call_failed", request_id=self.request_id, surface=self.surface, exc_info=exc)
            err = OutcropError(f"internal error: {type(exc).__name__}", 500)
            self.status, self.error = 500, f"{type(exc).__name__}: {exc}"
        self.error_type, self.error_code = err.aws_type, err.code
        return err

    # -- exactly once -------------------------------------------------------------------------
    def finish(self) -> None:
        """Emit the call's ``CallEvent`` (only the first time)."""
        if self._emitted:
            return
        self._emitted = True
        if self._watcher is not None:
            self._watcher.cancel()
        self.gateway.forget(self)
        call = self.call
        upstream_s = 0.0
        if call is not None:
            self.model, self.usage, self.cost = call.model, call.usage, call.cost
            upstream_s = call.upstream_seconds
            if self.upstream is None:
                self.upstream = getattr(call, "upstream", None)
        up = self.upstream
        if up is not None:
            up.close()  # whatever ended the call, its upstream connection ends with it
            upstream_s = up.waited
        if self.routed is not None:
            self.gateway.router.finished(self.routed, self.usage)
        if self.charge_to is not None and self.usage is not None:  # a capped deployment's tpm
            used = self.usage.prompt_tokens + self.usage.completion_tokens
            self.gateway.counters.finish(self.request_id, tokens=[(self.charge_to, used)])
        self.gateway.after_call(
            CallEvent(
                request_id=self.request_id,
                surface=self.surface,
                route=self.route,
                model=self.model,
                deployment=self.deployment,
                provider=self.provider,
                status=self.status,
                stream=self.stream,
                latency_s=time.perf_counter() - self.started,
                upstream_latency_s=upstream_s,
                usage=self.usage,
                cost=self.cost,
                error=self.error,
                region=self.region,
                extra=self.extra,
                principal=self.principal,
                client_ip=self.client_ip,
                user_agent=self.user_agent,
                attempts=tuple(self.attempts) if self.attempts else (),
                error_type=self.error_type,
                error_code=self.error_code,
                first_token_s=(
                    None if self.first_token is None else self.first_token - self.started
                ),
                request_headers=self.request_headers,
                finish_reason=getattr(call, "finish_reason", None),
                output_text=getattr(call, "output_text", None),
                request_body=(
                    self.request_body[: CallEvent.CAPTURED_BYTES]
                    if self._captured is not None and self.request_body is not None
                    else None
                ),
                response_body=bytes(self._captured) if self._captured is not None else None,
            )
        )

    def cut(self) -> None:
        """The gateway stops: end this call now with 503 (its task is cancelled if it runs)."""
        self._cut = True
        if self._active and self._task is not None:
            self._task.cancel()
        elif self._handed and not self._emitted:  # a Python-API stream nobody reads right now
            self.record(asyncio.CancelledError())
            up = self.upstream or getattr(self.call, "upstream", None)
            if up is not None:
                up.close()
            self.finish()

    @property
    def running_task(self) -> asyncio.Task[Any] | None:
        """The task working on this call right now, if any."""
        return self._task if self._active else None

    async def __aenter__(self) -> CallLifecycle:
        self._task = asyncio.current_task()
        self._active = True
        self.gateway.track(self)
        current_call.set(self)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        self._active = False
        current_call.set(None)
        if exc is None:
            if not self._handed:
                self.finish()
            return False
        err = self.record(exc)
        cancelled = isinstance(exc, asyncio.CancelledError)
        if self._send is None:  # the Python API: the caller gets the error itself
            self.finish()
            if cancelled and self._cut and self._task is not None:
                self._task.uncancel()
                raise err from None
            return False
        answered = False
        try:
            if not self.responded and err.status != CLIENT_GONE:
                answered = await self._answer_with(err)
        finally:
            self.finish()
        if cancelled:
            if self.disconnected and self._task is not None:
                self._task.uncancel()  # the client left: nobody to tell, not an error
                return True
            return False  # a real cancellation (server shutdown) goes on
        # An error after the answer started cannot be answered: re-raising makes the server
        # drop the connection, so the client sees a truncated answer, never a short one.
        return answered or err.status == CLIENT_GONE

    async def _answer_with(self, err: OutcropError) -> bool:
        status, headers, body = (self._answer or _plain)(err, self)
        try:
            await self.send({"type": "http.response.start", "status": status, "headers": headers})
            await self.send({"type": "http.response.body", "body": body, "more_body": False})
        except Exception as exc:  # the connection is gone: nothing left to tell
            log.debug("error_answer_not_sent", request_id=self.request_id, error=repr(exc))
        return True

    # -- the Python API's streams ------------------------------------------------------------
    def hand_off(self, items: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """The call goes on in ``items``, a stream the caller pulls: it ends when that ends."""
        self._handed = True
        return self._pull(items)

    async def _pull(self, items: AsyncIterator[Any]) -> AsyncIterator[Any]:
        try:
            while True:
                if self._emitted:  # cut at shutdown while the caller was not reading
                    raise _shutting_down()
                self._task = asyncio.current_task()
                self._active = True
                try:
                    item = await items.__anext__()
                except StopAsyncIteration:
                    break
                finally:
                    self._active = False
                yield item
        except BaseException as exc:
            if self._emitted:
                raise
            err = self.record(exc)
            self.finish()
            if isinstance(exc, asyncio.CancelledError) and self._cut and self._task is not None:
                self._task.uncancel()
                raise err from None
            raise
        finally:
            close = getattr(items, "aclose", None)
            if close is not None:
                await close()
        self.finish()


def _shutting_down() -> OutcropError:
    return OutcropError(
        "the gateway is shutting down; retry the call",
        SHUTDOWN,
        code="shutting_down",
        aws_type="ServiceUnavailableException",
    )


def _plain(err: OutcropError, life: CallLifecycle) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return err.status, [(b"content-type", b"application/json")], err.openai_body()
