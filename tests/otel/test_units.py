"""The OTLP writer (decoded back with ``opentelemetry-proto``) and the exporter's ``OTEL_*``
settings: traces endpoint, headers, gzip, a collector that is down."""

from __future__ import annotations

import threading
import time

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from outcrop_otel import otlp
from outcrop_otel.context import parent_of
from outcrop_otel.export import BatchExporter

from ..core.procs import free_port
from .receiver import grpc_receiver, http_receiver


def _decode(body: bytes) -> tuple[dict, dict]:
    request = ExportTraceServiceRequest.FromString(body)
    [rs] = request.resource_spans
    [ss] = rs.scope_spans
    [span] = ss.spans
    resource = {a.key: a.value.string_value for a in rs.resource.attributes}
    return resource, {"span": span, "scope": ss.scope}


def test_every_value_type_round_trips():
    attrs = {
        "s": "text é",
        "long": "x" * 300,  # a length past one varint byte
        "t": True,
        "f": False,
        "i": 7,
        "big": 2**40,
        "neg": -3,
        "d": 0.25,
        "a": ("stop", "length"),
    }
    body = otlp.request(
        {"service.name": "svc"},
        ("outcrop", "1.2"),
        [
            otlp.span(
                trace_id=2**127 + 5,
                span_id=2**63 + 7,
                parent_id=9,
                parent_remote=True,
                name="chat m",
                kind=otlp.KIND_SERVER,
                start=1_700_000_000_000_000_000,
                end=1_700_000_000_500_000_000,
                attrs=attrs,
                events=[("gen_ai.first_token", 1_700_000_000_100_000_000, {"x": 0.1})],
                status=otlp.STATUS_ERROR,
                message="ThrottlingException: slow down",
                flags=1,
            )
        ],
    )
    resource, parts = _decode(body)
    span = parts["span"]
    assert resource == {"service.name": "svc"}
    assert (parts["scope"].name, parts["scope"].version) == ("outcrop", "1.2")
    assert span.trace_id == (2**127 + 5).to_bytes(16, "big")
    assert span.span_id == (2**63 + 7).to_bytes(8, "big")
    assert span.parent_span_id == (9).to_bytes(8, "big")
    assert (span.name, span.kind) == ("chat m", 2)
    assert span.end_time_unix_nano - span.start_time_unix_nano == 500_000_000
    values = {a.key: a.value for a in span.attributes}
    assert values["s"].string_value == "text é" and values["long"].string_value == "x" * 300
    assert values["t"].bool_value is True and values["f"].bool_value is False
    assert values["i"].int_value == 7 and values["big"].int_value == 2**40
    assert values["neg"].int_value == -3 and values["d"].double_value == 0.25
    assert [v.string_value for v in values["a"].array_value.values] == ["stop", "length"]
    [event] = span.events
    assert event.name == "gen_ai.first_token" and event.attributes[0].value.double_value == 0.1
    assert span.status.code == 2 and span.status.message.startswith("Throttling")
    assert span.flags == 0x301  # sampled, parent remoteness known, parent remote


@pytest.mark.parametrize(
    "header, expected",
    [
        (b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", (1, True)),
        (b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", (0, True)),
        (b"00-00000000000000000000000000000000-00f067aa0ba902b7-01", None),
        (b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None),
        (b"garbage", None),
    ],
)
def test_traceparent_parsing(header, expected):
    parent = parent_of([(b"traceparent", header)])
    assert (None if parent is None else (parent.flags, parent.span_id > 0)) == expected


def _span() -> bytes:
    return otlp.span(
        trace_id=1, span_id=2, parent_id=None, name="n", kind=otlp.KIND_SERVER,
        start=1, end=2, attrs={},
    )  # fmt: skip


def test_http_traces_endpoint_headers_and_gzip(monkeypatch):
    with http_receiver() as (rec, url):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # not used:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url + "/custom/v1/traces")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Basic%20abc,x-team=ml")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "10")
        exporter = BatchExporter({"service.name": "s"}, ("outcrop", "0"))
        exporter.add(_span())
        rec.wait(lambda s: len(s) == 1)
        exporter.shutdown()
        path, headers = rec.requests[0]
        assert path == "/custom/v1/traces"
        assert headers["authorization"] == "Basic abc" and headers["x-team"] == "ml"
        assert headers["content-encoding"] == "gzip"


def test_grpc_metadata(monkeypatch):
    with grpc_receiver() as (rec, url):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=k1")
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "10")
        exporter = BatchExporter({"service.name": "s"}, ("outcrop", "0"))
        exporter.add(_span())
        rec.wait(lambda s: len(s) == 1)
        exporter.shutdown()
        assert rec.requests[0][1]["x-api-key"] == "k1"


def test_a_collector_that_is_down_never_blocks_and_a_full_queue_drops(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "5")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")
    exporter = BatchExporter({"service.name": "s"}, ("outcrop", "0"))
    sleeping = exporter._wake
    exporter._wake = threading.Event()  # the thread sleeps on: nothing drains the queue
    started = time.monotonic()
    for _ in range(8):
        exporter.add(_span())
    assert len(exporter.queue) == 5 and exporter.dropped == 3
    exporter._wake = sleeping
    exporter.shutdown()  # one failed try, then the spans are dropped: it returns
    assert time.monotonic() - started < 30
    assert not exporter.queue
