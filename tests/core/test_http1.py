"""The default server's HTTP/1.1 (outcrop.serving.http1), byte for byte on a raw socket: what
is served, how responses are framed, what an app's faults give, and every request refused
(with the answer hypercorn's h11 protocol gave: the same bytes, or a stricter 400 where h11
let an ambiguous request through). Also: streamed bodies leave on each send, a slow reader
holds the app back, and keep-alive ends after hypercorn's ``keep_alive_max_requests``."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from outcrop.serving.options import ServerOptions
from outcrop.testing.server import ServerThread

#: The app's /flood answer: 1 MiB sends, far more than socket buffers hold.
FLOOD_PARTS = 64
_sent: list[int] = []
_release = threading.Event()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers by path: the request as seen (method, target, version, headers, body) by
    default, and the response shapes the tests below need."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path = scope["path"]
    body = b""
    if path not in ("/early", "/late", "/boom"):
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
    if path == "/boom":
        raise RuntimeError("boom")
    if path in ("/stream", "/wait"):
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for i in range(3):
            await send(
                {"type": "http.response.body", "body": b"data: %d\n\n" % i, "more_body": True}
            )
            if path == "/wait":  # the client must hold this event before the next is made
                while not _release.is_set():
                    await asyncio.sleep(0.01)
                _release.clear()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if path == "/flood":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(FLOOD_PARTS):
            await send({"type": "http.response.body", "body": b"x" * 2**20, "more_body": True})
            _sent.append(i)
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/204":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/close":
        headers = [(b"content-length", b"2"), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if path == "/cut":  # declares 10 bytes, sends 5, returns
        headers = [(b"content-length", b"10")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"12345", "more_body": True})
        return
    if path == "/headonly":  # starts its answer, then returns
        headers = [(b"content-length", b"4")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        return
    if path == "/late":  # a pause (a key looked up), then an answer without reading the body
        await asyncio.sleep(0.3)
        path = "/early"
    if path == "/early":  # answers before reading the body
        headers = [(b"content-length", b"3")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": b"big"})
        return
    if path == "/badheader":  # a header value smuggling a second header
        headers = [(b"x-a", b"b\r\nx-injected: 1")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"no"})
        return
    seen = b"%s %s %s %r %r|" % (
        scope["method"].encode(),
        scope["raw_path"],
        scope["query_string"],
        scope["http_version"],
        scope["headers"],
    )
    out = seen + body
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(out)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": out})


@pytest.fixture(scope="module")
def served() -> Iterator[ServerThread]:
    options = ServerOptions(header_timeout=5.0, keep_alive_timeout=5.0)
    with ServerThread(app, options=options) as server:
        yield server


def _connect(server: ServerThread) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def exchange(server: ServerThread, data: bytes, expected: bytes) -> bytes:
    """Send ``data``, read what comes back (``date`` values as ``X``); ``<EOF>`` ends it when
    the server closed, ``<open>`` when the connection stayed open with nothing more to read."""
    want = len(expected.removesuffix(b"<EOF>").removesuffix(b"<open>"))
    with _connect(server) as sock:
        sock.sendall(data)
        out = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return _undated(out) + b"<RST>"
            except TimeoutError:
                return _undated(out) + b"<open>"
            if not chunk:
                return _undated(out) + b"<EOF>"
            out += chunk
            if len(_undated(out)) >= want:
                sock.settimeout(0.3 if expected.endswith(b"<open>") else 5)


def _undated(data: bytes) -> bytes:
    return re.sub(rb"date: [^\r]*", b"date: X", data)


SERVED = [
    pytest.param(
        b"GET /x?q=1 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 200 \r\ncontent-type: text/plain\r\ncontent-length: 35\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\nGET /x q=1 '1.1' [(b'host', b'a')]|<open>",
        id="get",
    ),
    pytest.param(
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",
        b"HTTP/1.1 200 \r\ncontent-type: text/plain\r\ncontent-length: 62\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\nPOST /x  '1.1' [(b'host', b'a'), (b'content-length', b'2')]|hi<open>",
        id="post cl",
    ),
    pytest.param(
        b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
        b"HTTP/1.1 200 \r\ncontent-type: text/plain\r\ncontent-length: 74\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\nPOST /x  '1.1' [(b'host', b'a'), (b'transfer-encoding', b'chunked')]|hiabc<open>",
        id="post chunked",
    ),
    pytest.param(
        b"GET /a%20b%2Fc?x=%20 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 200 \r\ncontent-type: text/plain\r\ncontent-length: 45\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\nGET /a%20b%2Fc x=%20 '1.1' [(b'host', b'a')]|<open>",
        id="quoted path",
    ),
    pytest.param(
        b"GET http://a/b?c HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 200 \r\ncontent-type: text/plain\r\ncontent-length: 41\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\nGET http://a/b c '1.1' [(b'host', b'a')]|<open>",
        id="abs target",
    ),
    pytest.param(
        b"GET /x HTTP/1.1\r\nHost: a\r\nX-A:    b  \t\r\nUPPER-Case: V\r\n\r\n",
        b"HTTP/1.1 200 \r\ncontent-type: text/plain\r\ncontent-length: 71\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\nGET /x  '1.1' [(b'host', b'a'), (b'x-a', b'b'), (b'upper-case', b'V')]|<open>",
        id="value ws",
    ),
    pytest.param(
        b"GET /x HTTP/1.1\r\nHost: a\r\nX-A: b\xe9c\r\n\r\n",
        b"HTTP/1.1 200 \r\ncontent-type: text/plain\r\ncontent-length: 53\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\nGET /x  '1.1' [(b'host', b'a'), (b'x-a', b'b\\xe9c')]|<open>",
        id="high byte value",
    ),
    pytest.param(
        b"GET /x HTTP/1.0\r\n\r\n",
        b"HTTP/1.1 200 \r\ncontent-type: text/plain\r\ncontent-length: 17\r\ndate: X\r\nserver: hypercorn-h11\r\nConnection: close\r\n\r\nGET /x  '1.0' []|<EOF>",
        id="1.0 no host",
    ),
    pytest.param(
        b"GET /x HTTP/1.1\nHost: a\nX-A: b\n\n",
        b"HTTP/1.1 200 \r\ncontent-type: text/plain\r\ncontent-length: 48\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\nGET /x  '1.1' [(b'host', b'a'), (b'x-a', b'b')]|<open>",
        id="bare LF",
    ),
    pytest.param(
        b"GET /x HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n",
        b"HTTP/1.1 200 \r\ncontent-type: text/plain\r\ncontent-length: 48\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\nGET /x  '1.1' [(b'host', b'a'), (b'x-a', b'b')]|<open>",
        id="bare LF mid",
    ),
    pytest.param(  # llhttp waited on the empty line as a header's start (h11 served it)
        b"GET /x HTTP/1.0\n\n",
        b"HTTP/1.1 200 \r\ncontent-type: text/plain\r\ncontent-length: 17\r\ndate: X\r\nserver: hypercorn-h11\r\nConnection: close\r\n\r\nGET /x  '1.0' []|<EOF>",
        id="bare LF, no headers",
    ),
    pytest.param(
        b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: \r\n\r\nGET /y HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 200 \r\ncontent-type: text/plain\r\ncontent-length: 125\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\nGET /x  '1.1' [(b'host', b'a'), (b'connection', b'Upgrade, HTTP2-Settings'), (b'upgrade', b'h2c'), (b'http2-settings', b'')]|HTTP/1.1 200 \r\ncontent-type: text/plain\r\ncontent-length: 32\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\nGET /y  '1.1' [(b'host', b'a')]|<open>",
        id="h2c upgrade",
    ),
    pytest.param(
        b"POST /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\nhiGET /y HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 200 \r\ncontent-type: text/plain\r\ncontent-length: 113\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\nPOST /x  '1.1' [(b'host', b'a'), (b'connection', b'Upgrade'), (b'upgrade', b'h2c'), (b'content-length', b'2')]|hiHTTP/1.1 200 \r\ncontent-type: text/plain\r\ncontent-length: 32\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\nGET /y  '1.1' [(b'host', b'a')]|<open>",
        id="h2c upgrade body",
    ),
    pytest.param(
        b"\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 200 \r\ncontent-type: text/plain\r\ncontent-length: 32\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\nGET /x  '1.1' [(b'host', b'a')]|<open>",
        id="leading crlf",
    ),
]

FRAMED = [
    pytest.param(
        b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 200 \r\ncontent-type: text/plain\r\ncontent-length: 33\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<open>",
        id="head",
    ),
    pytest.param(
        b"HEAD /stream HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 200 \r\ncontent-type: text/event-stream\r\ndate: X\r\nserver: hypercorn-h11\r\nTransfer-Encoding: chunked\r\n\r\n<open>",
        id="head stream",
    ),
    pytest.param(
        b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 200 \r\ncontent-type: text/event-stream\r\ndate: X\r\nserver: hypercorn-h11\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: 0\n\n\r\n9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\n<open>",
        id="stream",
    ),
    pytest.param(
        b"GET /stream HTTP/1.0\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 200 \r\ncontent-type: text/event-stream\r\ndate: X\r\nserver: hypercorn-h11\r\nConnection: close\r\n\r\ndata: 0\n\ndata: 1\n\ndata: 2\n\n<EOF>",
        id="stream 1.0",
    ),
    pytest.param(
        b"GET /x HTTP/1.0\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 200 \r\ncontent-type: text/plain\r\ncontent-length: 32\r\ndate: X\r\nserver: hypercorn-h11\r\nConnection: close\r\n\r\nGET /x  '1.0' [(b'host', b'a')]|<EOF>",
        id="get 1.0",
    ),
    pytest.param(
        b"GET /x HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\nGET /y HTTP/1.0\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 200 \r\ncontent-type: text/plain\r\ncontent-length: 64\r\ndate: X\r\nserver: hypercorn-h11\r\nConnection: close\r\n\r\nGET /x  '1.0' [(b'host', b'a'), (b'connection', b'keep-alive')]|<EOF>",
        id="get 1.0 keepalive",
    ),
    pytest.param(
        b"GET /204 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 204 \r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<open>",
        id="204",
    ),
    pytest.param(
        b"GET /close HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 200 \r\ncontent-length: 2\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\nok<EOF>",
        id="close hdr",
    ),
    pytest.param(
        b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /y HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\ndate: X\r\nserver: hypercorn-h11\r\nConnection: close\r\n\r\n<EOF>",
        id="client close",
    ),
    pytest.param(
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi",
        b"HTTP/1.1 100 \r\ndate: X\r\nserver: hypercorn-h11\r\n\r\nHTTP/1.1 200 \r\ncontent-type: text/plain\r\ncontent-length: 92\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\nPOST /x  '1.1' [(b'host', b'a'), (b'content-length', b'2'), (b'expect', b'100-continue')]|hi<open>",
        id="expect",
    ),
    pytest.param(
        b"POST /x HTTP/1.0\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nhi",
        b"HTTP/1.1 200 \r\ncontent-type: text/plain\r\ncontent-length: 92\r\ndate: X\r\nserver: hypercorn-h11\r\nConnection: close\r\n\r\nPOST /x  '1.0' [(b'host', b'a'), (b'content-length', b'2'), (b'expect', b'100-continue')]|hi<EOF>",
        id="expect 1.0",
    ),
    pytest.param(
        b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nPOST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyzGET /stream HTTP/1.1\r\nHost: a\r\n\r\nGET /c HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 200 \r\ncontent-type: text/plain\r\ncontent-length: 32\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\nGET /a  '1.1' [(b'host', b'a')]|HTTP/1.1 200 \r\ncontent-type: text/plain\r\ncontent-length: 63\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\nPOST /b  '1.1' [(b'host', b'a'), (b'content-length', b'3')]|xyzHTTP/1.1 200 \r\ncontent-type: text/event-stream\r\ndate: X\r\nserver: hypercorn-h11\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: 0\n\n\r\n9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\nHTTP/1.1 200 \r\ncontent-type: text/plain\r\ncontent-length: 32\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\nGET /c  '1.1' [(b'host', b'a')]|<open>",
        id="pipelined",
    ),
]

APP_FAULTS = [
    pytest.param(
        b"GET /headonly HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 200 \r\ncontent-length: 4\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="headonly",
    ),
    pytest.param(
        b"GET /boom HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 500 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="boom",
    ),
    pytest.param(
        b"GET /cut HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 200 \r\ncontent-length: 10\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n12345<EOF>",
        id="cut",
    ),
    pytest.param(
        b"POST /early HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n12345",
        b"HTTP/1.1 413 \r\ncontent-length: 3\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\nbig<EOF>",
        id="early",
    ),
    pytest.param(
        b"GET /badheader HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 500 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="badheader",
    ),
]

REFUSED = [
    pytest.param(
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="cl+te",
    ),
    pytest.param(
        b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="te+cl",
    ),
    pytest.param(
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="dup cl diff",
    ),
    pytest.param(
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="dup cl same",
    ),
    pytest.param(
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\nhi",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="cl abc",
    ),
    pytest.param(
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\nhi",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="cl neg",
    ),
    pytest.param(
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\nhi",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="cl huge",
    ),
    pytest.param(
        b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nhi",
        b"HTTP/1.1 501 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="te gzip",
    ),
    pytest.param(
        b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 501 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="te gzip,chunked",
    ),
    pytest.param(
        b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 501 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="te chunked,gzip",
    ),
    pytest.param(
        b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 501 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="te dup",
    ),
    pytest.param(
        b"GET /x HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="space before colon",
    ),
    pytest.param(
        b"GET /x HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="nul",
    ),
    pytest.param(
        b"GET /x HTTP/1.1\r\nHost: a\r\nX-A: b\x01c\r\n\r\n",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="ctl value",
    ),
    pytest.param(
        b"GET /x HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="obs-fold",
    ),
    pytest.param(
        b"GET /x HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="bad name",
    ),
    pytest.param(
        b"GET /x HTTP/1.1\r\nHost: a\r\nXA\r\n\r\n",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="no colon",
    ),
    pytest.param(
        b"GET /x HTTP/1.1\r\nHost: a\rX-A: b\r\n\r\n",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="bare CR",
    ),
    pytest.param(
        b"GET /x HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="no host",
    ),
    pytest.param(
        b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="two hosts",
    ),
    pytest.param(
        b"GET /x\r\n\r\n",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="0.9",
    ),
    pytest.param(
        b"GET /x HTTP/2.0\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="http/2.0 line",
    ),
    pytest.param(
        b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="space in target",
    ),
    pytest.param(
        b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="ctl in target",
    ),
    pytest.param(
        b"GET /a\xe9b HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="high in target",
    ),
    pytest.param(
        b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n0\r\n\r\n",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="chunk bad size",
    ),
    pytest.param(
        b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhiXX0\r\n\r\n",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="chunk no crlf",
    ),
    pytest.param(
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"HTTP/1.1 505 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="prior knowledge",
    ),
    pytest.param(
        b"FOO /x HTTP/1.1\r\nHost: a\r\n\r\n",
        b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\n<EOF>",
        id="weird method",
    ),
]


@pytest.mark.parametrize(("sent", "expected"), SERVED)
def test_requests_served(served, sent, expected):
    """Bodies (length or chunked, trailers dropped), targets, header names lowered and values
    trimmed; a bare LF ends a line (as h11 allowed) and an Upgrade (h2c with HTTP/2 off) is
    served as HTTP/1.1, the connection staying HTTP/1.1."""
    assert exchange(served, sent, expected) == expected


@pytest.mark.parametrize(("sent", "expected"), FRAMED)
def test_responses_framed(served, sent, expected):
    """HEAD and 204 without a body, a body of unknown length chunked (HTTP/1.1) or ended by the
    close (HTTP/1.0), HTTP/1.0 and Connection: close closing, a 100 before the answer to
    Expect: 100-continue, pipelined requests answered in order."""
    assert exchange(served, sent, expected) == expected


@pytest.mark.parametrize(("sent", "expected"), APP_FAULTS)
def test_app_faults(served, sent, expected):
    """An app that fails before answering: a 500; one that ends its body short of its length,
    or returns after starting its answer: the connection closed; one that answers before reading the body: the connection closed
    after it; a header value with a line break: refused (a 500), never written."""
    assert exchange(served, sent, expected) == expected


@pytest.mark.parametrize(("sent", "expected"), REFUSED)
def test_requests_refused(served, sent, expected):
    """Ambiguous framing (Content-Length with Transfer-Encoding, duplicate or invalid lengths,
    unknown or repeated codings), bad header bytes (obs-fold, control bytes, names), a missing
    or repeated Host, bad request lines and chunks, and HTTP/2 prior knowledge (505): each
    answered with hypercorn's error response and the connection closed."""
    assert exchange(served, sent, expected) == expected


