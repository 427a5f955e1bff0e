"""A Bedrock data plane on one plain-HTTP host, for tests and demos.

``BedrockSimulator`` is a plain ASGI app that answers bedrock-runtime, bedrock-agent-runtime
and bedrock-agentcore requests. Like AWS it routes on the raw path and method, verifies the
SigV4 signature of every request (with botocore's signer steps, independent of Outcrop's own),
checks the signing name per service and validates what AWS validates, then answers with a
scripted reply or an echo. Every request is recorded for assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Scope, Send

from outcrop.operations import (
    DATA_PLANE_SERVICES,
    Operation,
    OperationMatch,
    match_operation,
    operation_table,
    service_model,
)
from outcrop.sigv4_verify import SigV4Error, verify_sigv4

from . import claude, embeddings, validation
from .defaults import default_reply
from .recorded import RecordedRequest
from .replies import HttpError, Rendered, ReplyLike

TEST_ACCESS_KEY = "AKIDOUTCROPTEST00001"
TEST_SECRET_KEY = "outcrop/test/secret/key/0000000000000000"


@dataclass
class Script:
    """A queued reply: used for requests matching ``operation``, ``path`` and ``region``,
    ``times`` times."""

    reply: ReplyLike
    operation: str | None = None
    path: re.Pattern[str] | None = None
    times: int | None = None
    region: str | None = None

    def matches(self, request: RecordedRequest) -> bool:
        if self.operation is not None and self.operation != request.operation:
            return False
        if self.region is not None and self.region != request.region:
            return False
        return self.path is None or self.path.search(request.path) is not None


class BedrockSimulator:
    """ASGI app speaking the three Bedrock data planes, with SigV4 checks and scripting.

    ``keys`` adds access-key/secret pairs to the test pair; ``bearer_tokens`` are the Bedrock
    API keys accepted (bedrock-runtime only, as on AWS). ``url`` is set by whoever serves it.
    """

    def __init__(
        self,
        keys: Mapping[str, str] | None = None,
        *,
        bearer_tokens: Iterable[str] = (),
        max_skew_s: int = 900,
    ) -> None:
        self.keys = {TEST_ACCESS_KEY: TEST_SECRET_KEY, **(keys or {})}
        self.bearer_tokens = set(bearer_tokens)
        self.max_skew_s = max_skew_s
        self.url = ""
        self.requests: list[RecordedRequest] = []
        #: Requests being answered right now, and the most there ever were at once (since
        #: ``reset``): what a concurrency limit in front of the simulator let through.
        self.in_flight = 0
        self.max_in_flight = 0
        self._scripts: list[Script] = []
        self._lock = threading.Lock()  # tests script from their thread while the app serves
        operation_table()  # load the service models now, not on the first request
        for service in DATA_PLANE_SERVICES:
            service_model(service)  # the shapes requests are validated against, likewise

    # --- scripting -----------------------------------------------------------------------------

    def reply(
        self,
        reply: ReplyLike,
        *,
        operation: str | None = None,
        path: str | None = None,
        times: int | None = None,
        region: str | None = None,
    ) -> Script:
        """Answer matching requests with ``reply``; the first matching script wins.

        ``path`` is a regex searched in the decoded path; ``region`` the region a request was
        signed for (a deployment's: fail one region, serve from another); ``times=None``
        never runs out.
        """
        script = Script(reply, operation, re.compile(path) if path else None, times, region)
        with self._lock:
            self._scripts.append(script)
        return script

    def reset(self) -> None:
        """Forget recorded requests and queued replies."""
        with self._lock:
            self._scripts.clear()
            self.requests.clear()
            self.max_in_flight = self.in_flight

    def last(self, operation: str | None = None) -> RecordedRequest:
        """The most recent request (for ``operation``); ``LookupError`` when there is none."""
        for request in reversed(self.requests):
            if operation is None or request.operation == operation:
                return request
        raise LookupError(f"no {operation or ''} request recorded".replace("  ", " "))

    def _take_script(self, request: RecordedRequest) -> ReplyLike | None:
        with self._lock:
            for script in self._scripts:
                if script.matches(request):
                    if script.times is not None:
                        script.times -= 1
                        if script.times <= 0:
                            self._scripts.remove(script)
                    return script.reply
        return None

    # --- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        request = RecordedRequest(
            method=scope["method"],
            raw_path=scope.get("raw_path", scope["path"].encode()).decode("latin-1"),
            raw_query=scope.get("query_string", b"").decode("latin-1"),
            headers=_header_dict(scope["headers"]),
            body=body,
            request_id=str(uuid.uuid4()),
        )
        self.requests.append(request)
        self.in_flight += 1  # one event loop: no lock needed
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            rendered = await self._answer(request, scope["headers"])
            request.status = rendered.status
            await _send(rendered, request, receive, send)
        finally:
            self.in_flight -= 1

    async def _answer(
        self, request: RecordedRequest, raw_headers: list[tuple[bytes, bytes]]
    ) -> Rendered:
        found = match_operation(request.method, request.raw_path)
        if found is None:
            return self._reject(
                request,
                HttpError(
                    404,
                    "UnknownOperationException",
                    f"No operation matches {request.method} {request.raw_path}",
                ),
            )
        operation = found.operation
        request.service, request.operation = operation.service, operation.name
        request.params = found.decoded_labels()
        error = self._authenticate(request, operation, raw_headers)
        if error is not None:
            return self._reject(request, error)
        error = self._validate(request, found)
        if error is not None:
            return self._reject(request, error)
        reply = self._take_script(request) or default_reply(request, operation)
        try:
            return await _render(reply, request)
        except Exception as exc:  # a broken script must answer, not kill the worker
            return HttpError(
                500, "InternalServerException", f"simulator reply failed: {exc!r}"
            ).render(request)

    def _reject(self, request: RecordedRequest, error: HttpError) -> Rendered:
        request.error = error.code
        return error.render(request)

    def _authenticate(
        self, request: RecordedRequest, operation: Operation, raw_headers: list[tuple[bytes, bytes]]
    ) -> HttpError | None:
        authorization = request.headers.get("authorization", "")
        if authorization[:7].lower() == "bearer " and operation.bearer_auth:
            if authorization[7:].strip() in self.bearer_tokens:
                request.auth = "bearer"
                return None
            return HttpError(
                403,
                "UnrecognizedClientException",
                "The API key included in the request is invalid.",
            )
        try:
            identity = verify_sigv4(
                request.method,
                request.raw_path,
                request.raw_query,
                raw_headers,
                request.body,
                self.keys.get,
                expected_service=operation.signing_name,
                max_skew_s=self.max_skew_s,
                engine="botocore",
            )
        except SigV4Error as exc:
            return HttpError(exc.status, exc.code, exc.message)
        request.auth = "sigv4"
        request.access_key, request.region = identity.access_key, identity.region
        request.signing_service = identity.service
        return None

    def _validate(self, request: RecordedRequest, found: OperationMatch) -> HttpError | None:
        model = found.operation.model
        body: Any = None
        if model.input_shape is not None and not model.input_shape.serialization.get("payload"):
            try:
                body = request.json() or {}
            except ValueError as exc:
                return HttpError(400, "ValidationException", f"Malformed request body: {exc}")
            if not isinstance(body, dict):
                return HttpError(
                    400, "ValidationException", "The request body must be a JSON object"
                )
        query = request.query
        for member, shape in model.input_shape.members.items() if model.input_shape else ():
            if shape.serialization.get("location") == "querystring":
                wire = shape.serialization.get("name", member)
                if wire in query:
                    request.params[member] = query[wire]
        problems = validation.validate(found, request.headers, query, body)
        if (
            not problems
            and isinstance(body, dict)
            and found.operation.service in validation.DEEP_VALIDATION
        ):
            problems = validation.validate_body(found, body)
        embedding = embeddings.for_request(request)
        if not problems and embedding is not None:
            problems = embeddings.validate(*embedding)
        if not problems:
            complaint = claude.check_request(request)
            if complaint is not None:
                return HttpError(400, "ValidationException", complaint)
        if not problems:
            return None
        count = f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} detected: "
        extra = (
            {"reason": "FieldValidationFailed"}
            if found.operation.service == "bedrock-agentcore"
            else {}
        )
        return HttpError(400, "ValidationException", count + "; ".join(problems), **extra)


async def _render(reply: ReplyLike, request: RecordedRequest) -> Rendered:
    if not hasattr(reply, "render"):
        produced = reply(request)
        reply = await produced if inspect.isawaitable(produced) else produced
    return reply.render(request)


def _header_dict(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in raw:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        out[key] = f"{out[key]}, {text}" if key in out else text
    return out


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _send(rendered: Rendered, request: RecordedRequest, receive: Receive, send: Send) -> None:
    """Send each part as soon as it is produced; stop early if the client goes away."""
    headers = [(k.lower().encode(), str(v).encode()) for k, v in rendered.headers]
    headers.append((b"x-amzn-requestid", request.request_id.encode()))
    parts: Iterable[bytes] = rendered.parts
    if isinstance(parts, list | tuple) and len(parts) <= 1 and not rendered.delay:
        headers.append((b"content-length", str(sum(len(p) for p in parts)).encode()))
    await send({"type": "http.response.start", "status": rendered.status, "headers": headers})
    gone = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()

    watcher = asyncio.create_task(watch())
    try:
        for index, part in enumerate(parts):
            if index and rendered.delay:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(gone.wait(), rendered.delay)
            if gone.is_set():
                request.disconnected = True
                return
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        watcher.cancel()


@dataclass
class RunningSimulator:
    """A simulator being served: ``url`` to point clients at, ``app`` to script and inspect."""

    url: str
    app: BedrockSimulator


@contextlib.contextmanager
def running_simulator(
    simulator: BedrockSimulator | None = None, **server_options: Any
) -> Iterator[RunningSimulator]:
    """Serve a ``BedrockSimulator`` (a new one by default) on a free local port."""
    from .server import ServerThread

    app = simulator or BedrockSimulator()
    with ServerThread(app, **server_options) as server:
        app.url = server.url
        yield RunningSimulator(server.url, app)
