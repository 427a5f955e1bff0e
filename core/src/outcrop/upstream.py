"""The upstream HTTP side: request/response objects and the one pooled client per worker.

The client is Outcrop's own lean HTTP/1.1 client (``outcrop.upstream_http1`` parses the
answers, ``outcrop.upstream_pool`` keeps the connections): one ``transport.write`` per request, the response framed as it arrives,
bodies handed over in the chunks the socket gave. It does only what forwarding to AWS needs, and
costs a fraction of aiohttp's CPU per request (figures in docs/performance.md and
``bench/upstream_clients.py``). What it keeps from aiohttp's behaviour: no headers of its own but
``Host`` and ``Content-Length``; the path sent exactly as given (already percent-encoded, never
re-quoted); no decompression; TLS verified with the system's trust store
(``ssl.create_default_context()``, SNI and hostname check on the URL's host); DNS answers
cached 300 s; at most ``pool_size`` connections; a connection reused only after its response was
read to the end without ``Connection: close``, and never after 15 s idle. A pooled connection
that dies before any byte of the answer is retried once on a new one only for idempotent methods
(RFC 9112 section 9.3.1.1, as aiohttp does): AWS's POSTs are not idempotent in general, so a POST
that may have reached AWS is never sent twice here (the router's ``num_retries`` decides).
"""

from __future__ import annotations

import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    ItemsView,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
    ValuesView,
)
from dataclasses import dataclass, field
from typing import NoReturn

from .errors import OutcropError
from .eventstream import EventStreamDecoder, EventStreamMessage
from .logs import get_logger
from .sigv4_canonical import short_string_cache
from .upstream_http1 import BadResponse, Connection, Disconnected, describe
from .upstream_pool import Origin, Pool

log = get_logger("outcrop.upstream")