def test_request_head_limit(served):
    """An unfinished head past 16 KiB is a 431 (as h11's limit); a finished one under it is
    served, even when other requests came before it in the same read."""
    big = b"GET /x HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 20000
    assert exchange(served, big, b"<EOF>").startswith(b"HTTP/1.1 431 \r\n")
    head = b"GET /x HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 14000 + b"\r\n\r\n"
    small = b"GET /s HTTP/1.1\r\nHost: a\r\n\r\n" * 200
    answer = exchange(served, small + head, b"<open>")
    assert answer.count(b"HTTP/1.1 200 \r\n") == 201
    assert b"HTTP/1.1 431" not in answer


def test_trailer_limit(served):
    """A chunked body's trailer (which httptools keeps whole until its line ends) past 16 KiB is
    a 431 and the close, as h11's limit: before, the server held a trailer without bound."""
    with _connect(served) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        sock.sendall(b"1\r\na\r\n0\r\nX-Trailer: ")
        time.sleep(0.05)
        answer = b""
        try:
            for _ in range(64):  # 512 KiB of one trailer line, in reads of its own
                sock.sendall(b"a" * 8192)
                time.sleep(0.005)
        except (BrokenPipeError, ConnectionResetError):
            pass
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 431 \r\n")
    # a trailer under the limit is dropped and the request served
    trailer = b"X-Trailer: " + b"a" * 12000 + b"\r\n"
    body = b"1\r\na\r\n0\r\n" + trailer + b"\r\n"
    with _connect(served) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(body), 4000):
            sock.sendall(body[i : i + 4000])
            time.sleep(0.01)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 \r\n")


