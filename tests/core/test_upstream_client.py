"""The upstream HTTP/1.1 client (outcrop.upstream, outcrop.upstream_http1, outcrop.upstream_pool)
against real loopback servers that answer with exact, scripted bytes: what goes on the wire, framing,
keep-alive, the pool, timeouts, TLS, and the malformed answers that must never be trusted."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
import trustme

import outcrop.upstream
import outcrop.upstream_pool
from outcrop.errors import OutcropError
from outcrop.upstream import (
    ResponseHeaders,
    UpstreamClient,
    UpstreamRequest,
    UpstreamResponse,
    _split_url,
)

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


@dataclass
class Server:
    """What a scripted server saw: connections opened, requests (raw bytes), connections that
    the client closed (EOF)."""

    url: str = ""
    port: int = 0
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    requests: list[bytes] = field(default_factory=list)
    client_closed: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)


Handler = Callable[[Server, int, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request's bytes (head and Content-Length body); b"" at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return b""
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


def answering(*answers: bytes, then_close: bool = False) -> Handler:
    """Each connection answers its requests with ``answers`` in turn (the last repeats)."""

    async def handle(server: Server, index: int, reader, writer) -> None:
        n = 0
        while request := await read_request(reader):
            server.requests.append(request)
            writer.write(answers[min(n, len(answers) - 1)])
            await writer.drain()
            n += 1
            if then_close:
                return
        server.client_closed += 1
        server.closed.set()

    return handle


@asynccontextmanager
async def serving(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.connections += 1
        server.open_now += 1
        server.most_open = max(server.most_open, server.open_now)
        try:
            await handler(server, server.connections, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            server.open_now -= 1
            writer.close()

    listener = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=tls)
    server.port = listener.sockets[0].getsockname()[1]
    server.url = f"{'https' if tls else 'http'}://127.0.0.1:{server.port}"
    try:
        yield server
    finally:
        listener.close()


def post(url: str, body: bytes = b"{}", **headers: str) -> UpstreamRequest:
    return UpstreamRequest("POST", url, {"Content-Type": "application/json", **headers}, body)


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    c = UpstreamClient(connect_timeout=10.0, read_timeout=10.0)
    yield c
    await c.close()


async def test_request_bytes_are_exactly_what_was_asked(client):
    async with serving(answering(OK)) as server:
        url = f"{server.url}/model/us.anthropic.claude%3A0/converse?a=%2F&b=1"
        response = await client.send(post(url, b'{"x":1}', **{"X-Amz-Date": "20260101T000000Z"}))
        assert await response.read() == b"{}"
    assert server.requests == [
        b"POST /model/us.anthropic.claude%3A0/converse?a=%2F&b=1 HTTP/1.1\r\n"
        b"Content-Type: application/json\r\nX-Amz-Date: 20260101T000000Z\r\n"
        b"Host: 127.0.0.1:" + str(server.port).encode() + b"\r\n"
        b'Content-Length: 7\r\n\r\n{"x":1}'
    ]


async def test_a_caller_host_is_kept_and_its_framing_headers_are_replaced(client):
    async with serving(answering(OK)) as server:
        request = post(
            server.url + "/x", b"abc", Host="bedrock.example", **{"Content-Length": "99"}
        )
        await (await client.send(request)).read()
        get = await client.send(UpstreamRequest("GET", server.url + "/y"))
        await get.read()
    assert server.requests[0].endswith(b"Host: bedrock.example\r\nContent-Length: 3\r\n\r\nabc")
    assert b"99" not in server.requests[0]
    assert server.requests[1] == (
        b"GET /y HTTP/1.1\r\nHost: 127.0.0.1:" + str(server.port).encode() + b"\r\n\r\n"
    )


def test_host_header_and_target_from_the_url():
    assert _split_url("https://Bedrock-Runtime.us-east-1.amazonaws.com/model/a%2Fb/invoke") == (
        ("https", "bedrock-runtime.us-east-1.amazonaws.com", 443),
        "bedrock-runtime.us-east-1.amazonaws.com",
        "/model/a%2Fb/invoke",
    )
    assert _split_url("http://h:80?q=1#frag") == (("http", "h", 80), "h", "/?q=1")
    assert _split_url("https://h:8443/") == (("https", "h", 8443), "h:8443", "/")
    assert _split_url("http://[::1]:9000/p") == (("http", "::1", 9000), "[::1]:9000", "/p")
    for bad in ("ftp://h/", "h/path", "http://u:p@h/", "http://h:x/", "http://h:70000/"):
        with pytest.raises(ValueError):
            _split_url(bad)


async def test_a_line_break_in_a_header_is_refused_before_sending(client):
    async with serving(answering(OK)) as server:
        with pytest.raises(OutcropError) as info:
            await client.send(post(server.url + "/x", **{"X-Note": "a\r\nX-Evil: 1"}))
        assert info.value.status == 400
        with pytest.raises(OutcropError):
            await client.send(post(server.url + "/x y"))
    assert server.requests == []


async def test_keep_alive_reuses_one_connection(client):
    async with serving(answering(OK)) as server:
        for _ in range(3):
            assert await (await client.send(post(server.url + "/x"))).read() == b"{}"
    assert server.connections == 1 and len(server.requests) == 3


async def test_connection_close_is_not_reused(client):
    answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    async with serving(answering(answer)) as server:
        for _ in range(2):
            assert await (await client.send(post(server.url + "/x"))).read() == b"ok"
    assert server.connections == 2


async def test_a_half_read_answer_closes_its_connection(client):
    chunks = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"

    async def handle(server, index, reader, writer):
        server.requests.append(await read_request(reader))
        writer.write(chunks)  # the rest never comes: the reader gives up after one chunk
        await reader.read()  # until the client closes
        server.client_closed += 1
        server.closed.set()

    async with serving(handle) as server:
        response = await client.send(post(server.url + "/x"))
        async for chunk in response.aiter_bytes():
            assert chunk == b"abc"
            break
        response.close()
        await asyncio.wait_for(server.closed.wait(), 2)
    assert server.client_closed == 1


async def test_chunked_with_trailers_and_extensions(client):
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4;name=x\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n"
        b"X-Checksum: 1\r\nX-Other: 2\r\n\r\n"
    )
    async with serving(answering(answer)) as server:
        for _ in range(2):
            response = await client.send(post(server.url + "/x"))
            assert await response.read() == b"Wikipedia in\r\n\r\nchunks."
    assert server.connections == 1


async def test_chunked_answer_split_across_reads_streams_each_piece(client):
    async def handle(server, index, reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b"5\r\nfir", b"st\r\n", b"6\r\nsecond\r", b"\n0\r\n", b"\r\n"):
            await writer.drain()
            await asyncio.sleep(0.02)
            writer.write(piece)
        await reader.read()

    async with serving(handle) as server:
        response = await client.send(post(server.url + "/x"))
        parts = [chunk async for chunk in response.aiter_bytes()]
    assert b"".join(parts) == b"firstsecond" and len(parts) >= 3


async def test_interim_1xx_answers_are_skipped(client):
    answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK
    async with serving(answering(answer)) as server:
        response = await client.send(post(server.url + "/x"))
        assert response.status == 200 and "link" not in response.headers
        assert await response.read() == b"{}"


async def test_head_204_and_304_have_no_body_and_keep_the_connection(client):
    answers = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",  # HEAD: the length of a GET
        b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n",
        OK,
    )
    async with serving(answering(*answers)) as server:
        head = await client.send(UpstreamRequest("HEAD", server.url + "/x"))
        assert head.status == 200 and head.headers["content-length"] == "1234"
        assert await head.read() == b""
        for status in (204, 304):
            response = await client.send(UpstreamRequest("GET", server.url + "/x"))
            assert response.status == status and await response.read() == b""
        assert await (await client.send(post(server.url + "/x"))).read() == b"{}"
    assert server.connections == 1


async def test_http10_body_ends_when_the_server_closes(client):
    answer = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"x" * 100_000
    async with serving(answering(answer, then_close=True)) as server:
        for _ in range(2):
            response = await client.send(UpstreamRequest("GET", server.url + "/x"))
            assert await response.read() == b"x" * 100_000
    assert server.connections == 2


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-A: 1\rContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
        b"HTTP/2 200 OK\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
        b"garbage\r\n\r\n",
    ],
)
async def test_malformed_or_ambiguous_answers_are_a_502_and_the_connection_dropped(
    client, head, caplog
):
    first, rest = answering(head + b"{}"), answering(OK)

    async def handle(server, index, reader, writer):
        await (first if index == 1 else rest)(server, index, reader, writer)

    async with serving(handle) as server:
        with pytest.raises(OutcropError) as info:
            await client.send(post(server.url + "/x"))
        assert (info.value.status, info.value.code) == (502, "upstream_unreachable")
        await asyncio.wait_for(server.closed.wait(), 2)  # the client closed it
        assert await (await client.send(post(server.url + "/x"))).read() == b"{}"
    assert server.connections == 2


async def test_bad_chunk_framing_is_a_502_mid_body(client):
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n"
    async with serving(answering(answer)) as server:
        response = await client.send(post(server.url + "/x"))
        with pytest.raises(OutcropError) as info:
            await response.read()
        assert info.value.status == 502
        response.close()
        await asyncio.wait_for(server.closed.wait(), 2)


async def test_bytes_after_the_answer_forbid_reuse(client):
    async with serving(answering(OK + b"HTTP/1.1 200 OK\r\n")) as server:
        for _ in range(2):
            assert await (await client.send(post(server.url + "/x"))).read() == b"{}"
    assert server.connections == 2


async def test_connection_broken_mid_body_is_a_502(client):
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10
    async with serving(answering(answer, then_close=True)) as server:
        response = await client.send(post(server.url + "/x"))
        with pytest.raises(OutcropError) as info:
            await response.read()
        assert info.value.status == 502 and "broke" in info.value.message


async def test_closed_before_any_answer_is_a_502(client):
    async def handle(server, index, reader, writer):
        server.requests.append(await read_request(reader))

    async with serving(handle) as server:
        with pytest.raises(OutcropError) as info:
            await client.send(post(server.url + "/x"))
        assert info.value.code == "upstream_unreachable"


async def test_answer_larger_than_max_response_bytes_is_a_502(client):
    body = b"x" * 5000
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + body
    async with serving(answering(answer)) as server:
        client.max_response_bytes = 4096
        response = await client.send(post(server.url + "/x"))
        with pytest.raises(OutcropError) as info:
            await response.read()
        assert info.value.code == "upstream_response_too_large"


async def test_a_large_streamed_body_arrives_whole_with_flow_control(client):
    size = 8 * 1024 * 1024
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"y" * size
    async with serving(answering(answer)) as server:
        response = await client.send(post(server.url + "/x"))
        total = 0
        async for chunk in response.aiter_bytes():
            total += len(chunk)
            await asyncio.sleep(0)  # a slow reader: the socket is paused and resumed
        assert total == size
        assert await (await client.send(post(server.url + "/x"))).read() == b"y" * size
    assert server.connections == 1


async def test_silence_before_the_head_is_a_504_timeout():
    async def handle(server, index, reader, writer):
        await read_request(reader)
        await asyncio.sleep(5)

    client = UpstreamClient(connect_timeout=2.0, read_timeout=0.3)
    async with serving(handle) as server:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(OutcropError) as info:
            await client.send(post(server.url + "/x"))
        assert (info.value.status, info.value.code) == (504, "timeout")
        assert 0.25 < loop.time() - start < 2
        # a per-request timeout wins over the client's
        request = post(server.url + "/x")
        request.read_timeout = 0.1
        start = loop.time()
        with pytest.raises(OutcropError):
            await client.send(request)
        assert loop.time() - start < 0.3
    await client.close()


async def test_read_timeout_counts_seconds_without_a_byte():
    async def handle(server, index, reader, writer):
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(6):  # 0.6 s in all, never 0.3 s silent: no timeout
            await asyncio.sleep(0.1)
            writer.write(b"1\r\na\r\n")
        await asyncio.sleep(5)  # then silence: a timeout mid-body

    client = UpstreamClient(connect_timeout=2.0, read_timeout=0.3)
    async with serving(handle) as server:
        response = await client.send(post(server.url + "/x"))
        got = b""
        with pytest.raises(OutcropError) as info:
            async for chunk in response.aiter_bytes():
                got += chunk
        assert (info.value.status, info.value.code) == (504, "timeout")
        assert got == b"a" * 6
        response.close()
    await client.close()


async def test_connect_timeout_covers_the_tls_handshake():
    async def silent(server, index, reader, writer):
        await asyncio.sleep(5)  # accepts TCP, never answers the ClientHello

    client = UpstreamClient(connect_timeout=0.3, read_timeout=5)
    async with serving(silent) as server:
        url = server.url.replace("http://", "https://")
        with pytest.raises(OutcropError) as info:
            await client.send(post(url + "/x"))
        assert (info.value.status, info.value.code) == (504, "timeout")
    await client.close()


async def test_unreachable_is_a_502_with_the_host_only_in_the_log(client, monkeypatch):
    logged: list[tuple[str, dict]] = []

    class Log:
        def warning(self, event, **fields):
            logged.append((event, fields))

    monkeypatch.setattr(outcrop.upstream, "log", Log())
    with pytest.raises(OutcropError) as info:
        await client.send(post("http://127.0.0.1:9/x", service="bedrock-runtime"))
    assert (info.value.status, info.value.code) == (502, "upstream_unreachable")
    assert "127.0.0.1" not in info.value.message
    assert logged[0][0] == "upstream_unreachable"
    assert logged[0][1]["origin"] == "http://127.0.0.1:9"


def post_service(url: str) -> UpstreamRequest:
    return UpstreamRequest("POST", url, {}, b"{}", service="bedrock-runtime")


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_stale_pooled_connection_is_retried_only_when_idempotent(client, method):
    """The keep-alive race: the server drops a pooled connection as the next request arrives,
    with no byte of answer. GET goes again on a new connection; POST is not sent twice."""

    async def handle(server, index, reader, writer):
        server.requests.append(await read_request(reader))
        writer.write(OK)
        if index == 1:
            server.requests.append(await read_request(reader))  # read, then dropped
            return
        while request := await read_request(reader):
            server.requests.append(request)
            writer.write(OK)

    async with serving(handle) as server:
        request = UpstreamRequest(method, server.url + "/x", {}, b"")
        assert await (await client.send(request)).read() == b"{}"
        if method == "GET":
            assert await (await client.send(request)).read() == b"{}"
            assert server.connections == 2 and len(server.requests) == 3
        else:
            with pytest.raises(OutcropError) as info:
                await client.send(request)
            assert info.value.code == "upstream_unreachable"
            assert server.connections == 1 and len(server.requests) == 2


async def test_a_connection_the_server_closed_while_idle_is_not_used(client):
    async with serving(answering(OK, then_close=True)) as server:
        for _ in range(3):
            assert await (await client.send(post(server.url + "/x"))).read() == b"{}"
            await asyncio.sleep(0.05)  # the server's FIN arrives while the connection idles
    assert server.connections == 3 and len(server.requests) == 3


async def test_idle_connections_expire(client, monkeypatch):
    monkeypatch.setattr(outcrop.upstream_pool, "KEEPALIVE_S", 0.1)
    async with serving(answering(OK)) as server:
        await (await client.send(post(server.url + "/x"))).read()
        await asyncio.sleep(0.2)
        await (await client.send(post(server.url + "/x"))).read()
        await asyncio.wait_for(server.closed.wait(), 2)
    assert server.connections == 2


async def test_the_pool_limit_is_respected():
    async def slow(server, index, reader, writer):
        while request := await read_request(reader):
            server.requests.append(request)
            await asyncio.sleep(0.05)
            writer.write(OK)

    client = UpstreamClient(pool_size=2)
    async with serving(slow) as server:

        async def one() -> bytes:
            return await (await client.send(post(server.url + "/x"))).read()

        assert await asyncio.gather(*(one() for _ in range(8))) == [b"{}"] * 8
    assert server.most_open == 2 and server.connections == 2
    await client.close()


async def test_the_pool_limit_frees_idle_connections_of_other_origins():
    client = UpstreamClient(pool_size=1)
    async with serving(answering(OK)) as first, serving(answering(OK)) as second:
        await (await client.send(post(first.url + "/x"))).read()
        await asyncio.wait_for(client.send(post(second.url + "/x")), 2)
        await asyncio.wait_for(first.closed.wait(), 2)
    await client.close()


async def test_cancelling_a_call_closes_its_connection(client):
    async def handle(server, index, reader, writer):
        server.requests.append(await read_request(reader))
        if index == 2:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await reader.read()
        server.client_closed += 1
        server.closed.set()

    async with serving(handle) as server:
        waiting = asyncio.ensure_future(client.send(post(server.url + "/x")))
        await asyncio.sleep(0.1)
        waiting.cancel()  # no answer yet
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.wait_for(server.closed.wait(), 2)
        server.closed.clear()
        response = await client.send(post(server.url + "/x"))
        reading = asyncio.ensure_future(response.read())
        await asyncio.sleep(0.1)
        reading.cancel()  # mid-body
        with pytest.raises(asyncio.CancelledError):
            await reading
        response.close()
        await asyncio.wait_for(server.closed.wait(), 2)
    assert server.client_closed == 2


async def test_closing_the_client_closes_every_connection():
    client = UpstreamClient()
    async with serving(answering(OK)) as server:
        await (await client.send(post(server.url + "/x"))).read()
        await client.close()
        await asyncio.wait_for(server.closed.wait(), 2)
        # and it can serve again afterwards (a new pool)
        assert await (await client.send(post(server.url + "/x"))).read() == b"{}"
    await client.close()


async def test_dns_answers_are_cached(client, monkeypatch):
    loop = asyncio.get_running_loop()
    calls: list[str] = []
    real = loop.getaddrinfo

    async def counting(host, *args, **kwargs):
        calls.append(host)
        return await real(host, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", counting)
    answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    async with serving(answering(answer)) as server:
        url = f"http://localhost:{server.port}/x"
        for _ in range(3):
            assert await (await client.send(post(url))).read() == b"{}"
    assert server.connections == 3 and calls == ["localhost"]


@pytest.fixture(scope="module")
def tls_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, str]:
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("upstream-tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, str(path)


def server_tls(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


async def test_https_verifies_with_the_system_trust_store(tls_ca, monkeypatch):
    ca, ca_file = tls_ca
    async with serving(answering(OK), tls=server_tls(ca, "localhost")) as server:
        url = f"https://localhost:{server.port}/x"
        # Not in the trust store: refused, never sent unverified.
        untrusted = UpstreamClient(connect_timeout=2)
        with pytest.raises(OutcropError) as info:
            await untrusted.send(post(url))
        assert info.value.code == "upstream_unreachable"
        await untrusted.close()
        # The system's default verification honours SSL_CERT_FILE: trusted now.
        monkeypatch.setenv("SSL_CERT_FILE", ca_file)
        trusted = UpstreamClient(connect_timeout=2)
        response = await trusted.send(post(url))
        assert await response.read() == b"{}"
        # The certificate names localhost, not 127.0.0.1: the hostname is checked.
        with pytest.raises(OutcropError):
            await trusted.send(post(f"https://127.0.0.1:{server.port}/x"))
        await trusted.close()
    assert len(server.requests) == 1


async def test_response_headers_keep_order_case_and_repeats(client):
    answer = (
        b"HTTP/1.1 200 OK\r\nX-Amzn-RequestId: r1\r\nSet-Thing: a\r\nset-thing: b\r\n"
        b"X-Raw: caf\xc3\xa9 \xff\r\nContent-Length: 0\r\n\r\n"
    )
    async with serving(answering(answer)) as server:
        response = await client.send(post(server.url + "/x"))
    headers = response.headers
    assert isinstance(headers, ResponseHeaders)
    assert headers["x-amzn-requestid"] == headers.get("X-AMZN-REQUESTID") == "r1"
    assert "SET-THING" in headers and headers.get("missing") is None
    assert headers.getall("set-thing") == ["a", "b"]
    assert list(headers.items())[:3] == [
        ("X-Amzn-RequestId", "r1"),
        ("Set-Thing", "a"),
        ("set-thing", "b"),
    ]
    assert len(headers) == 5 and list(headers.values())[2] == "b"
    assert headers["x-raw"].encode("utf-8", "surrogateescape") == b"caf\xc3\xa9 \xff"
    assert response.raw_headers == (
        (b"X-Amzn-RequestId", b"r1"),
        (b"Set-Thing", b"a"),
        (b"set-thing", b"b"),
        (b"X-Raw", b"caf\xc3\xa9 \xff"),
        (b"Content-Length", b"0"),
    )


async def test_an_in_memory_response_reads_like_a_streamed_one():
    response = UpstreamResponse(200, [(b"A", b"1")], 0.0, body=[b"ab", b"cd"])
    assert response.headers["a"] == "1"
    assert await response.read() == b"abcd"
    assert await response.read() == b""


async def test_read_up_to_then_unread(client):
    answer = b"HTTP/1.1 500 x\r\nContent-Length: 10\r\n\r\n0123456789"
    async with serving(answering(answer)) as server:
        response = await client.send(post(server.url + "/x"))
        head = await response.read_up_to(4)
        response.unread(head)
        assert head == b"0123" and (await response.read()).startswith(b"0123")
        response.close()


async def test_unclosed_responses_do_not_log_warnings(client, caplog):
    caplog.set_level(logging.WARNING)
    async with serving(answering(OK)) as server:
        for _ in range(5):
            await client.send(post(server.url + "/x"))  # never read, never closed
    assert "Unclosed" not in caplog.text


async def test_the_dns_cache_is_bounded():
    from outcrop.upstream_pool import DNS_CACHED, Pool

    pool = Pool(10)
    loop = asyncio.get_running_loop()
    for i in range(DNS_CACHED + 50):
        host = f"127.0.{i // 250}.{i % 250 + 1}"
        assert await pool._resolve(loop, host, 80) == [(2, host)]
        assert len(pool._dns) <= DNS_CACHED


async def test_waiting_for_a_place_in_the_pool_counts_as_connecting():
    async def slow(server, index, reader, writer):
        while request := await read_request(reader):
            server.requests.append(request)
            await asyncio.sleep(1.0)
            writer.write(OK)

    client = UpstreamClient(pool_size=1, connect_timeout=0.2)
    async with serving(slow) as server:
        first = asyncio.ensure_future(client.send(post(server.url + "/x")))
        await asyncio.sleep(0.05)
        with pytest.raises(OutcropError) as info:
            await client.send(post(server.url + "/x"))
        assert (info.value.status, info.value.code) == (504, "timeout")
        assert await (await first).read() == b"{}"
    await client.close()
