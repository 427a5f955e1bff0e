"""One upstream HTTP/1.1 connection: the request's bytes out, the response's framing in.

The response is parsed as it arrives (``data_received``), strictly: CRLF line endings only, no
header folding, no whitespace in header names, ``Content-Length`` digits only (repeats must
agree), ``Transfer-Encoding`` ``chunked`` only and never together with ``Content-Length``. Any of
those is a ``BadResponse`` and the connection is never reused (response splitting and
smuggling defences). Body bytes are kept as the chunks that came off the socket, for one reader
(``take``/``wait``); the framing (``Content-Length``, chunked with trailers, or until the server
closes) decides where the body ends. Interim 1xx answers are skipped; HEAD, 204 and 304 have no
body whatever their headers say.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

#: The most a response head (status line and headers) may take.
MAX_HEAD = 64 * 1024
#: The longest chunk-size line, and the most trailer bytes, of a chunked body.
MAX_CHUNK_LINE = 4096
MAX_TRAILERS = 64 * 1024
#: Body bytes held for the reader before the socket stops being read (flow control).
HIGH_WATER = 1024 * 1024

_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _UNTIL_CLOSE, _DONE = range(8)
_NO_BODY_STATUS = (204, 304)


class BadResponse(Exception):
    """The upstream's bytes are not a valid HTTP/1.1 response (the connection is dropped)."""


class Disconnected(Exception):
    """The upstream closed the connection before the response was complete."""