def test_unread_body_then_an_answer_closes(served):
    """A route that answers without reading a large body, after the body has filled the app's
    receive queue (hypercorn's ``max_app_queue_size``: the reads wait there), gets its answer
    out and the connection closed: the queue's waiting put and the ``http.disconnect`` no
    longer hang the connection's task (and its socket) for good."""
    with _connect(served) as sock:
        sock.sendall(b"POST /late HTTP/1.1\r\nHost: a\r\nContent-Length: 100000000\r\n\r\n")
        sock.setblocking(False)
        sent = 0
        deadline = time.monotonic() + 1.0  # the body flows until the reads stop
        while time.monotonic() < deadline:
            try:
                sent += sock.send(b"x" * 65536)
            except BlockingIOError:
                time.sleep(0.01)
            except (BrokenPipeError, ConnectionResetError):
                break  # closed by the server: the fix
        sock.settimeout(5)
        answer = b""
        try:
            while chunk := sock.recv(65536):  # a TimeoutError here: the hang
                answer += chunk
        except ConnectionResetError:
            pass  # the close found body bytes unread: the answer may go with the reset
    assert sent < 100_000_000
    assert _undated(answer) in (
        b"",
        b"HTTP/1.1 413 \r\ncontent-length: 3\r\ndate: X\r\nserver: hypercorn-h11\r\n\r\nbig",
    )


