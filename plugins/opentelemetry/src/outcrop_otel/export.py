"""The batch exporter: a queue the calls fill and one thread that sends OTLP requests.

Configured by the standard variables (the OpenTelemetry SDK's names and defaults):

- ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (used as is), else ``OTEL_EXPORTER_OTLP_ENDPOINT``
  (``/v1/traces`` appended for HTTP); default ``http://localhost:4318`` (HTTP) or
  ``http://localhost:4317`` (gRPC);
- ``OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL``: ``http/protobuf`` (default) or ``grpc``;
- ``OTEL_EXPORTER_OTLP[_TRACES]_HEADERS`` (``k=v,k2=v2``, URL-encoded values),
  ``..._TIMEOUT`` (seconds, default 10), ``..._COMPRESSION`` (``gzip``), ``..._CERTIFICATE``
  (a CA file for https), ``..._INSECURE`` (gRPC without TLS);
- ``OTEL_BSP_SCHEDULE_DELAY`` (ms, 5000), ``OTEL_BSP_MAX_QUEUE_SIZE`` (2048),
  ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` (512).

A full queue drops spans (counted, logged at most once a minute); a failed request is retried
with backoff within the timeout, then its spans are dropped and logged. Nothing here ever
blocks a call.
"""

from __future__ import annotations

import gzip
import http.client
import os
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import structlog

from . import otlp
from .settings import Target

log = structlog.get_logger("outcrop.otel")

PROTOCOLS = ("http/protobuf", "grpc")
_GRPC_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_RETRYABLE_HTTP = {429, 502, 503, 504}


def env(name: str, default: str | None = None) -> str | None:
    """``OTEL_EXPORTER_OTLP_TRACES_<name>``, else ``OTEL_EXPORTER_OTLP_<name>``."""
    value = os.environ.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}")
    if value is None:
        value = os.environ.get(f"OTEL_EXPORTER_OTLP_{name}")
    return default if value is None or not value.strip() else value.strip()


def protocol() -> str:
    return env("PROTOCOL", "http/protobuf") or "http/protobuf"


def _headers() -> dict[str, str]:
    out = {}
    for item in (env("HEADERS", "") or "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            out[key.strip().lower()] = unquote(value.strip())
    return out


def _int(name: str, default: int) -> int:
    try:
        return max(int(os.environ.get(name, default)), 1)
    except ValueError:
        return default


class _Http:
    """POSTs to the OTLP/HTTP traces endpoint over one kept-alive connection."""

    def __init__(self, timeout: float, target: Target | None = None) -> None:
        traces = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        if target is not None:
            url = target.url
        elif traces:
            url = traces.strip()
        else:
            base = (env("ENDPOINT", "http://localhost:4318") or "").rstrip("/")
            url = base + "/v1/traces"
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (443 if self.https else 80)
        self.path = parts.path or "/v1/traces"
        self.timeout = timeout
        self.gzip = env("COMPRESSION") == "gzip"
        extra = _headers() if target is None else target.headers
        self.headers = {"content-type": "application/x-protobuf", **extra}
        if self.gzip:
            self.headers["content-encoding"] = "gzip"
        self.context: ssl.SSLContext | None = None
        if self.https:
            self.context = ssl.create_default_context(cafile=env("CERTIFICATE"))
        self._conn: http.client.HTTPConnection | None = None

    def send(self, body: bytes) -> bool | None:
        """True: accepted; False: refused for good; None: worth retrying."""
        if self.gzip:
            body = gzip.compress(body)
        try:
            if self._conn is None:
                self._conn = (
                    http.client.HTTPSConnection(
                        self.host, self.port, timeout=self.timeout, context=self.context
                    )
                    if self.https
                    else http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                )
            self._conn.request("POST", self.path, body, self.headers)
            response = self._conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            log.warning("otlp_export_failed", error=f"{type(exc).__name__}: {exc}")
            return None
        if response.status < 300:
            return True
        log.warning("otlp_export_refused", status=response.status)
        return None if response.status in _RETRYABLE_HTTP else False

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _Grpc:
    """Calls ``TraceService/Export`` with the already-encoded request."""

    def __init__(self, timeout: float) -> None:
        import grpc

        endpoint = env("ENDPOINT", "http://localhost:4317") or ""
        parts = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
        target = f"{parts.hostname or 'localhost'}:{parts.port or 4317}"
        insecure = parts.scheme == "http" or (env("INSECURE", "") or "").lower() == "true"
        if insecure:
            self.channel = grpc.insecure_channel(target)
        else:
            cafile = env("CERTIFICATE")
            root = open(cafile, "rb").read() if cafile else None  # noqa: SIM115 (read once)
            self.channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root))
        compression = grpc.Compression.Gzip if env("COMPRESSION") == "gzip" else None
        self.call: Callable[..., Any] = self.channel.unary_unary(_GRPC_METHOD)
        self.metadata = tuple(_headers().items())
        self.timeout = timeout
        self.compression = compression
        self._grpc = grpc

    def send(self, body: bytes) -> bool | None:
        grpc = self._grpc
        try:
            self.call(
                body, timeout=self.timeout, metadata=self.metadata, compression=self.compression
            )
            return True
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            log.warning("otlp_export_failed", error=str(code))
            retryable = {
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                grpc.StatusCode.ABORTED,
            }
            return None if code in retryable else False

    def close(self) -> None:
        self.channel.close()


