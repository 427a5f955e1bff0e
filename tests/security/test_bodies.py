"""Request bodies on every route: counted as they arrive (413 past `max_request_bytes` whatever
the framing), bounded in time (408 past `body_timeout`), answered in the caller's dialect, and
the worker serves normally afterwards. On the default server (every route, both dialects), and
on granian and uvicorn (`--server NAME`) where the server's own code takes part: each framing
and timing, on one route (the dialect of an answer is the gateway's code, the same on every
server)."""

from __future__ import annotations

import time

import httpx
import pytest

from .conftest import AUTH, MASTER_KEY
from .rawhttp import (
    BODY_TIMEOUT,
    CHAT_BODY,
    CONVERSE_BODY,
    CONVERSE_PATH,
    LIMIT,
    assert_aws_error,
    assert_openai_error,
    chunk,
    connect,
    read_response,
    request_head,
    still_serves,
)

#: (path, dialect): every route that reads a body.
ROUTES = [
    ("/v1/chat/completions", "openai"),
    ("/chat/completions", "openai"),
    ("/v1/embeddings", "openai"),
    ("/embeddings", "openai"),
    (CONVERSE_PATH, "aws"),
    ("/bedrock/model/native/invoke", "aws"),
    ("/bedrock/agents/AGENT123/agentAliases/ALIAS123/sessions/s1/text", "aws"),
]
#: (server, path, dialect): every route on the default server, the chat route on the others.
SERVER_ROUTES = [("hypercorn", path, dialect) for path, dialect in ROUTES] + [
    (server, *ROUTES[0]) for server in ("granian", "uvicorn")
]
#: (server, path, dialect, chunk size) for the chunked count: every size on the default server,
#: the smallest (the most chunks to count) on the others.
CHUNKED_CASES = [
    (server, path, dialect, size)
    for server, path, dialect in SERVER_ROUTES
    for size in ((256, 1024, LIMIT + 1) if server == "hypercorn" else (256,))
]
BASE_HEADERS = {"authorization": f"Bearer {MASTER_KEY}", "content-type": "application/json"}


def _assert_too_large(r, dialect: str) -> None:
    if dialect == "openai":
        assert_openai_error(r, 413, "request_too_large")
    else:
        assert_aws_error(r, 413, "ValidationException")
    assert "max_request_bytes" in r.json().get("message", r.json().get("error", {}).get("message"))


def _assert_timed_out(r, dialect: str) -> None:
    if dialect == "openai":
        assert_openai_error(r, 408, "request_timeout")
    else:
        assert_aws_error(r, 408, "RequestTimeoutException")


@pytest.fixture
def served(request, module_cli_server):
    """The bounded gateway on the server named by the test's parameter (on granian and uvicorn
    one `outcrop serve` for the module: every test leaves it serving, as it checks)."""
    if request.param == "hypercorn":
        return request.getfixturevalue("bounded_gateway")
    return module_cli_server(
        "--server", request.param, max_request_bytes=LIMIT, body_timeout=BODY_TIMEOUT
    )


def _exchange(gw, path: str, headers: dict[str, str], parts: list[bytes]):
    with connect(gw.url) as sock:
        sock.sendall(request_head("POST", path, gw.url, {**BASE_HEADERS, **headers}))
        for part in parts:
            sock.sendall(part)
        return read_response(sock)


@pytest.mark.parametrize(("served", "path", "dialect"), SERVER_ROUTES, indirect=["served"])
def test_declared_length_over_the_limit_is_refused_before_the_body(
    served, bedrock_simulator, path, dialect
):
    r = _exchange(served, path, {"content-length": str(LIMIT + 1)}, [])  # no body byte sent
    _assert_too_large(r, dialect)
    assert bedrock_simulator.requests == []
    still_serves(served)