def test_a_head_trickled_in_pieces_is_served(served):
    with _connect(served) as sock:
        for piece in (
            b"GET /trick",
            b"le HTTP/1.1\r\nHo",
            b"st: a\r\nX-Lo",
            b"ng: v1",
            b"v2\r\n\r\n",
        ):
            sock.sendall(piece)
            time.sleep(0.05)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 \r\n")
    assert b"GET /trickle  '1.1' [(b'host', b'a'), (b'x-long', b'v1v2')]|" in answer


def test_streamed_body_leaves_on_each_send(served):
    """Each body message is written when the app sends it (an SSE client gets each event at
    once): the app waits for the client to hold an event before making the next."""
    _release.clear()
    with _connect(served) as sock:
        sock.sendall(b"GET /wait HTTP/1.1\r\nHost: a\r\n\r\n")
        got = b""
        for i in range(3):
            while b"data: %d\n\n" % i not in got:
                got += sock.recv(65536)
            _release.set()
        while not got.endswith(b"0\r\n\r\n"):
            got += sock.recv(65536)
    assert got.count(b"data: ") == 3


def test_slow_reader_holds_the_app_back(served):
    """A client that does not read: the app's sends wait (nothing is buffered without bound),
    and all of it arrives once the client reads."""
    _sent.clear()
    with _connect(served) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET /flood HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(1.0)
        assert len(_sent) < FLOOD_PARTS // 4
        total = 0
        while total < FLOOD_PARTS * 2**20:
            chunk = sock.recv(2**20)
            assert chunk
            total += chunk.count(b"x")
    assert len(_sent) == FLOOD_PARTS


