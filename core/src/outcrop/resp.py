"""A minimal Redis connection for the counters' per-call scripts (RESP2 over one socket).

redis-py's asyncio client spends about five times the CPU of the round trip itself on each
command (connection-pool checkout, command packing, response callbacks; measured with
``bench/inprocess.py --compare master,limited,limited-redis``), and the counters send one or
two commands per call. This connection pipelines: each command is written at once and its
reply resolves a future in order, so concurrent calls share the socket without a pool. A
command whose reply nobody awaits (a finished call's charge: ``post``, no future, an error
callback) may be deferred (``delay=``): it goes out in the same write as the next awaited
command, or when the delay ends,
so a call's charge and the next call's check cost one system call, not two (a loopback write
costs tens of microseconds on a small VM).

URLs: ``redis://[[user]:password@]host[:port][/db]`` and ``rediss://`` (TLS, the system's CA
store). A lost connection fails the commands in flight (``ConnectionError``) and the next
command reconnects.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["Prepared", "RespConnection", "RespError"]


class RespError(Exception):
    """An error reply from Redis (``-ERR ...``, ``-NOSCRIPT ...``)."""


class Prepared:
    """A command's leading arguments, encoded once (a script's sha, its keys, the arguments that
    do not change from call to call): ``execute(prepared, *rest)`` encodes only ``rest``."""

    __slots__ = ("count", "data")

    def __init__(self, *args: Any) -> None:
        self.count = len(args)
        self.data = b"".join([_bulk(arg) for arg in args])


def _bulk(arg: Any) -> bytes:
    data = arg if type(arg) is bytes else str(arg).encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


def encode(args: tuple[Any, ...]) -> bytes:
    """One command as a RESP array of bulk strings (the first argument may be ``Prepared``)."""
    head = args[0] if args else None
    if type(head) is Prepared:
        rest = args[1:]
        return b"".join(
            [b"*%d\r\n" % (head.count + len(rest)), head.data, *[_bulk(arg) for arg in rest]]
        )
    return b"".join([b"*%d\r\n" % len(args), *[_bulk(arg) for arg in args]])


_INCOMPLETE = object()


def _parse(buf: bytes, pos: int) -> tuple[Any, int]:
    """One reply from ``buf`` at ``pos``: (value, next position), or (``_INCOMPLETE``, pos)."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return _INCOMPLETE, pos
    kind, line = buf[pos : pos + 1], buf[pos + 1 : end]
    if kind == b"+":
        return line, end + 2
    if kind == b":":
        return int(line), end + 2
    if kind == b"-":
        return RespError(line.decode(errors="replace")), end + 2
    if kind == b"$":
        size = int(line)
        if size < 0:
            return None, end + 2
        if len(buf) < end + 2 + size + 2:
            return _INCOMPLETE, pos
        return buf[end + 2 : end + 2 + size], end + 4 + size
    if kind == b"*":
        count = int(line)
        if count < 0:
            return None, end + 2
        items: list[Any] = []
        at = end + 2
        for _ in range(count):  # integers and bulk strings inline (the scripts' replies)
            end = buf.find(b"\r\n", at)
            if end < 0:
                return _INCOMPLETE, pos
            first = buf[at]
            if first == 58:  # ":"
                items.append(int(buf[at + 1 : end]))
                at = end + 2
                continue
            if first == 36:  # "$"
                size = int(buf[at + 1 : end])
                if size >= 0:
                    if len(buf) < end + 4 + size:
                        return _INCOMPLETE, pos
                    items.append(buf[end + 2 : end + 2 + size])
                    at = end + 4 + size
                    continue
            item, at = _parse(buf, at)
            if item is _INCOMPLETE:
                return _INCOMPLETE, pos
            items.append(item)
        return items, at
    raise ConnectionError(f"Redis sent an unreadable reply ({kind!r})")