@dataclass(slots=True)
class UpstreamRequest:
    """An HTTP request to AWS. ``url`` carries the path exactly as it goes on the wire
    (already percent-encoded); the signer signs these bytes and headers, nothing else."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    service: str = ""
    signing_name: str = ""
    region: str = ""
    #: Per-request overrides of the client's timeouts (a deployment's ``timeout`` /
    #: ``connect_timeout``): seconds without a byte, seconds to connect.
    read_timeout: float | None = None
    connect_timeout: float | None = None

    def fill_in(
        self,
        service: str,
        signing_name: str,
        region: str,
        timeout: float | None,
        connect_timeout: float | None,
    ) -> None:
        """What a plugin left out comes from the call: the route's service and signing name,
        the call's region, the deployment's timeouts."""
        self.service = self.service or service
        self.signing_name = self.signing_name or signing_name
        self.region = self.region or region
        if self.read_timeout is None:
            self.read_timeout = timeout
        if self.connect_timeout is None:
            self.connect_timeout = connect_timeout


#: How much of an upstream error body is read (to find its code and message); the rest is
#: dropped with the connection, never buffered.
MAX_ERROR_BODY = 64 * 1024
#: What ``UpstreamResponse.read`` and ``aiter_lines`` hold at most by default (one answer, one
#: line); the gateway passes ``general_settings.max_response_bytes``.
DEFAULT_MAX_BODY = 64 * 1024 * 1024


class ResponseHeaders(Mapping[str, str]):
    """Response headers, case-insensitive, repeats kept (as aiohttp's ``CIMultiDictProxy``):
    ``[name]``, ``get`` and ``in`` see a name's first value, ``items()`` every pair in the order
    received, names as sent. Bytes are decoded as UTF-8 with ``surrogateescape`` (encode the
    same way to get them back)."""

    __slots__ = ("_first", "_pairs")

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]) -> None:
        self._pairs = [
            (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
            for name, value in raw
        ]
        self._first: dict[str, str] | None = None

    def _index(self) -> dict[str, str]:
        first: dict[str, str] = {}
        for name, value in self._pairs:
            first.setdefault(name.lower(), value)
        self._first = first
        return first

    def __getitem__(self, name: str) -> str:
        return (self._first or self._index())[name.lower()]

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return (self._first or self._index()).get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in (self._first or self._index())

    def getall(self, name: str) -> list[str]:
        """Every value of ``name``, in order (empty when absent)."""
        lname = name.lower()
        return [value for key, value in self._pairs if key.lower() == lname]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def items(self) -> ItemsView[str, str]:
        return _Pairs(self)

    def values(self) -> ValuesView[str]:
        return _Values(self)

    def __repr__(self) -> str:
        return f"ResponseHeaders({self._pairs!r})"


class _Pairs(ItemsView[str, str]):
    __slots__ = ("_pairs",)

    def __init__(self, headers: ResponseHeaders) -> None:
        super().__init__(headers)
        self._pairs = headers._pairs

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._pairs)

    def __contains__(self, item: object) -> bool:
        return item in self._pairs


class _Values(ValuesView[str]):
    __slots__ = ("_pairs",)

    def __init__(self, headers: ResponseHeaders) -> None:
        super().__init__(headers)
        self._pairs = headers._pairs

    def __iter__(self) -> Iterator[str]:
        return (value for _, value in self._pairs)


class UpstreamResponse:
    """A streaming upstream response. Read the body once: ``aiter_bytes``, ``aiter_events``,
    ``aiter_lines``, ``read`` or ``read_up_to``; ``close()`` when done (a response not read to
    its end closes its connection; one read to the end gave it back to the pool already).

    Nothing here holds more than ``max_body`` bytes of it at once: past that, ``read`` and
    ``aiter_lines`` raise a 502 instead of buffering an unbounded answer. Built by
    ``UpstreamClient.send``; ``UpstreamResponse(status, raw_headers, started, body=[...])`` is
    a complete answer held in memory.
    """

    __slots__ = (
        "_body",
        "_conn",
        "_head",
        "_headers",
        "_pool",
        "_raw",
        "before_wait",
        "events_ready",
        "max_body",
        "started",
        "status",
        "waited",
    )

    def __init__(
        self,
        status: int,
        raw_headers: Sequence[tuple[bytes, bytes]],
        started: float,
        max_body: int = DEFAULT_MAX_BODY,
        body: Iterable[bytes] = (),
    ) -> None:
        self.status = status
        self._raw = raw_headers
        self._headers: ResponseHeaders | None = None
        self.started = started
        self.max_body = max_body
        self._head = b""
        self._body = list(body)
        self._conn: Connection | None = None
        self._pool: Pool | None = None
        #: Seconds spent waiting on AWS so far (headers, then each body read): the gateway's
        #: overhead is wall time minus this.
        self.waited: float = time.perf_counter() - started
        #: Event-stream messages already decoded that ``aiter_events`` has not yielded yet
        #: (they came in the same read as the one it just yielded).
        self.events_ready = 0
        #: Awaited before every wait for more body bytes (the chat route sends the SSE frames
        #: it holds back while more events are ready: none waits on the network).
        self.before_wait: Callable[[], Awaitable[None]] | None = None

    @property
    def headers(self) -> ResponseHeaders:
        """The response headers: a case-insensitive ``Mapping`` (see ``ResponseHeaders``)."""
        headers = self._headers
        if headers is None:
            headers = self._headers = ResponseHeaders(self._raw)
        return headers

    @property
    def raw_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """The response headers as received (byte pairs, order and repeats kept), for relays."""
        return tuple(self._raw)

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive from the socket (what arrived together, in one piece)."""
        if self._head:
            head, self._head = self._head, b""
            yield head
        conn = self._conn
        try:
            while True:
                if self.before_wait is not None:
                    await self.before_wait()
                if conn is None:
                    chunks, self._body = self._body, []
                    if not chunks:
                        return
                else:
                    chunks = conn.take()
                    while not chunks:
                        if conn.done:
                            self._give_back()
                            return
                        if conn.error is not None:
                            raise conn.error
                        t0 = time.perf_counter()
                        await conn.wait()
                        self.waited += time.perf_counter() - t0
                        chunks = conn.take()
                yield chunks[0] if len(chunks) == 1 else b"".join(chunks)
        except TimeoutError as exc:
            raise OutcropError(
                "upstream stopped sending (read timeout)", 504, code="timeout"
            ) from exc
        except (Disconnected, BadResponse) as exc:
            log.warning("upstream_broke", error=describe(exc))
            raise OutcropError("upstream connection broke mid-body", 502) from exc

    async def aiter_events(self) -> AsyncIterator[EventStreamMessage]:
        """AWS event-stream messages, each yielded as soon as its last byte arrived; a body
        that ends in the middle of a frame raises a 502 (it was cut short)."""
        decoder = EventStreamDecoder()
        async for chunk in self.aiter_bytes():
            messages = decoder.feed(chunk)
            ready = len(messages)
            for message in messages:
                ready -= 1
                self.events_ready = ready
                yield message
        decoder.finish()

    async def aiter_lines(self) -> AsyncIterator[bytes]:
        """Body split on ``\\n`` (for SSE and NDJSON upstreams), line endings stripped.

        A last line without its ``\\n`` is yielded too (the reader of the format decides whether
        that is a truncation); a line longer than ``max_body`` raises a 502.
        """
        buf = bytearray()  # the unterminated tail: grown in place, scanned only once
        async for chunk in self.aiter_bytes():
            buf += chunk
            if b"\n" not in chunk:
                if len(buf) > self.max_body:
                    raise answer_too_large(self.max_body)
                continue
            *lines, tail = bytes(buf).split(b"\n")
            buf = bytearray(tail)
            for line in lines:
                yield line.rstrip(b"\r")
        if buf:
            yield bytes(buf)

    async def read(self) -> bytes:
        """The whole body; more than ``max_body`` bytes is a 502 (nothing past it is held)."""
        parts: list[bytes] = []
        size = 0
        async for chunk in self.aiter_bytes():
            size += len(chunk)
            if size > self.max_body:
                raise answer_too_large(self.max_body)
            parts.append(chunk)
        return b"".join(parts)

    async def read_up_to(self, limit: int) -> bytes:
        """At most ``limit`` bytes of the body (an error body to quote); the rest is never read:
        ``close()`` drops it with the connection."""
        parts: list[bytes] = []
        size = 0
        async for chunk in self.aiter_bytes():
            parts.append(chunk[: limit - size])
            size += len(parts[-1])
            if size >= limit:
                break
        return b"".join(parts)

    def unread(self, head: bytes) -> None:
        """Put back ``head``, the bytes just read: the next read starts with them (the retry
        loop looks into an error body before deciding whether it is the answer)."""
        self._head = head

    def close(self) -> None:
        """Done with the response: its connection goes back to the pool if the answer was
        received to its end, else it is closed (never reused half-read)."""
        conn = self._conn
        if conn is not None:
            self._give_back()

    def _give_back(self) -> None:
        conn, pool = self._conn, self._pool
        self._conn = self._pool = None
        if conn is not None and pool is not None:
            pool.release(conn)

    def __del__(self) -> None:
        if self._conn is not None:  # dropped unclosed: never leave the connection checked out
            self._conn.close()


#: Methods whose request may be sent again when a reused connection died before answering
#: (RFC 9110 section 9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
#: Methods sent without ``Content-Length`` when their body is empty.
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE"})
#: Request headers the client sets itself (a caller's copy is dropped: the framing is ours).
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})
#: Bodies at least this large are written after the head rather than copied into one buffer.
_COPY_LIMIT = 64 * 1024


