"""A tiny blocking HTTP/1.1 client that timestamps bytes as they arrive.

For streams the figures are *when*: first byte of the response (TTFB), the moment each content
chunk's marker has fully arrived (first token, ..., last token), and the end of the body. One
keep-alive connection, ``TCP_NODELAY``, no parsing beyond framing, so the client's own cost is
tiny and identical for the gateway and the direct call. Not a throughput tool (wrk is).
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

from .surfaces import Request


@dataclass
class Timing:
    status: int
    ttfb: float  # seconds from the request's last byte sent to the first response byte
    marks: list[float] = field(default_factory=list)  # per marker, seconds (nan when missing)
    end: float = 0.0
    body: bytes = b""

    @property
    def complete(self) -> bool:
        return all(m == m for m in self.marks)  # no NaN


class Connection:
    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        if self.sock is None:
            s = socket.create_connection((self.host, self.port), timeout=self.timeout)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = s
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def request(self, req: Request, markers: tuple[bytes, ...] = ()) -> Timing:
        sock = self._connect()
        head = f"{req.method} {req.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in req.headers)
        head += f"Content-Length: {len(req.body)}\r\n\r\n"
        sock.sendall(head.encode() + req.body)
        t0 = time.perf_counter()
        reader = _Reader(sock)
        first = reader.recv()
        ttfb = time.perf_counter() - t0
        reader.buf += first
        status, headers = reader.read_head()
        timing = Timing(status, ttfb)
        body = bytearray()
        found = [float("nan")] * len(markers)
        nxt = 0
        for piece in reader.iter_body(headers):
            now = time.perf_counter() - t0
            start = max(len(body) - max((len(m) for m in markers), default=0), 0)
            body += piece
            while nxt < len(markers) and body.find(markers[nxt], start) >= 0:
                found[nxt] = now
                nxt += 1
        timing.end = time.perf_counter() - t0
        timing.marks, timing.body = found, bytes(body)
        if headers.get("connection", "").lower() == "close":
            self.close()
        return timing


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        return data

    def read_head(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        return status, headers

    def iter_body(self, headers: dict[str, str]):
        """Yield body bytes as they arrive (de-chunked), each as soon as it is readable."""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            yield from self._chunked()
            return
        remaining = int(headers.get("content-length", "0"))
        while remaining > 0:
            if not self.buf:
                self.buf = self.recv()
            piece, self.buf = self.buf[:remaining], self.buf[remaining:]
            remaining -= len(piece)
            yield piece

    def _chunked(self):
        while True:
            while b"\r\n" not in self.buf:
                self.buf += self.recv()
            size_line, self.buf = self.buf.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while b"\r\n" not in self.buf:
                    self.buf += self.recv()
                self.buf = self.buf.split(b"\r\n", 1)[1]  # no trailers expected
                return
            remaining = size
            while remaining > 0:
                if not self.buf:
                    self.buf = self.recv()
                piece, self.buf = self.buf[:remaining], self.buf[remaining:]
                remaining -= len(piece)
                yield piece
            while len(self.buf) < 2:
                self.buf += self.recv()
            self.buf = self.buf[2:]
