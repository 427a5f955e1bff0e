"""A minimal Redis connection for the counters' per-call scripts (RESP2 over one socket).

redis-py's asyncio client spends about five times the CPU of the round trip itself on each
command (connection-pool checkout, command packing, response callbacks; measured with
``bench/inprocess.py --compare master,limited,limited-redis``), and the counters send one or
two commands per call. This connection pipelines: each command is written at once and its
reply resolves a future in order, so concurrent calls share the socket without a pool. A
command whose reply nobody awaits (a finished call's charge) may be deferred (``send(...,
delay=)``): it goes out in the same write as the next awaited command, or when the delay ends,
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
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["RespConnection", "RespError"]


class RespError(Exception):
    """An error reply from Redis (``-ERR ...``, ``-NOSCRIPT ...``)."""


def encode(args: tuple[Any, ...]) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


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
        items, at = [], end + 2
        for _ in range(count):
            item, at = _parse(buf, at)
            if item is _INCOMPLETE:
                return _INCOMPLETE, pos
            items.append(item)
        return items, at
    raise ConnectionError(f"Redis sent an unreadable reply ({kind!r})")


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: RespConnection) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        #: (waiter, deadline on the loop's clock) per command sent, in the order sent.
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
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
        if self.deferred:
            self.deferred.append(data)
            data = b"".join(self.deferred)
            self.deferred.clear()
            if self.flush_timer is not None:
                self.flush_timer.cancel()
                self.flush_timer = None
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
                waiter = self.waiting.popleft()[0] if self.waiting else None
                if waiter is None or waiter.done():  # a reply nobody awaits (or timed out)
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
            waiter = self.waiting.popleft()[0]
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)


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
        protocol.waiting.append((waiter, loop.time() + self.timeout))
        if protocol.watchdog is None:
            protocol.watchdog = loop.call_later(self.timeout, self._watch, protocol)
        if delay > 0:
            protocol.deferred.append(encode(args))
            if protocol.flush_timer is None:
                protocol.flush_timer = loop.call_later(delay, protocol.flush)
        else:
            protocol.write(encode(args))
        return waiter

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

    async def execute(self, *args: Any) -> Any:
        """Send one command and return its reply (``RespError`` for an error reply)."""
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

    async def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.flush()  # deferred commands are not lost by closing
            protocol.transport.close()