class UpstreamClient:
    """The worker's one pool of upstream connections (created on the running loop)."""

    def __init__(
        self,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 600.0,
        pool_size: int = 1000,
        max_response_bytes: int = DEFAULT_MAX_BODY,
    ) -> None:
        self.max_response_bytes = max_response_bytes
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.pool_size = pool_size
        self._pool: Pool | None = None

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        """Send ``request`` and wait for the answer's status and headers (the body streams)."""
        pool = self._pool
        if pool is None:
            pool = self._pool = Pool(self.pool_size)
        try:
            origin, host, target = _split_url(request.url)
        except ValueError as exc:
            self._unreachable(request, exc)
        head, body = _request_head(request, host, target)
        connect_timeout = request.connect_timeout or self.connect_timeout
        read_timeout = request.read_timeout or self.read_timeout
        head_only = request.method == "HEAD"
        started = time.perf_counter()
        retry = request.method in IDEMPOTENT_METHODS
        while True:
            try:
                conn = await pool.acquire(origin, connect_timeout)
            except TimeoutError as exc:
                raise _timed_out(request) from exc
            except OSError as exc:
                self._unreachable(request, exc)
            conn.start(head_only)
            if body and len(body) >= _COPY_LIMIT:
                conn.write(head, read_timeout)
                conn.write(body, read_timeout)
            else:
                conn.write(head + body if body else head, read_timeout)
            try:
                while conn.head is None:
                    if conn.error is not None:
                        raise conn.error
                    await conn.wait()
            except BaseException as exc:
                conn.close()  # a timeout, a broken answer, a cancelled call: never reused
                if isinstance(exc, TimeoutError):
                    raise _timed_out(request) from exc
                if not isinstance(exc, Disconnected | BadResponse):
                    raise
                if retry and isinstance(exc, Disconnected) and conn.uses > 1 and not conn.received:
                    # The classic keep-alive race: the server closed the idle connection as
                    # the request went out. Safe to send again only when idempotent.
                    retry = False
                    log.info("upstream_stale_connection_retried", service=request.service)
                    continue
                self._unreachable(request, exc)
            break
        _, status, raw = conn.head
        response = UpstreamResponse(status, raw, started, self.max_response_bytes)
        if conn.done:  # the whole answer came with its head: the connection is free already
            response._body = conn.take()
            pool.release(conn)
        else:
            response._conn = conn
            response._pool = pool
        return response

    @staticmethod
    def _unreachable(request: UpstreamRequest, exc: BaseException) -> NoReturn:
        # Host, port and resolver error go to the log only: a client-facing body must not
        # map the gateway's network (or confirm where a request would have gone).
        log.warning(
            "upstream_unreachable",
            service=request.service,
            origin=_origin(request.url),
            error=describe(exc),
        )
        raise OutcropError(
            f"could not reach {request.service or 'upstream'}", 502, code="upstream_unreachable"
        ) from exc

    async def close(self) -> None:
        """Close every upstream connection (a later ``send`` opens new ones)."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


def _timed_out(request: UpstreamRequest) -> OutcropError:
    return OutcropError(
        f"timed out waiting for {request.service or 'upstream'}", 504, code="timeout"
    )


def _request_head(request: UpstreamRequest, host: str, target: str) -> tuple[bytes, bytes]:
    """The request line and headers as they go on the wire, and the body."""
    method, body = request.method, request.body
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    has_host = False
    for name, value in request.headers.items():
        lname = name.lower()
        if lname in _FRAMING_HEADERS:
            continue
        if lname == "host":
            has_host = True
        lines.append(f"{name}: {value}\r\n")
    if not has_host:
        lines.append(f"Host: {host}\r\n")
    if body or method not in _BODYLESS_METHODS:
        lines.append(f"Content-Length: {len(body)}\r\n")
    lines.append("\r\n")
    head = "".join(lines)
    # One CRLF per line, no other CR or LF, no space in the method or path: nothing from a
    # header value or path can start a line (or a request) of its own.
    if (
        head.count("\n") != len(lines)
        or head.count("\r") != len(lines)
        or " " in target
        or " " in method
    ):
        raise OutcropError(
            "an upstream request header or path holds a line break (or a space in the path)",
            400,
        )
    return head.encode(), body


@short_string_cache
def _split_url(url: str) -> tuple[Origin, str, str]:
    """(origin, Host header, request target) of an already-encoded URL; the target is kept
    exactly as given (no fragment). Cached: a worker sends to few distinct URLs."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("not an absolute URL")
    cut = len(rest)
    for mark in "/?#":
        at = rest.find(mark, 0, cut)
        if at >= 0:
            cut = at
    netloc, target = rest[:cut], rest[cut:].partition("#")[0]
    if not target.startswith("/"):
        target = "/" + target
    origin, host = _parse_origin(scheme, netloc)
    return origin, host, target


