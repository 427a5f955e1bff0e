"""HTTP/1.1 for the default server: requests parsed by httptools (llhttp, in C), responses
written directly, the ASGI call made here. It takes the place of hypercorn's ``H11Protocol`` and
``HTTPStream``: h11 is pure Python and, with hypercorn's event objects, cost about four times
what this does per request (docs/performance.md, "HTTP/1.1 on the default server").

What hypercorn with h11 answered is kept, byte for byte (tests/core/test_http1.py): its error
answers, the framing and ``connection`` headers h11 added, the 431 past
``h11_max_incomplete_size``, the 501 to a transfer coding other than chunked, the 505 to HTTP/2
prior knowledge, a bare LF ending a head's line, pipelined requests answered one at a time (the
next is not read until the one before is answered), ``keep_alive_max_requests``. Stricter, on
purpose: llhttp refuses ``Content-Length`` with ``Transfer-Encoding``, repeated lengths, obs-fold
and control bytes in values (docs/server.md lists each). Each body message is written when the
app sends it (the head waits for the first one, as ASGI allows, and leaves in the same write),
and a write waits while the client reads slowly.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from time import time
from typing import Any
from urllib.parse import unquote

import httptools
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.protocol.h11 import H2CProtocolRequiredError, H2ProtocolAssumedError
from hypercorn.utils import UnexpectedMessageError

#: A response header block the app may send: token names, values without CR, LF or other
#: control bytes (h11 refused the same).
_FIELDS = re.compile(rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\x00-\x08\x0a-\x1f\x7f]*\r\n)*")
_PREFACE = b"PRI * HTTP/2.0\r\n\r\n"

# An exchange's states.
_REQUEST, _RESPONSE, _DONE = 0, 1, 2


class _Refused(Exception):
    """The request cannot be served: answered with ``status`` and the connection closed."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Stamp:
    """The ``date`` and ``server`` header lines, made once per second (hypercorn's config makes
    its header list per response)."""

    second = -1
    lines = b""

    @classmethod
    def get(cls, config: Any) -> bytes:
        now = int(time())
        if now != cls.second:
            cls.lines = b"".join(b"%s: %s\r\n" % h for h in config.response_headers("h11"))
            cls.second = now
        return cls.lines


def _error_response(config: Any, status: int, closing: bool = False) -> bytes:
    """hypercorn's answer to a request it refuses, as h11 wrote it (``closing``: the request
    before it had already asked for the close, and h11 moved the header last)."""
    if closing:
        return b"HTTP/1.1 %d \r\ncontent-length: 0\r\n%sConnection: close\r\n\r\n" % (
            status,
            _Stamp.get(config),
        )
    return b"HTTP/1.1 %d \r\ncontent-length: 0\r\nconnection: close\r\n%s\r\n" % (
        status,
        _Stamp.get(config),
    )


def _is_connection(line: bytes) -> bool:
    return line[:11].lower() == b"connection:"


def _drop_unread(put: Any) -> None:
    """Empty the receive queue behind ``put`` (hypercorn's, bounded): the exchange ended before
    its body did, and an app that did not read the body will not now. Else a read waiting on the
    full queue, and the ``http.disconnect`` put after it, would wait for good, holding the
    connection's task and socket."""
    queue = getattr(put, "queue", None) or getattr(put, "__self__", None)
    if isinstance(queue, asyncio.Queue):
        while not queue.empty():
            queue.get_nowait()