class BatchExporter:
    """Queues encoded spans; a daemon thread sends them in batches."""

    def __init__(
        self, resource: Mapping[str, Any], scope: tuple[str, str], target: Target | None = None
    ) -> None:
        self.resource = dict(resource)
        self.scope = scope
        self.timeout = float(env("TIMEOUT", "10") or 10)
        if self.timeout > 1000:  # the SDK's old millisecond spelling
            self.timeout /= 1000
        self.delay = _int("OTEL_BSP_SCHEDULE_DELAY", 5000) / 1000
        self.max_queue = _int("OTEL_BSP_MAX_QUEUE_SIZE", 2048)
        self.batch = min(_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512), self.max_queue)
        self.transport: _Http | _Grpc = (
            _Http(self.timeout, target)
            if target is not None
            else _Grpc(self.timeout)
            if protocol() == "grpc"
            else _Http(self.timeout)
        )
        self.queue: deque[bytes] = deque()
        self.dropped = 0
        self._logged_drop = 0.0
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="outcrop-otlp", daemon=True)
        self._thread.start()

    def add(self, encoded: bytes) -> None:
        """Queue one span (called on the event loop: an append, nothing more)."""
        if len(self.queue) >= self.max_queue:
            self.dropped += 1
            now = time.monotonic()
            if now - self._logged_drop > 60:
                self._logged_drop = now
                log.warning("otlp_queue_full", dropped_total=self.dropped, queue=self.max_queue)
            return
        self.queue.append(encoded)
        if len(self.queue) >= self.batch:
            self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.delay)
            self._wake.clear()
            stopping = self._stopping
            while self.queue:
                self._send_batch()
            if stopping:
                self.transport.close()
                return

    def _send_batch(self) -> None:
        spans = []
        while self.queue and len(spans) < self.batch:
            spans.append(self.queue.popleft())
        body = otlp.request(self.resource, self.scope, spans)
        deadline = time.monotonic() + self.timeout
        pause = 0.5
        while True:
            result = self.transport.send(body)
            if result is not None:
                if result is False:
                    log.warning("otlp_spans_dropped", spans=len(spans))
                return
            if self._stopping or time.monotonic() + pause > deadline:
                log.warning("otlp_spans_dropped", spans=len(spans))
                return
            time.sleep(pause)
            pause *= 2

    def shutdown(self, timeout: float | None = None) -> None:
        """Send what is queued, then stop the thread (blocks up to ``timeout`` seconds)."""
        self._stopping = True
        self._wake.set()
        self._thread.join(self.timeout + 5 if timeout is None else timeout)