def _parse_origin(scheme: str, netloc: str) -> tuple[Origin, str]:
    """((scheme, host, port), Host header) for a URL's scheme and authority: the host
    lowercased, IPv6 in brackets, the port only when not the scheme's default."""
    scheme = scheme.lower()
    default = {"http": 80, "https": 443}.get(scheme)
    if default is None:
        raise ValueError(f"unsupported scheme {scheme!r}")
    if "@" in netloc or not netloc:
        raise ValueError("no host, or credentials in the URL")
    if netloc.startswith("["):
        host, bracket, port_text = netloc[1:].partition("]")
        if not bracket or (port_text and not port_text.startswith(":")):
            raise ValueError("bad IPv6 host")
        port_text = port_text[1:]
        shown = f"[{host.lower()}]"
    else:
        host, _, port_text = netloc.partition(":")
        shown = host.lower()
    if port_text and not port_text.isdigit():
        raise ValueError("bad port")
    port = int(port_text) if port_text else default
    if not 0 < port < 65536:
        raise ValueError("bad port")
    header = shown if port == default else f"{shown}:{port}"
    return (scheme, host.lower(), port), header


def answer_too_large(limit: int) -> OutcropError:
    """The 502 for an upstream answer over ``general_settings.max_response_bytes``."""
    return OutcropError(
        f"the upstream answer is larger than {limit} bytes (general_settings.max_response_bytes)",
        502,
        code="upstream_response_too_large",
    )


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"
