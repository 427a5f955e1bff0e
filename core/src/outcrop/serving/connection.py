"""One client connection under hypercorn, with the limits hypercorn lacks.

* A request's line and headers must arrive within ``header_timeout`` of their first byte (or of
  the connection opening): slowloris connections are closed.
* The keep-alive timer is a loop timer armed when the connection goes idle and cancelled when a
  request arrives (hypercorn stopped and restarted a task per request, with a ``wait_for``
  inside: about 3 % of a worker's CPU). One task per connection closes it when the worker
  terminates while it is idle, as hypercorn's idle task did.
* A connection whose client sent EOF is closed at once (hypercorn keeps it until the keep-alive
  timer ends, so idle half-closed sockets piled up in CLOSE_WAIT).
* HTTP/2 only when enabled: otherwise ``Upgrade: h2c`` is ignored and prior knowledge
  (``PRI * HTTP/2.0``) is refused with a 505. When enabled, a connection whose client resets
  more than ``H2_MAX_RESETS`` streams in ``H2_RESET_WINDOW`` seconds is closed
  (ENHANCE_YOUR_CALM), and a stream opened and reset in the same read never reaches the app.

* HTTP/1.1 is Outcrop's own protocol class (http1.py: httptools' C parser in place of h11).

Built on hypercorn's own classes (``TCPServer``, ``H2Protocol``, the task group, lifespan); the
supported hypercorn range is pinned in core/pyproject.toml and ``tests/security`` exercise every
path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from ssl import SSLError
from typing import Any

import h2.errors
import h2.events
from hypercorn.asyncio.task_group import TaskGroup
from hypercorn.asyncio.tcp_server import MAX_RECV, TCPServer
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.protocol import ProtocolWrapper
from hypercorn.protocol.h2 import H2Protocol
from hypercorn.protocol.h11 import H2CProtocolRequiredError, H2ProtocolAssumedError
from hypercorn.typing import ConnectionState
from hypercorn.utils import parse_socket_addr

from ..lifecycle import CLIENT_LEFT, ClientLeft
from ..logs import get_logger
from .http1 import H1Protocol
from .options import H2_MAX_RESETS, H2_RESET_WINDOW, ServerOptions

log = get_logger("outcrop.server")


class HypercornConfig(Config):
    """hypercorn's ``Config`` whose response headers (``date``, ``server``) are made once per
    second and protocol: hypercorn formats the date again for every response. At module level:
    ``serve --workers N`` pickles the config to its workers."""

    _made: tuple[int, str] = (-1, "")
    _headers: list[tuple[bytes, bytes]] = []

    def response_headers(self, protocol: str) -> list[tuple[bytes, bytes]]:
        key = (int(time.time()), protocol)
        if key != self._made:
            self._headers = super().response_headers(protocol)
            self._made = key
        return list(self._headers)


class _AppTasks(TaskGroup):
    """hypercorn's task group, whose requests carry the ``outcrop.client_left`` extension: the
    request's ``http.disconnect`` also tells the call directly, so a call needs no task of its
    own waiting on ``receive()`` to learn that its client left."""

    async def spawn_app(self, app: Any, config: Any, scope: Any, send: Any) -> Any:
        left = ClientLeft()
        extensions = scope.get("extensions")
        if extensions is None:
            extensions = scope["extensions"] = {}
        extensions[CLIENT_LEFT] = left
        return _Receiving(await super().spawn_app(app, config, scope, send), left)


class _Receiving:
    """Puts a message in an app's receive queue (hypercorn's, bounded by
    ``max_app_queue_size``), telling the call when its client left. ``queue`` lets HTTP/1.1
    drop a body the app will never read (http1.py ``_drop_unread``)."""

    __slots__ = ("left", "put", "queue")

    def __init__(self, put: Callable[[Any], Awaitable[None]], left: ClientLeft) -> None:
        self.put, self.left = put, left
        self.queue = getattr(put, "__self__", None)

    async def __call__(self, message: Any) -> None:
        if message["type"] == "http.disconnect":
            self.left.tell()
        await self.put(message)


class _GuardedH2(H2Protocol):
    """hypercorn's HTTP/2 with a budget of client stream resets per connection."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._resets: list[float] = []

    async def _handle_events(self, events: list[h2.events.Event]) -> None:
        reset = {
            e.stream_id for e in events if isinstance(e, h2.events.StreamReset) and e.remote_reset
        }
        if reset:
            now = time.monotonic()
            self._resets = [t for t in self._resets if now - t < H2_RESET_WINDOW]
            self._resets.extend(now for _ in reset)
            if len(self._resets) > H2_MAX_RESETS:
                log.warning(
                    "h2_connection_closed",
                    reason="too many stream resets",
                    resets=len(self._resets),
                    window_s=H2_RESET_WINDOW,
                    client=self.client,
                )
                self.connection.close_connection(error_code=h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
                await self._flush()
                await self.send(Closed())
                return
            # A stream opened and reset within one read never reaches the app.
            opened = {e.stream_id for e in events if isinstance(e, h2.events.RequestReceived)}
            dropped = opened & reset
            if dropped:
                events = [e for e in events if getattr(e, "stream_id", None) not in dropped]
        await super()._handle_events(events)


class _Protocols(ProtocolWrapper):
    """hypercorn's protocol switch, building the classes above."""

    def __init__(
        self,
        app: Any,
        config: Any,
        context: Any,
        task_group: Any,
        state: Any,
        ssl: bool,
        client: Any,
        server: Any,
        send: Any,
        alpn_protocol: str | None,
        http2: bool,
        write: Callable[[bytes], Awaitable[None]],
        set_idle: Callable[[bool], None],
    ) -> None:
        self.app, self.config, self.context, self.task_group = app, config, context, task_group
        self.ssl, self.client, self.server, self.send, self.state = ssl, client, server, send, state
        self._args = (app, config, context, task_group, state, ssl, client, server, send)
        if alpn_protocol == "h2" and http2:
            self.protocol = _GuardedH2(*self._args)
        else:
            h1 = H1Protocol(*self._args, http2=http2, write=write, set_idle=set_idle)
            self.protocol = h1  # type: ignore[assignment]

    async def handle(self, event: Event) -> None:
        try:
            return await self.protocol.handle(event)
        except H2ProtocolAssumedError as error:
            self.protocol = _GuardedH2(*self._args)
            await self.protocol.initiate()
            if error.data != b"":
                return await self.protocol.handle(RawData(data=error.data))
        except H2CProtocolRequiredError as error:
            self.protocol = _GuardedH2(*self._args)
            await self.protocol.initiate(error.headers, error.settings)
            if error.data != b"":
                return await self.protocol.handle(RawData(data=error.data))
        return None


class Connection(TCPServer):
    """hypercorn's ``TCPServer`` (one per accepted socket) with a header deadline and a prompt
    close on EOF."""

    def __init__(
        self,
        app: Any,
        loop: asyncio.AbstractEventLoop,
        config: Any,
        context: Any,
        state: Any,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        options: ServerOptions,
    ) -> None:
        super().__init__(app, loop, config, context, state, reader, writer)
        self.options = options
        #: When the request head being received must be complete; ``None``: no head pending.
        self.head_deadline: float | None = loop.time() + options.header_timeout
        self.idle = True
        self._idle_timer: asyncio.TimerHandle | None = None
        self._terminated_watch: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None

    async def run(self) -> None:  # hypercorn's, building _Protocols
        socket = self.writer.get_extra_info("socket")
        try:
            client = parse_socket_addr(socket.family, socket.getpeername())
            server = parse_socket_addr(socket.family, socket.getsockname())
            ssl_object = self.writer.get_extra_info("ssl_object")
            ssl = ssl_object is not None
            alpn = ssl_object.selected_alpn_protocol() if ssl else "http/1.1"
            async with _AppTasks(self.loop) as task_group:
                self._task_group = task_group
                self.protocol = _Protocols(
                    self.app,
                    self.config,
                    self.context,
                    task_group,
                    ConnectionState(self.state),
                    ssl,
                    client,
                    server,
                    self.protocol_send,
                    alpn,
                    self.options.http2,
                    self.write,
                    self.set_idle,
                )
                await self.protocol.initiate()
                self._terminated_watch = task_group._task_group.create_task(
                    self._close_when_terminated()
                )
                self._went_idle()
                await self._read_data()
        except OSError:
            pass
        finally:
            await self._close()

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, Updated):
            self.set_idle(event.idle)
            return
        await super().protocol_send(event)

    def set_idle(self, idle: bool) -> None:
        """A request head just completed (``False``), or a response ended (``True``)."""
        self.idle = idle
        self.head_deadline = None
        if idle:
            self._went_idle()
        elif self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    async def write(self, data: bytes) -> None:
        """HTTP/1.1's writes: hypercorn's ``RawData`` path without the event object and the
        lock (one exchange at a time writes, each write one call)."""
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, RuntimeError):
            await self.protocol.handle(Closed())

    def _went_idle(self) -> None:
        """Arm the keep-alive timer (or close now: the worker is terminating)."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self.context.terminated.is_set():
            self._close_idle()
        else:
            self._idle_timer = self.loop.call_later(
                self.config.keep_alive_timeout, self._close_idle
            )

    def _close_idle(self) -> None:
        self._idle_timer = None
        if self._closer is None:
            self._closer = self._task_group._task_group.create_task(self._initiate_server_close())

    async def _close_when_terminated(self) -> None:
        await self.context.terminated.wait()
        if self.idle:
            self._close_idle()

    async def _close(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._terminated_watch is not None:
            self._terminated_watch.cancel()
        await super()._close()

    def _awaiting_head(self) -> bool:
        protocol = self.protocol.protocol
        return self.idle and isinstance(protocol, H1Protocol) and protocol.stream is None

    async def _read_data(self) -> None:
        while not self.reader.at_eof():
            timeout = None
            if self.head_deadline is not None:
                timeout = max(self.head_deadline - self.loop.time(), 0.0)
            try:
                data = await asyncio.wait_for(self.reader.read(MAX_RECV), timeout)
            except TimeoutError:
                log.debug(
                    "connection_closed",
                    reason="request headers not received in time",
                    header_timeout=self.options.header_timeout,
                )
                break
            except (ConnectionError, OSError, SSLError):
                break
            if data and self.head_deadline is None and self._awaiting_head():
                self.head_deadline = self.loop.time() + self.options.header_timeout
            await self.protocol.handle(RawData(data))
        await self.protocol.handle(Closed())
        # EOF or a timeout: nothing more will be served on this connection, so close it now
        # rather than when the keep-alive timer ends.
        await self._close()