_Waiting = tuple["asyncio.Future[Any] | None", float, "Callable[[Exception], None] | None"]
_NOBODY: _Waiting = (None, 0.0, None)


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: RespConnection) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        #: (waiter, deadline on the loop's clock, on_error) per command sent, in the order sent;
        #: a command posted without a waiter has ``on_error`` instead (``RespConnection.post``).
        self.waiting: deque[_Waiting] = deque()
        #: One timer per connection watches the oldest command's deadline (a timer per
        #: command cost a heap push and a cancel on every call).
        self.watchdog: asyncio.TimerHandle | None = None
        self.buf = b""
        self.lost: Exception | None = None
        #: Deferred commands, encoded, not written yet (their waiters are in ``waiting``).
        self.deferred: list[bytes] = []
        self.flush_timer: asyncio.TimerHandle | None = None

    def write(self, data: bytes) -> None:
        """Write ``data`` behind the deferred commands (replies come back in this order)."""
        assert self.transport is not None
        if self.deferred:  # the flush timer stays: it finds nothing to write (cheaper than a
            self.deferred.append(data)  # cancel and a new timer on every call)
            data = b"".join(self.deferred)
            self.deferred.clear()
        self.transport.write(data)

    def flush(self) -> None:
        """The deferral ended: write what waits (nothing when the connection is gone)."""
        self.flush_timer = None
        if self.deferred and self.transport is not None and self.lost is None:
            data = b"".join(self.deferred)
            self.deferred.clear()
            self.transport.write(data)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        pos = 0
        try:
            while pos < len(buf):
                value, after = _parse(buf, pos)
                if value is _INCOMPLETE:
                    break
                pos = after
                waiter, _, on_error = self.waiting.popleft() if self.waiting else _NOBODY
                if waiter is None or waiter.done():  # a reply nobody awaits (or timed out)
                    if on_error is not None and isinstance(value, RespError):
                        on_error(value)
                    continue
                if isinstance(value, RespError):
                    waiter.set_exception(value)
                else:
                    waiter.set_result(value)
        except Exception as exc:  # a garbled stream: nothing after it can be trusted
            self.buf = b""
            if self.transport is not None:
                self.transport.close()
            self._fail(ConnectionError(f"Redis reply unreadable: {exc}"))
            return
        self.buf = buf[pos:]

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"connection to Redis lost: {exc or 'closed'}"))

    def _fail(self, exc: Exception) -> None:
        self.lost = exc
        self.deferred.clear()
        if self.flush_timer is not None:
            self.flush_timer.cancel()
            self.flush_timer = None
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        if self.owner._protocol is self:
            self.owner._protocol = None
        while self.waiting:
            waiter, _, on_error = self.waiting.popleft()
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)
            elif on_error is not None:
                on_error(exc)


