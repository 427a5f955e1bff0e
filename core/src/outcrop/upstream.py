"""The upstream HTTP side: request/response objects and the one pooled client per worker.

aiohttp is the client: it costs less CPU per forwarded request than httpx (figures in
docs/performance.md), streams response bodies chunk by chunk, and pools keep-alive
connections per host.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import aiohttp
from yarl import URL

from .errors import OutcropError
from .eventstream import EventStreamDecoder, EventStreamMessage


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


class UpstreamResponse:
    """A streaming upstream response. Read the body once: ``aiter_bytes``, ``aiter_events`` or ``read``."""

    __slots__ = ("_resp", "headers", "started", "status", "waited")

    def __init__(self, resp: aiohttp.ClientResponse, started: float) -> None:
        self._resp = resp
        self.status: int = resp.status
        self.headers: Mapping[str, str] = resp.headers
        self.started = started
        #: Seconds spent waiting on AWS so far (headers, then each body read): the gateway's
        #: overhead is wall time minus this.
        self.waited: float = time.perf_counter() - started

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive from the socket."""
        content = self._resp.content
        try:
            while True:
                t0 = time.perf_counter()
                chunk = await content.readany()
                self.waited += time.perf_counter() - t0
                if not chunk:
                    return
                yield chunk
        except TimeoutError as exc:
            raise OutcropError("upstream stopped sending (read timeout)", 504, code="timeout") from exc
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            raise OutcropError(f"upstream connection broke mid-body: {exc}", 502) from exc

    async def aiter_events(self) -> AsyncIterator[EventStreamMessage]:
        """AWS event-stream messages, each yielded as soon as its last byte arrived."""
        decoder = EventStreamDecoder()
        async for chunk in self.aiter_bytes():
            for message in decoder.feed(chunk):
                yield message

    async def aiter_lines(self) -> AsyncIterator[bytes]:
        """Body split on ``\\n`` (for SSE and NDJSON upstreams), line endings stripped."""
        buf = b""
        async for chunk in self.aiter_bytes():
            buf += chunk
            while True:
                idx = buf.find(b"\n")
                if idx < 0:
                    break
                line, buf = buf[:idx], buf[idx + 1 :]
                yield line.rstrip(b"\r")
        if buf:
            yield buf

    async def read(self) -> bytes:
        t0 = time.perf_counter()
        try:
            return await self._resp.read()
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise OutcropError(f"upstream connection broke: {exc}", 502) from exc
        finally:
            self.waited += time.perf_counter() - t0

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
    ) -> None:
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
            raise OutcropError(
                f"could not reach {request.service or 'upstream'} at {_origin(request.url)}: {exc}",
                502,
                code="upstream_unreachable",
            ) from exc
        return UpstreamResponse(resp, started)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"
