"""Raw HTTP/1.1 over a socket for transport tests: exactly the bytes a test wants (declared
lengths that never come, unterminated chunked bodies, trickles), and a check that both dialects
still serve afterwards."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from .conftest import AUTH

#: Small on purpose: the hostile cases stay quick and small.
LIMIT = 4096
#: A 408 comes 0.5 to 1.5 s into a body (the gateway's body timers fire on whole seconds).
BODY_TIMEOUT = 0.5
CHAT_BODY = b'{"model": "agent", "messages": [{"role": "user", "content": "hi"}]}'
CONVERSE_PATH = "/bedrock/model/native/converse"
CONVERSE_BODY = b'{"messages": [{"role": "user", "content": [{"text": "hi"}]}]}'


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    raw: bytes = field(repr=False, default=b"")

    def json(self) -> Any:
        import json

        return json.loads(self.body)


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def connect(url: str, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(address(url), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_response(sock: socket.socket) -> RawResponse:
    """One HTTP/1.1 response (Content-Length or close-delimited; the gateway's errors carry a
    length). Raises ``TimeoutError`` if it does not come."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a response: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
    }
    if "content-length" in headers:
        length = int(headers["content-length"])
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    elif headers.get("transfer-encoding") == "chunked":
        while not rest.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        rest = _dechunk(rest)
    return RawResponse(status, headers, rest, data)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return out


def request_head(method: str, path: str, url: str, headers: dict[str, str]) -> bytes:
    host, port = address(url)
    lines = [f"{method} {path} HTTP/1.1", f"host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def still_serves(gw: Any) -> None:
    """The worker answers both dialects normally after a hostile request."""
    r = httpx.post(gw.url + "/v1/chat/completions", headers=AUTH, content=CHAT_BODY, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"]
    r = httpx.post(gw.url + CONVERSE_PATH, headers=AUTH, content=CONVERSE_BODY, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["output"]["message"]["content"]


def assert_openai_error(
    r: RawResponse | httpx.Response, status: int, code: str | None = None
) -> None:
    got = r.status_code if isinstance(r, httpx.Response) else r.status
    assert got == status
    body = r.json()
    assert set(body) == {"error"} and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code


def assert_aws_error(r: RawResponse | httpx.Response, status: int, error_type: str) -> None:
    got = r.status_code if isinstance(r, httpx.Response) else r.status
    assert got == status
    assert r.headers["x-amzn-errortype"] == error_type
    assert set(r.json()) == {"message"}
