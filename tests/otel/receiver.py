"""An in-process OTLP receiver (HTTP/protobuf and gRPC) that decodes what the exporter sends
with ``opentelemetry-proto``, so tests read the spans exactly as a collector would."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from outcrop.testing import ServerThread


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(x) for x in v.array_value.values)
    return getattr(v, kind) if kind else None


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    start: int
    end: int
    status: int
    attributes: dict[str, Any]
    events: list[tuple[str, int, dict[str, Any]]]
    resource: dict[str, Any] = field(default_factory=dict)


class Receiver:
    """Collects every exported span."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        #: The headers (HTTP) or metadata (gRPC) of every export request, and its path.
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._changed = threading.Condition()

    def add(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        found = []
        for rs in request.resource_spans:
            resource = {a.key: _value(a.value) for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    found.append(
                        Span(
                            name=s.name,
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_span_id=s.parent_span_id.hex(),
                            kind=s.kind,
                            start=s.start_time_unix_nano,
                            end=s.end_time_unix_nano,
                            status=s.status.code,
                            attributes={a.key: _value(a.value) for a in s.attributes},
                            events=[
                                (
                                    e.name,
                                    e.time_unix_nano,
                                    {a.key: _value(a.value) for a in e.attributes},
                                )
                                for e in s.events
                            ],
                            resource=resource,
                        )
                    )
        with self._changed:
            self.spans.extend(found)
            self._changed.notify_all()

    def wait(self, predicate: Callable[[list[Span]], bool], timeout: float = 20.0) -> list[Span]:
        """The spans once ``predicate`` holds for them (fails after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.spans):
                left = deadline - time.monotonic()
                assert left > 0, f"spans never matched: {[s.name for s in self.spans]}"
                self._changed.wait(left)
            return list(self.spans)

    # -- HTTP/protobuf: POST /v1/traces ----------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status = 404
        answer = b""
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.requests.append((scope["path"], headers))
        if headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        if scope["path"].endswith("/v1/traces") and scope["method"] == "POST":
            self.add(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
            status, answer = 200, trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/x-protobuf")],
            }
        )
        await send({"type": "http.response.body", "body": answer})


class _Servicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    def Export(self, request: Any, context: Any) -> Any:
        self.receiver.requests.append(("grpc", dict(context.invocation_metadata())))
        self.receiver.add(request)
        return trace_service_pb2.ExportTraceServiceResponse()


@contextmanager
def http_receiver() -> Iterator[tuple[Receiver, str]]:
    """A receiver on loopback, and the ``OTEL_EXPORTER_OTLP_ENDPOINT`` that reaches it."""
    receiver = Receiver()
    with ServerThread(receiver) as server:
        yield receiver, server.url


@contextmanager
def grpc_receiver() -> Iterator[tuple[Receiver, str]]:
    import grpc

    receiver = Receiver()
    server = grpc.server(ThreadPoolExecutor(2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Servicer(receiver), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield receiver, f"http://127.0.0.1:{port}"
    finally:
        server.stop(0)