class RespConnection:
    """One pipelined connection; ``execute`` awaits a reply, ``send`` does not."""

    def __init__(self, url: str, *, timeout: float = 1.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"unsupported Redis URL scheme {parts.scheme!r}: use redis://")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.ssl = ssl.create_default_context() if parts.scheme == "rediss" else None
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        path = parts.path.strip("/")
        self.db = int(path) if path else 0
        self.timeout = timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(lambda: _Protocol(self), self.host, self.port, ssl=self.ssl),
                self.timeout,
            )
        except TimeoutError:
            raise ConnectionError(f"Redis at {self.host}:{self.port}: connect timed out") from None
        setup: list[tuple[Any, ...]] = []
        if self.password is not None:
            setup.append(
                ("AUTH", self.username, self.password) if self.username else ("AUTH", self.password)
            )
        if self.db:
            setup.append(("SELECT", self.db))
        try:
            for command in setup:
                await self._roundtrip(protocol, command)
        except BaseException:  # a wrong password or database: do not keep the socket
            if protocol.transport is not None:
                protocol.transport.close()
            raise
        self._protocol = protocol
        return protocol

    async def _ready(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None:
            return protocol
        if self._connecting is None:  # one connect for every caller waiting on it
            self._connecting = asyncio.ensure_future(self._connect())
            self._connecting.add_done_callback(self._connected)
        return await asyncio.shield(self._connecting)

    def _connected(self, future: asyncio.Future[_Protocol]) -> None:
        self._connecting = None
        if not future.cancelled():
            future.exception()  # retrieved: each waiter raises it

    def _roundtrip(
        self, protocol: _Protocol, args: tuple[Any, ...], delay: float = 0.0
    ) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Any] = loop.create_future()
        if protocol.lost is not None or protocol.transport is None:
            waiter.set_exception(protocol.lost or ConnectionError("not connected to Redis"))
            return waiter
        self._queue(protocol, loop, args, delay, (waiter, loop.time() + self.timeout, None))
        return waiter

    def _queue(
        self,
        protocol: _Protocol,
        loop: asyncio.AbstractEventLoop,
        args: tuple[Any, ...],
        delay: float,
        entry: _Waiting,
    ) -> None:
        protocol.waiting.append(entry)
        if protocol.watchdog is None:
            protocol.watchdog = loop.call_later(self.timeout, self._watch, protocol)
        if delay > 0:
            protocol.deferred.append(encode(args))
            timer, due = protocol.flush_timer, loop.time() + delay
            if timer is None or timer.when() > due:  # a timer left from earlier may do
                if timer is not None:
                    timer.cancel()
                protocol.flush_timer = loop.call_at(due, protocol.flush)
        else:
            protocol.write(encode(args))

    def _watch(self, protocol: _Protocol) -> None:
        """The oldest command still unanswered past its deadline: the replies behind it would
        be out of step, so the connection starts again; else look again at its deadline."""
        protocol.watchdog = None
        if protocol.lost is not None or not protocol.waiting:
            return
        loop = asyncio.get_running_loop()
        deadline = protocol.waiting[0][1]
        if deadline > loop.time():
            protocol.watchdog = loop.call_at(deadline, self._watch, protocol)
            return
        if protocol.transport is not None:
            protocol.transport.abort()
        protocol._fail(TimeoutError(f"Redis did not answer within {self.timeout}s"))

    def execute(self, *args: Any) -> Awaitable[Any]:
        """Send one command; await its reply (``RespError`` for an error reply). Connected, the
        command is written at once and the reply's future returned (no coroutine per call)."""
        protocol = self._protocol
        if protocol is not None:
            return self._roundtrip(protocol, args)
        return self._execute_connecting(args)

    async def _execute_connecting(self, args: tuple[Any, ...]) -> Any:
        protocol = await self._ready()
        return await self._roundtrip(protocol, args)

    def send(self, *args: Any, delay: float = 0.0) -> asyncio.Future[Any]:
        """Send one command without waiting (when connected; else it fails at once): the
        returned future holds its reply for whoever wants to look. With ``delay`` (seconds)
        the command is written with the next awaited one, or after ``delay`` at the latest;
        commands keep their order either way."""
        protocol = self._protocol
        if protocol is None:
            waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            waiter.set_exception(ConnectionError("not connected to Redis"))
            return waiter
        return self._roundtrip(protocol, args, delay)

    def post(self, *args: Any, on_error: Callable[[Exception], None], delay: float = 0.0) -> None:
        """Send one command whose reply nobody awaits (no future): an error reply, a lost
        connection or no connection calls ``on_error`` (later, on the loop; never here).
        ``delay`` as for ``send``."""
        loop = asyncio.get_running_loop()
        protocol = self._protocol
        if protocol is None or protocol.lost is not None or protocol.transport is None:
            lost = (protocol and protocol.lost) or ConnectionError("not connected to Redis")
            loop.call_soon(on_error, lost)
            return
        entry: _Waiting = (None, loop.time() + self.timeout, on_error)
        self._queue(protocol, loop, args, delay, entry)

    async def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.flush()  # deferred commands are not lost by closing
            protocol.transport.close()