def test_keep_alive_ends_after_hypercorns_request_cap(served):
    """hypercorn's keep_alive_max_requests (1000): its last response says ``connection:
    close`` and the connection closes; the requests pipelined after it are not answered."""
    with _connect(served) as sock:
        sock.sendall(b"GET /k HTTP/1.1\r\nHost: a\r\n\r\n" * 1001)
        got = b""
        while chunk := sock.recv(65536):
            got += chunk
    assert got.count(b"HTTP/1.1 200 \r\n") == 1000
    assert got.count(b"connection: close\r\n") == 1
    last = got.rpartition(b"HTTP/1.1 200 \r\n")[2]
    assert b"date: " in last and last.index(b"connection: close") > last.index(b"server: ")


def test_date_header_is_the_current_second(served):
    answer = exchange(served, b"GET /d HTTP/1.1\r\nHost: a\r\n\r\n", b"<open>")
    with _connect(served) as sock:
        sock.sendall(b"GET /d HTTP/1.1\r\nHost: a\r\n\r\n")
        raw = sock.recv(65536)
    stamp = re.search(rb"date: ([^\r]*)\r\n", raw)
    assert stamp is not None and answer.startswith(b"HTTP/1.1 200 \r\n")
    from email.utils import parsedate_to_datetime

    assert abs(parsedate_to_datetime(stamp.group(1).decode()).timestamp() - time.time()) < 3
    assert b"server: hypercorn-h11\r\n" in raw