class Connection(asyncio.Protocol):
    """A keep-alive connection to one origin, serving one request at a time.

    Per request: ``start(head_only)``, ``write``, then ``wait`` until ``head`` (or ``error``);
    the body comes from ``take`` until ``done``. ``reusable`` says whether the pool may hand
    it out again once the body was read to its end.
    """

    __slots__ = (
        "_buf",
        "_buffered",
        "_deadline",
        "_head_only",
        "_left",
        "_loop",
        "_on_lost",
        "_paused",
        "_state",
        "_timeout",
        "_timer",
        "_timer_at",
        "_trailer_bytes",
        "_waiter",
        "chunks",
        "closed",
        "done",
        "error",
        "head",
        "idle_since",
        "keep_alive",
        "key",
        "received",
        "transport",
        "uses",
    )

    def __init__(
        self,
        key: tuple[str, str, int],
        loop: asyncio.AbstractEventLoop,
        on_lost: Callable[[Connection], None],
    ) -> None:
        self.key = key
        self._loop = loop
        self._on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self.closed = False
        #: Requests sent on this connection so far (more than 1: it came from the pool).
        self.uses = 0
        self.idle_since = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._deadline = 0.0
        self._timeout: float | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self.start(False)

    # -- per request ------------------------------------------------------------------------
    def start(self, head_only: bool) -> None:
        """Get ready for the next response (``head_only``: it answers a HEAD request)."""
        self._head_only = head_only
        self._state = _HEAD
        self._buf = b""
        self._left = 0
        self._trailer_bytes = 0
        self._buffered = 0
        #: (HTTP minor version, status, raw header pairs) once the head has arrived.
        self.head: tuple[int, int, list[tuple[bytes, bytes]]] | None = None
        self.chunks: list[bytes] = []
        self.done = False
        self.error: BaseException | None = None
        self.received = False
        self.keep_alive = True
        self.uses += 1

    def write(self, data: bytes, read_timeout: float | None) -> None:
        assert self.transport is not None
        self._timeout = read_timeout
        self.transport.write(data)

    @property
    def reusable(self) -> bool:
        return self.done and self.keep_alive and not self.closed and self.error is None

    def take(self) -> list[bytes]:
        """The body chunks received so far (the reader owns them now)."""
        chunks = self.chunks
        self.chunks = []
        self._buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return chunks

    async def wait(self) -> None:
        """Until more bytes (or the end, or an error) arrived; ``TimeoutError`` after the read
        timeout without a byte (the connection is closed then)."""
        waiter = self._loop.create_future()
        self._waiter = waiter
        timeout = self._timeout
        if timeout is not None:
            # One timer per request, moved only when it fires early: a wait costs no timer.
            self._deadline = deadline = self._loop.time() + timeout
            if self._timer is None:
                self._timer_at = deadline
                self._timer = self._loop.call_at(deadline, self._check_timeout)
        try:
            await waiter
        finally:
            self._waiter = None

    def stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        self.keep_alive = False
        self.stop_timer()
        if self.transport is not None and not self.closed:
            self.transport.close()

    def _check_timeout(self) -> None:
        self._timer = None
        if self._waiter is None:
            return  # nobody waits: the next wait arms it again
        if self._deadline > self._timer_at:
            self._timer_at = self._deadline
            self._timer = self._loop.call_at(self._deadline, self._check_timeout)
            return
        self._fail(TimeoutError("no byte from upstream within the read timeout"))

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: BaseException) -> None:
        if self.error is None and not self.done:
            self.error = error
        self.keep_alive = False
        if self.transport is not None and not self.closed:
            self.transport.close()
        self._wake()

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.stop_timer()
        if self._state == _UNTIL_CLOSE and exc is None:
            self._complete()  # the server's close ends a body without a length
        elif not self.done and self.error is None:
            self.error = Disconnected(f"{type(exc).__name__}: {exc}" if exc else "closed")
        self._wake()
        self._on_lost(self)

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self._feed(data)
        except BadResponse as exc:
            self._fail(exc)
            return
        if self._buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost decides what the end means

    # -- the response parser ----------------------------------------------------------------
    def _push(self, data: bytes) -> None:
        self.chunks.append(data)
        self._buffered += len(data)

    def _complete(self) -> None:
        self._state = _DONE
        self.done = True
        self.stop_timer()

    def _feed(self, data: bytes) -> None:
        if self._buf:
            data = self._buf + data
            self._buf = b""
        pos = 0
        end = len(data)
        while pos < end:
            state = self._state
            if state in (_LENGTH, _CHUNK_DATA):
                left = self._left
                if end - pos < left:
                    self._push(data[pos:] if pos else data)
                    self._left = left - (end - pos)
                    return
                self._push(data[pos : pos + left])
                pos += left
                if state == _LENGTH:
                    self._complete()
                else:
                    self._state = _CHUNK_END
            elif state == _HEAD:
                stop = data.find(b"\r\n\r\n", pos)
                if stop < 0:
                    if end - pos > MAX_HEAD:
                        raise BadResponse("response head too large")
                    self._buf = data[pos:]
                    return
                if stop - pos > MAX_HEAD:
                    raise BadResponse("response head too large")
                self._parse_head(data[pos:stop])
                pos = stop + 4
            elif state == _CHUNK_SIZE:
                eol = data.find(b"\r\n", pos)
                if eol < 0:
                    if end - pos > MAX_CHUNK_LINE:
                        raise BadResponse("chunk size line too long")
                    self._buf = data[pos:]
                    return
                size = _chunk_size(data[pos:eol])
                pos = eol + 2
                if not size:
                    self._state = _TRAILERS
                    continue
                stop = pos + size
                if stop + 2 <= end:  # the whole chunk and its CRLF are here: one step
                    if data[stop : stop + 2] != b"\r\n":
                        raise BadResponse("chunk not followed by CRLF")
                    self._push(data[pos:stop])
                    pos = stop + 2
                    continue
                self._left = size
                self._state = _CHUNK_DATA
            elif state == _CHUNK_END:
                if end - pos < 2:
                    self._buf = data[pos:]
                    return
                if data[pos : pos + 2] != b"\r\n":
                    raise BadResponse("chunk not followed by CRLF")
                pos += 2
                self._state = _CHUNK_SIZE
            elif state == _TRAILERS:
                eol = data.find(b"\r\n", pos)
                if eol < 0:
                    if self._trailer_bytes + end - pos > MAX_TRAILERS:
                        raise BadResponse("trailers too large")
                    self._buf = data[pos:]
                    return
                self._trailer_bytes += eol + 2 - pos
                if self._trailer_bytes > MAX_TRAILERS:
                    raise BadResponse("trailers too large")
                if eol == pos:
                    self._complete()
                elif b"\r" in data[pos:eol] or b"\n" in data[pos:eol]:
                    raise BadResponse("bad trailer line")
                pos = eol + 2
            elif state == _UNTIL_CLOSE:
                self._push(data[pos:] if pos else data)
                return
            else:  # _DONE: bytes after the end of the response (HTTP/1.1 has no pipelining)
                self.keep_alive = False
                return

    def _parse_head(self, head: bytes) -> None:
        crlf = head.count(b"\r\n")
        if head.count(b"\n") != crlf or head.count(b"\r") != crlf or b"\x00" in head:
            raise BadResponse("bare CR or LF, or NUL, in the response head")
        lines = head.split(b"\r\n")
        line = lines[0]
        if (
            len(line) < 12
            or line[:7] != b"HTTP/1."
            or line[7:8] not in (b"0", b"1")
            or line[8:9] != b" "
            or not line[9:12].isdigit()
            or (len(line) > 12 and line[12:13] != b" ")
        ):
            raise BadResponse(f"bad status line {line[:64]!r}")
        status = int(line[9:12])
        if status < 100:
            raise BadResponse(f"bad status {status}")
        if status < 200:
            if status == 101:
                raise BadResponse("101 Switching Protocols was never asked for")
            return  # an interim answer (100 Continue, 103 Early Hints): the real one follows
        minor = 1 if line[7:8] == b"1" else 0
        raw: list[tuple[bytes, bytes]] = []
        length: bytes | None = None
        chunked = False
        keep_alive = minor == 1
        for field in lines[1:]:
            name, colon, value = field.partition(b":")
            if not colon or not name or b" " in name or b"\t" in name:
                raise BadResponse(f"bad header line {field[:64]!r}")
            value = value.strip(b" \t")
            raw.append((name, value))
            lname = name.lower()
            if lname == b"content-length":
                if not value.isdigit() or (length is not None and value != length):
                    raise BadResponse("invalid Content-Length")
                length = value
            elif lname == b"transfer-encoding":
                if chunked or value.lower() != b"chunked":
                    raise BadResponse(f"unsupported Transfer-Encoding {value[:32]!r}")
                chunked = True
            elif lname == b"connection" and b"close" in value.lower():
                keep_alive = False
        if chunked and length is not None:
            raise BadResponse("both Content-Length and Transfer-Encoding")
        self.head = (minor, status, raw)
        self.keep_alive = keep_alive
        if self._head_only or status in _NO_BODY_STATUS:
            self._complete()
        elif chunked:
            self._state = _CHUNK_SIZE
        elif length is not None:
            self._left = int(length)
            if self._left:
                self._state = _LENGTH
            else:
                self._complete()
        else:
            self._state = _UNTIL_CLOSE
            self.keep_alive = False


def _chunk_size(line: bytes) -> int:
    size = line.partition(b";")[0].strip(b" \t")  # chunk extensions are ignored
    if not size or len(size) > 15 or size.strip(b"0123456789abcdefABCDEF"):
        raise BadResponse(f"bad chunk size {line[:32]!r}")
    return int(size, 16)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
