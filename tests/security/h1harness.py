"""The default server's HTTP/1.1 protocol (outcrop.serving.http1) driven in process over a fake
transport, next to h11 (hypercorn's former parser) fed the same bytes: what requests each saw,
for the differential tests in test_http1_differential.py."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

import h11
from hypercorn.events import Closed, RawData
from hypercorn.typing import ConnectionState

from outcrop.serving.connection import HypercornConfig
from outcrop.serving.http1 import H1Protocol

#: What one request looked like to a parser: method, target, headers (lower-cased names,
#: values as given), body.
Seen = tuple[bytes, bytes, tuple[tuple[bytes, bytes], ...], bytes]


@dataclass
class Outcome:
    seen: list[Seen] = field(default_factory=list)
    written: bytes = b""
    closed: bool = False
    errors: list[BaseException] = field(default_factory=list)

    @property
    def refused(self) -> int | None:
        """The status of a refusal (a 4xx/5xx the server wrote and then closed), if any."""
        found = re.search(rb"HTTP/1\.1 ([45]\d\d) \r\n", self.written)
        return int(found[1]) if found else None


class _Context:
    max_requests = None

    def __init__(self) -> None:
        self.terminated = asyncio.Event()

    async def mark_request(self) -> None:
        pass


class _Tasks:
    """hypercorn's task group as the protocol uses it: ``spawn_app`` runs the app and hands
    back the function that puts messages in its ``receive`` queue."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.tasks: list[asyncio.Task[None]] = []

    async def spawn_app(self, app: Any, config: Any, scope: Any, send: Any) -> Any:
        queue: asyncio.Queue[Any] = asyncio.Queue(config.max_app_queue_size)

        async def run() -> None:
            try:
                await app(scope, queue.get, send)
            except BaseException as error:  # the protocol's own send raised: record it
                self.outcome.errors.append(error)
            await send(None)

        self.tasks.append(asyncio.get_running_loop().create_task(run()))
        return queue.put


def _echo(outcome: Outcome) -> Any:
    """An app that records the request it was given and answers 200 with a short body."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        target = scope["raw_path"]
        if scope["query_string"]:
            target += b"?" + scope["query_string"]
        headers = tuple(
            (n, v.lower() if n == b"transfer-encoding" else v)  # as h11 keeps this one
            for n, v in scope["headers"]
        )
        outcome.seen.append((scope["method"].encode(), target, headers, body))
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
        )
        await send({"type": "http.response.body", "body": b"ok"})

    return app


async def _serve(chunks: list[bytes], app: Any = None) -> Outcome:
    outcome = Outcome()
    tasks = _Tasks(outcome)

    async def send(event: Any) -> None:
        if isinstance(event, Closed):
            outcome.closed = True

    async def write(data: bytes) -> None:
        outcome.written += data

    protocol = H1Protocol(
        app or _echo(outcome),
        HypercornConfig(),
        _Context(),
        tasks,
        ConnectionState({}),
        False,
        ("127.0.0.1", 1),
        ("127.0.0.1", 2),
        send,
        http2=False,
        write=write,
        set_idle=lambda idle: None,
    )
    try:
        for chunk in chunks:
            if outcome.closed:
                break
            await protocol.handle(RawData(chunk))
            for _ in range(5):  # let the app answer before the next read, as a socket would
                await asyncio.sleep(0)
        for _ in range(20):
            await asyncio.sleep(0)
        await protocol.handle(Closed())  # the client leaves (or the server closed: EOF)
        await asyncio.gather(*tasks.tasks)
    except Exception as error:  # the connection task would die of this
        outcome.errors.append(error)
    return outcome


def serve(chunks: list[bytes], app: Any = None, timeout: float = 5.0) -> Outcome:
    """The protocol's outcome for a client that sends ``chunks`` (one read each) then closes."""

    async def bounded() -> Outcome:
        return await asyncio.wait_for(_serve(chunks, app), timeout)

    return asyncio.run(bounded())


@dataclass
class H11Outcome:
    seen: list[Seen] = field(default_factory=list)
    error: str | None = None  # the ProtocolError h11 raised, if it refused the stream


def h11_parse(data: bytes) -> H11Outcome:
    """What h11 (as hypercorn drove it, 16 KiB head limit) sees in ``data``, each request
    answered 200 before the next is read."""
    outcome = H11Outcome()
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16 * 1024)
    conn.receive_data(data)
    conn.receive_data(b"")  # the client then closes
    request: h11.Request | None = None
    body = b""
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as error:
            outcome.error = str(error)
            return outcome
        if isinstance(event, h11.Request):
            request, body = event, b""
        elif isinstance(event, h11.Data):
            body += bytes(event.data)
        elif isinstance(event, h11.EndOfMessage):
            assert request is not None
            headers = tuple((bytes(n), bytes(v)) for n, v in request.headers)
            target = bytes(request.target)
            target = target[:-1] if target.endswith(b"?") else target  # as ASGI's scope has it
            outcome.seen.append((bytes(request.method), target, headers, body))
            conn.send(h11.Response(status_code=200, headers=[(b"content-length", b"2")]))
            if request.method != b"HEAD":
                conn.send(h11.Data(data=b"ok"))
            conn.send(h11.EndOfMessage())
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is not h11.DONE:
                return outcome
            conn.start_next_cycle()
        else:  # NEED_DATA, PAUSED or ConnectionClosed: nothing more to see
            return outcome
