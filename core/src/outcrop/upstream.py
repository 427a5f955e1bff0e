"""The upstream HTTP side: request/response objects and the one pooled client per worker.

aiohttp is the client: it costs less CPU per forwarded request than httpx (figures in
docs/performance.md), streams response bodies chunk by chunk, and pools keep-alive
connections per host.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import aiohttp
from yarl import URL

from .errors import OutcropError
from .eventstream import EventStreamDecoder, EventStreamMessage
from .logs import get_logger

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


class UpstreamResponse:
    """A streaming upstream response. Read the body once: ``aiter_bytes``, ``aiter_events``,
    ``aiter_lines``, ``read`` or ``read_up_to``.

    Nothing here holds more than ``max_body`` bytes of it at once: past that, ``read`` and
    ``aiter_lines`` raise a 502 instead of buffering an unbounded answer.
    """

    __slots__ = (
        "_head",
        "_resp",
        "before_wait",
        "events_ready",
        "headers",
        "max_body",
        "started",
        "status",
        "waited",
    )

    def __init__(
        self, resp: aiohttp.ClientResponse, started: float, max_body: int = DEFAULT_MAX_BODY
    ) -> None:
        self._resp = resp
        self.status: int = resp.status
        self.headers: Mapping[str, str] = resp.headers
        self.started = started
        self.max_body = max_body
        self._head = b""
        #: Seconds spent waiting on AWS so far (headers, then each body read): the gateway's
        #: overhead is wall time minus this.
        self.waited: float = time.perf_counter() - started
        #: Event-stream messages already decoded that ``aiter_events`` has not yielded yet
        #: (they came in the same read as the one it just yielded).
        self.events_ready = 0
        #: Awaited before every wait for more body bytes (the chat route sends the SSE frames
        #: it holds back while more events are ready: none waits on the network).
        self.before_wait: Callable[[], Awaitable[None]] | None = None

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive from the socket."""
        if self._head:
            head, self._head = self._head, b""
            yield head
        content = self._resp.content
        try:
            while True:
                if self.before_wait is not None:
                    await self.before_wait()
                t0 = time.perf_counter()
                chunk = await content.readany()
                self.waited += time.perf_counter() - t0
                if not chunk:
                    return
                yield chunk
        except TimeoutError as exc:
            raise OutcropError(
                "upstream stopped sending (read timeout)", 504, code="timeout"
            ) from exc
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            log.warning("upstream_broke", error=_describe(exc))
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

    @property
    def raw_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """The response headers as received (byte pairs, order and repeats kept), for relays."""
        return self._resp.raw_headers

    def close(self) -> None:
        self._resp.close()


class UpstreamClient:
    """One pooled aiohttp session per worker process (created on the running loop)."""

    def __init__(
        self,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 600.0,
        pool_size: int = 1000,
        max_response_bytes: int = DEFAULT_MAX_BODY,
    ) -> None:
        self.max_response_bytes = max_response_bytes
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_read=read_timeout
        )
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None

    def _ensure(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, ttl_dns_cache=300, enable_cleanup_closed=True
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                auto_decompress=False,  # relay bytes as AWS sent them
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept"),
            )
        return self._session

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        session = self._ensure()
        timeout = self._timeout
        if request.read_timeout is not None or request.connect_timeout is not None:
            timeout = aiohttp.ClientTimeout(
                total=None,
                connect=request.connect_timeout or self._timeout.connect,
                sock_read=request.read_timeout or self._timeout.sock_read,
            )
        started = time.perf_counter()
        try:
            resp = await session.request(
                request.method,
                URL(request.url, encoded=True),  # never re-quote: %3A/%2F must reach AWS as signed
                headers=request.headers,
                data=request.body or None,
                allow_redirects=False,
                compress=None,
                timeout=timeout,
            )
        except TimeoutError as exc:
            raise OutcropError(
                f"timed out waiting for {request.service or 'upstream'}", 504, code="timeout"
            ) from exc
        except aiohttp.ClientError as exc:
            # Host, port and resolver error go to the log only: a client-facing body must not
            # map the gateway's network (or confirm where a request would have gone).
            log.warning(
                "upstream_unreachable",
                service=request.service,
                origin=_origin(request.url),
                error=_describe(exc),
            )
            raise OutcropError(
                f"could not reach {request.service or 'upstream'}", 502, code="upstream_unreachable"
            ) from exc
        return UpstreamResponse(resp, started, self.max_response_bytes)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def answer_too_large(limit: int) -> OutcropError:
    """The 502 for an upstream answer over ``general_settings.max_response_bytes``."""
    return OutcropError(
        f"the upstream answer is larger than {limit} bytes (general_settings.max_response_bytes)",
        502,
        code="upstream_response_too_large",
    )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"