class _Request:
    """The h11 request shape hypercorn's h2c upgrade reads (method, target, headers)."""

    def __init__(self, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        self.method, self.target, self.headers = method, target, headers


class Exchange:
    """One request and its response."""

    __slots__ = (
        "app_put",
        "broken",
        "chunked",
        "complete",
        "expect",
        "head",
        "http11",
        "keep_alive",
        "method",
        "protocol",
        "remaining",
        "state",
        "suppress",
    )

    def __init__(self, protocol: H1Protocol, method: bytes, keep_alive: bool) -> None:
        self.protocol = protocol
        self.method = method
        self.keep_alive = keep_alive
        self.http11 = True
        self.expect = False
        self.state = _REQUEST
        self.complete = False  # the request's body has all arrived
        self.app_put: Callable[[Any], Awaitable[None]] | None = None
        self.head = b""  # the response head, written with the first body message
        self.suppress = False
        self.chunked = False
        self.remaining = -1  # bytes the declared Content-Length still expects; -1: none declared
        self.broken = False  # the response cannot be followed by another on this connection

    async def app_send(self, message: Any) -> None:
        protocol = self.protocol
        if protocol.stream is not self:
            return  # the client left, or the connection failed: nowhere to write
        if message is None:  # the app returned
            if self.state == _REQUEST:
                self.state = _DONE
                await protocol.write(_error_response(protocol.config, 500))
                self.keep_alive = False
                await protocol.finish(self)
            elif self.state == _RESPONSE:
                self.broken = True  # the app ended its response early: the body is cut
                if self.head:  # as hypercorn, which wrote the head when the app started it
                    await protocol.write(self.head)
                await protocol.finish(self)
            return
        kind = message["type"]
        if kind == "http.response.body" and self.state == _RESPONSE:
            await self._body(message.get("body", b""), message.get("more_body", False))
        elif kind == "http.response.start" and self.state == _REQUEST:
            self.head = self._start(int(message["status"]), message.get("headers", ()))
            self.state = _RESPONSE
        else:
            raise UnexpectedMessageError(self.state, kind)  # type: ignore[arg-type]

    def _start(self, status: int, headers: Any) -> bytes:
        """The response head for ``status`` and the app's ``headers``, framed and ordered as h11
        wrote it: the app's headers, date and server, then the framing and ``connection``
        headers h11 added."""
        fields = []
        length = None
        connection: list[bytes] = []
        for name, value in headers:
            lowered = name.lower()
            if lowered == b"content-length":
                length = bytes(value).strip()
            elif lowered == b"transfer-encoding":
                continue  # the framing is chosen here, as h11 chose it
            elif lowered == b"connection":
                connection.extend(t.strip().lower() for t in bytes(value).split(b",") if t.strip())
            fields.append(b"%s: %s\r\n" % (name, value))
        block = b"".join(fields)
        if block.count(b"\n") != len(fields) or _FIELDS.fullmatch(block) is None:
            raise ValueError(f"invalid response header in {block!r}")
        protocol = self.protocol
        no_body = status in (204, 304) or status < 200
        self.suppress = no_body or self.method == b"HEAD"
        if length is not None and not no_body:
            if not length.isdigit():
                raise ValueError(f"invalid content-length {length!r}")
            if not self.suppress:
                self.remaining = int(length)
        block += _Stamp.get(protocol.config)
        if protocol.requests >= protocol.config.keep_alive_max_requests:
            block += b"connection: close\r\n"  # hypercorn's, in this place
            connection.append(b"close")
        need_close = False
        if not no_body and length is None:
            if self.http11:
                block += b"Transfer-Encoding: chunked\r\n"
                self.chunked = not self.suppress
            elif self.method != b"HEAD":
                need_close = True  # HTTP/1.0 without a length: the close ends the body
        if not self.keep_alive or need_close:
            # h11 rewrote the connection header when the request or the framing needs a close
            if connection:
                block = b"".join(f for f in block.splitlines(True) if not _is_connection(f))
            tokens = set(connection)
            tokens.discard(b"keep-alive")
            tokens.add(b"close")
            block += b"".join(b"Connection: %s\r\n" % t for t in sorted(tokens))
            self.keep_alive = False
        elif b"close" in connection:
            self.keep_alive = False
        return b"HTTP/1.1 %d \r\n%s\r\n" % (status, block)

    async def _body(self, body: bytes, more: bool) -> None:
        out = self.head
        self.head = b""
        if body and not self.suppress:
            if self.chunked:
                out += b"%x\r\n%s\r\n" % (len(body), body)
            else:
                if self.remaining >= 0:
                    if len(body) > self.remaining:
                        self.broken = True
                        raise RuntimeError("Too much data for declared Content-Length")
                    self.remaining -= len(body)
                out += body
        if not more:
            self.state = _DONE
            if self.chunked:
                out += b"0\r\n\r\n"
            if self.remaining > 0:
                self.broken = True
        if out:
            await self.protocol.write(out)
        if not more:
            await self.protocol.finish(self)
            if self.remaining > 0:
                raise RuntimeError("Too little data for declared Content-Length")


class H1Protocol:
    """hypercorn's protocol interface (``initiate``, ``handle(event)``; events out through
    ``send``) for HTTP/1.1 on one connection. ``stream`` is the exchange in progress (``None``:
    waiting for a request head)."""

    def __init__(
        self,
        app: Any,
        config: Any,
        context: Any,
        task_group: Any,
        connection_state: Any,
        ssl: bool,
        client: Any,
        server: Any,
        send: Callable[[Event], Awaitable[None]],
        *,
        http2: bool,
        write: Callable[[bytes], Awaitable[None]] | None = None,
        set_idle: Callable[[bool], None] | None = None,
    ) -> None:
        self.app, self.config, self.context, self.task_group = app, config, context, task_group
        self.connection_state = connection_state
        self.client, self.server, self.send, self.http2 = client, server, send, http2
        self.scheme = "https" if ssl else "http"
        #: Writes bytes to the client (the connection's own writer when it gave one).
        self.write: Callable[[bytes], Awaitable[None]] = write or self._send_raw
        #: Tells the connection a request began (``False``) or it went idle (``True``): what
        #: hypercorn's ``Updated`` event carries, called directly when the connection allows.
        self._set_idle = set_idle
        self.stream: Exchange | None = None
        self.requests = 0  # requests begun on this connection (hypercorn's keep_alive_requests)
        self.closed = False
        self._parser = self._new_parser()
        # What the parser found in the data handed to it, in order: an Exchange followed by its
        # (target, headers, version), body bytes, None (a request's end).
        self._found: list[Any] = []
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._in_head = False
        self._head_bytes = 0  # bytes of the unfinished head received so far
        self._body_bytes = 0  # body bytes found in the current read
        # bytes read since the parser last found anything, outside a head: chunk extensions
        # and trailers (httptools keeps a trailer's value whole until its line ends)
        self._unfound_bytes = 0
        self._first_bytes: bytes | None = b""  # kept until the first head: HTTP/2's preface
        # A request after which llhttp stops (Connection: upgrade, CONNECT): the framing line
        # of the body that follows it, if any, and whether it asks for h2c.
        self._upgrade_body: bytes | None = None
        self._skip_head = False
        self._h2c: Exchange | None = None
        self._h2c_rest = b""
        self._turn: asyncio.Future[None] | None = None
        self._bare_lf = False  # the last parse error was about a line's end

    def _new_parser(self) -> Any:
        parser = httptools.HttpRequestParser(self)
        parser.set_dangerous_leniencies(lenient_optional_cr_before_lf=True)  # h11 took a bare LF
        return parser

    async def initiate(self) -> None:
        pass

    # -- reading ---------------------------------------------------------------------------

    async def handle(self, event: Event) -> None:
        if isinstance(event, RawData):
            await self._received(event.data)
        elif isinstance(event, Closed):
            await self._lost()

    async def _received(self, data: bytes) -> None:
        if self.closed:
            return
        if self._first_bytes is not None:
            self._first_bytes += data
        was_in_head = self._in_head
        self._body_bytes = 0
        refused = self._feed(data)
        if not was_in_head and not self._found:
            if refused == 400 and self._bare_lf:
                refused = self._feed_crlf(data)
            elif refused is None and self._in_head and b"\n\n" in data:
                # a head of a request line alone ended by bare LFs: llhttp, lenient on the
                # line's end, then waits on the empty line as a header's start
                refused = self._feed_crlf(data)
        if refused is None and self._in_head:
            if was_in_head:
                self._head_bytes += len(data)
            else:
                self._head_bytes = self._head_part(data)
            if self._head_bytes > self.config.h11_max_incomplete_size:
                refused = 431
        elif refused is None and not self._found:
            self._unfound_bytes += len(data)
            if self._unfound_bytes > self.config.h11_max_incomplete_size:
                refused = 431  # h11's answer to a trailer or chunk line past its buffer
        found, self._found = self._found, []
        if found:
            self._unfound_bytes = 0
            await self._deliver(found)
        if refused is not None and not self.closed:
            await self._refuse(refused)

    def _feed(self, data: bytes) -> int | None:
        """Parse ``data``; the status to refuse the connection with, or ``None``."""
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            return self._upgraded(data[upgrade.args[0] :])
        except httptools.HttpParserCallbackError as error:
            cause = error.__context__
            return cause.status if isinstance(cause, _Refused) else 400
        except httptools.HttpParserError as error:
            message = str(error)
            if "PRI" in message:  # HTTP/2 prior knowledge
                if self.http2 and self._first_bytes is not None:
                    raise H2ProtocolAssumedError(
                        _PREFACE + self._first_bytes.partition(b"\r\n\r\n")[2]
                    ) from None
                return 505
            if "Transfer-Encoding" in message and "Content-Length" not in message:
                return 501  # h11's answer to a transfer coding it does not know
            self._bare_lf = "LF" in message or "CR" in message
            return 400
        return None

    def _feed_crlf(self, data: bytes) -> int | None:
        """A head whose lines end in a bare LF, which h11 took (RFC 9112 allows it) and llhttp
        does not: parse it again with CRLF line ends, when the whole head is in ``data`` (a
        bare CR is still refused)."""
        self._bare_lf = False
        end = data.find(b"\n\n")
        end_crlf = data.find(b"\n\r\n")
        if end_crlf != -1 and (end == -1 or end_crlf < end):
            end, after = end_crlf, end_crlf + 3
        elif end != -1:
            after = end + 2
        else:
            return 400
        head = data[:end].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        self._parser = self._new_parser()
        self._in_head = False
        return self._feed(head + b"\r\n\r\n" + data[after:])

    def _upgraded(self, rest: bytes) -> int | None:
        """llhttp stops after a request with ``Connection: upgrade`` (or a CONNECT), taking what
        follows for another protocol's bytes: the request is served as HTTP/1.1 (h2c when
        HTTP/2 is on and it has no body) and what follows is parsed on."""
        self._parser = self._new_parser()
        if self._h2c is not None:
            self._h2c_rest = rest
            return None
        framing, self._upgrade_body = self._upgrade_body, None
        if framing is not None:
            # The request's body follows its head: parse it behind a head of the same framing
            # whose events are skipped.
            self._skip_head = True
            rest = b"POST / HTTP/1.1\r\n%s\r\n\r\n%s" % (framing, rest)
        return self._feed(rest) if rest else None

    def _head_part(self, data: bytes) -> int:
        """The bytes of ``data`` that belong to the head still unfinished at its end: what is
        left once this read's body bytes and completed heads (counted a little short) are
        taken out."""
        size = len(data) - self._body_bytes
        if size > self.config.h11_max_incomplete_size:
            for item in self._found:
                if type(item) is tuple:
                    url, headers, _ = item
                    size -= len(url) + 12 + sum(len(n) + len(v) + 3 for n, v in headers)
        return size

    # -- parser callbacks (httptools calls these during feed_data) ----------------------------

    def on_message_begin(self) -> None:
        self._in_head = True
        self._url = b""
        self._headers = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._in_head:  # trailers are dropped, as h11 dropped them
            self._headers.append((name.lower(), value.rstrip(b" \t")))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        if self._skip_head:
            self._skip_head = False
            return
        self._first_bytes = None
        parser = self._parser
        version = parser.get_http_version()
        if version != "1.1" and version != "1.0":
            raise _Refused(400)
        hosts = codings = 0
        expect = h2c = False
        length = b""
        for name, value in self._headers:
            if name == b"host":
                hosts += 1
            elif name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                codings += 1
                if value.lower() != b"chunked":
                    raise _Refused(501)
            elif name == b"expect":
                expect = value.lower() == b"100-continue"
            elif name == b"upgrade":
                h2c = value.lower() == b"h2c"
        if codings > 1:
            raise _Refused(501)
        if hosts > 1 or (hosts == 0 and version == "1.1"):
            raise _Refused(400)
        http11 = version == "1.1"
        exchange = Exchange(self, parser.get_method(), http11 and parser.should_keep_alive())
        exchange.http11 = http11
        exchange.expect = expect and http11
        self._found.append(exchange)
        self._found.append((self._url, self._headers, version))
        if parser.should_upgrade():
            if codings:
                self._upgrade_body = b"transfer-encoding: chunked"
            elif length and int(length):
                self._upgrade_body = b"content-length: " + length
            elif h2c and self.http2 and not length:
                self._h2c = exchange

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        self._found.append(body)

    def on_message_complete(self) -> None:
        if self._upgrade_body is None:  # else the request's body is still to come
            self._found.append(None)

    # -- serving ---------------------------------------------------------------------------

    async def _deliver(self, found: list[Any]) -> None:
        """Hand what was read to the exchanges, in order; a request waits until the one before
        it has been answered (h11 paused the same way)."""
        body: list[bytes] = []
        i, n = 0, len(found)
        while i < n and not self.closed:
            item = found[i]
            i += 1
            if item is None:  # the request's end: its body, all of it
                stream = self.stream
                if stream is not None and not stream.complete:
                    stream.complete = True
                    if stream.app_put is not None:
                        data = body[0] if len(body) == 1 else b"".join(body)
                        await stream.app_put(
                            {"type": "http.request", "body": data, "more_body": False}
                        )
                body = []
            elif type(item) is bytes:
                body.append(item)
            else:
                url, headers, version = found[i]
                i += 1
                while self.stream is not None and not self.closed:
                    await self._wait_turn()
                if self.closed:
                    return
                await self._begin(item, url, headers, version)
        stream = self.stream
        if body and stream is not None and stream.app_put is not None and not self.closed:
            data = body[0] if len(body) == 1 else b"".join(body)
            await stream.app_put({"type": "http.request", "body": data, "more_body": True})

    async def _wait_turn(self) -> None:
        self._turn = asyncio.get_running_loop().create_future()
        try:
            await self._turn
        finally:
            self._turn = None

    def _next_turn(self) -> None:
        if self._turn is not None and not self._turn.done():
            self._turn.set_result(None)

    async def _begin(
        self, exchange: Exchange, url: bytes, headers: list[tuple[bytes, bytes]], version: str
    ) -> None:
        if self._set_idle is not None:
            self._set_idle(False)
        else:
            await self.send(Updated(idle=False))
        if exchange is self._h2c:
            await self.write(
                b"HTTP/1.1 101 \r\n%sconnection: upgrade\r\nupgrade: h2c\r\n\r\n"
                % _Stamp.get(self.config)
            )
            request = _Request(exchange.method, url, headers)
            raise H2CProtocolRequiredError(self._h2c_rest, request)  # type: ignore[arg-type]
        self.stream = exchange
        self.requests += 1
        if self.config.server_names and not self._named(headers):
            exchange.state = _DONE
            exchange.keep_alive = False
            await self.write(_error_response(self.config, 404))
            await self.finish(exchange)
            return
        path, _, query = url.partition(b"?")
        scope = {
            "type": "http",
            "http_version": version,
            "asgi": {"spec_version": "2.1", "version": "3.0"},
            "method": exchange.method.decode("ascii"),
            "scheme": self.scheme,
            "path": unquote(path.decode("ascii")),
            "raw_path": path,
            "query_string": query,
            "root_path": self.config.root_path,
            "headers": headers,
            "client": self.client,
            "server": self.server,
            "state": self.connection_state.copy(),
            "extensions": {},
        }
        exchange.app_put = await self.task_group.spawn_app(
            self.app, self.config, scope, exchange.app_send
        )
        if self.context.max_requests is not None:
            await self.context.mark_request()
        if exchange.expect and exchange.state == _REQUEST:
            await self.write(b"HTTP/1.1 100 \r\n%s\r\n" % _Stamp.get(self.config))

    def _named(self, headers: list[tuple[bytes, bytes]]) -> bool:
        host = next((v for n, v in headers if n == b"host"), b"")
        return host.decode("latin-1") in self.config.server_names

    async def _send_raw(self, data: bytes) -> None:
        await self.send(RawData(data=data))

    async def finish(self, exchange: Exchange) -> None:
        """The response has been sent: wait for the next request, or close the connection."""
        if self.stream is not exchange:
            return
        self.stream = None
        if exchange.app_put is not None:
            if not exchange.complete:
                _drop_unread(exchange.app_put)
            await exchange.app_put({"type": "http.disconnect"})
        if (
            exchange.keep_alive
            and exchange.complete
            and not exchange.broken
            and not self.closed
            and not self.context.terminated.is_set()
        ):
            if self._set_idle is not None:
                self._set_idle(True)
            else:
                await self.send(Updated(idle=True))
        elif not self.closed:
            self.closed = True
            await self.send(Closed())
        self._next_turn()

    async def _refuse(self, status: int) -> None:
        """A request that cannot be served: answered (unless a response began) and closed."""
        stream = self.stream
        if stream is None or stream.state == _REQUEST:
            closing = stream is not None and not stream.keep_alive
            await self.write(_error_response(self.config, status, closing))
        self.closed = True
        await self.send(Closed())
        self._next_turn()

    async def _lost(self) -> None:
        """The connection ended: the exchange in progress learns that its client left."""
        self.closed = True
        stream, self.stream = self.stream, None
        self._next_turn()
        if stream is not None and stream.app_put is not None:
            if not stream.complete:
                _drop_unread(stream.app_put)
            await stream.app_put({"type": "http.disconnect"})