@pytest.mark.parametrize(("served", "path", "dialect", "size"), CHUNKED_CASES, indirect=["served"])
def test_chunked_body_is_counted_as_it_arrives(served, bedrock_simulator, path, dialect, size):
    """A chunked body never ends: the 413 comes once the count passes the limit."""
    parts = [chunk(b"x" * size) for _ in range(LIMIT // size + 1)]
    r = _exchange(served, path, {"transfer-encoding": "chunked"}, parts)  # no terminating chunk
    _assert_too_large(r, dialect)
    assert bedrock_simulator.requests == []
    still_serves(served)


@pytest.mark.parametrize(("served", "path", "dialect"), SERVER_ROUTES, indirect=["served"])
def test_complete_chunked_body_over_the_limit(served, bedrock_simulator, path, dialect):
    r = _exchange(
        served,
        path,
        {"transfer-encoding": "chunked"},
        [chunk(b" " * (LIMIT - 10)), chunk(b"x" * 20), b"0\r\n\r\n"],
    )
    _assert_too_large(r, dialect)
    assert bedrock_simulator.requests == []
    still_serves(served)


@pytest.mark.parametrize("served", ["hypercorn", "granian", "uvicorn"], indirect=True)
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_chat_body_of_exactly_the_limit_is_served(served, framing):
    body = CHAT_BODY[:-1] + b" " * (LIMIT - len(CHAT_BODY)) + b"}"
    assert len(body) == LIMIT
    if framing == "chunked":
        r = httpx.post(
            served.url + "/v1/chat/completions",
            headers=AUTH,
            content=iter([body[:100], body[100:]]),
        )
    else:
        r = httpx.post(served.url + "/v1/chat/completions", headers=AUTH, content=body)
    assert r.status_code == 200, r.text
    over = body[:-1] + b" }"
    r = httpx.post(served.url + "/v1/chat/completions", headers=AUTH, content=iter([over]))
    assert_openai_error(r, 413, "request_too_large")


def test_chunked_chat_body_over_the_limit_is_never_sent_upstream(
    bounded_gateway, bedrock_simulator
):
    """A valid request padded past the limit and sent chunked (no Content-Length)."""
    body = CHAT_BODY[:-1] + b" " * (LIMIT * 3) + b"}"
    r = httpx.post(
        bounded_gateway.url + "/v1/chat/completions",
        headers=AUTH,
        content=iter([body[i : i + 1000] for i in range(0, len(body), 1000)]),
    )
    assert_openai_error(r, 413, "request_too_large")
    assert bedrock_simulator.requests == []
    still_serves(bounded_gateway)


def test_chunked_converse_over_the_limit_is_never_sent_upstream(bounded_gateway, bedrock_simulator):
    body = CONVERSE_BODY[:-1] + b" " * (LIMIT * 3) + b"}"
    r = httpx.post(
        bounded_gateway.url + CONVERSE_PATH,
        headers=AUTH,
        content=iter([body[:LIMIT], body[LIMIT:]]),
    )
    assert_aws_error(r, 413, "ValidationException")
    assert bedrock_simulator.requests == []
    still_serves(bounded_gateway)


@pytest.mark.parametrize(("served", "path", "dialect"), SERVER_ROUTES, indirect=["served"])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_slow_body_gets_408(served, bedrock_simulator, path, dialect, framing):
    """Part of the body, then silence: the answer is a 408 once `body_timeout` has passed."""
    headers = (
        {"content-length": "100"}
        if framing == "content-length"
        else {"transfer-encoding": "chunked"}
    )
    first = b'{"messages": ' if framing == "content-length" else chunk(b'{"messages": ')
    started = time.monotonic()
    r = _exchange(served, path, headers, [first])
    assert time.monotonic() - started >= BODY_TIMEOUT
    _assert_timed_out(r, dialect)
    assert r.headers.get("connection") == "close"
    assert bedrock_simulator.requests == []
    still_serves(served)


@pytest.mark.parametrize(("served", "path", "dialect"), SERVER_ROUTES, indirect=["served"])
def test_trickled_body_gets_408(served, bedrock_simulator, path, dialect):
    """A byte at a time, each well inside the timeout: the whole body is what is bounded."""
    with connect(served.url) as sock:
        sock.sendall(
            request_head("POST", path, served.url, {**BASE_HEADERS, "content-length": "1000"})
        )
        deadline = time.monotonic() + 30
        sock.settimeout(0.1)
        response = None
        while response is None and time.monotonic() < deadline:
            try:
                sock.sendall(b" ")
                data = sock.recv(65536, 0x40 | 0x2)  # MSG_DONTWAIT | MSG_PEEK
                if data:
                    response = data
            except (BlockingIOError, TimeoutError):
                pass
            time.sleep(0.1)
        sock.settimeout(10)
        r = read_response(sock)
    _assert_timed_out(r, dialect)
    assert bedrock_simulator.requests == []
    still_serves(served)


@pytest.mark.parametrize(("served", "path", "dialect"), SERVER_ROUTES, indirect=["served"])
def test_client_gone_mid_body(served, bedrock_simulator, path, dialect):
    with connect(served.url) as sock:
        sock.sendall(
            request_head("POST", path, served.url, {**BASE_HEADERS, "content-length": "1000"})
        )
        sock.sendall(b'{"messages": [')
    still_serves(served)
    assert all(r.operation in ("Converse", "InvokeAgent") for r in bedrock_simulator.requests)
    assert len(bedrock_simulator.requests) == 2  # only still_serves' two calls went upstream


def test_read_body_keeps_a_foreign_cancellation_and_its_own_timeout_apart():
    """Shutdown cancelling a request mid-body stays a cancellation, never a 408; the body
    timeout is a 408, and many reads share one timer per second."""
    import asyncio

    from outcrop import OutcropError, read_body
    from outcrop.bodies import _expiry

    async def never() -> dict:
        await asyncio.Event().wait()
        return {}

    async def main() -> None:
        reader = asyncio.create_task(read_body(never, limit=10, timeout=30))
        await asyncio.sleep(0)
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        earlier = set(_expiry().buckets)  # the cancelled read's second stays until it passes
        readers = [asyncio.create_task(read_body(never, limit=10, timeout=0.01)) for _ in range(50)]
        await asyncio.sleep(0)
        # 50 reads, at most two one-second timers (two when they straddle a second)
        assert len(set(_expiry().buckets) - earlier) <= 2
        for reader in readers:
            with pytest.raises(OutcropError) as caught:
                await reader
            assert caught.value.status == 408
        assert not any(_expiry().buckets.values())  # nothing left registered

    asyncio.run(main())
