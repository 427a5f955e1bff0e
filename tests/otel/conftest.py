"""Fixtures: an in-process OTLP receiver (HTTP/protobuf and gRPC) the exporter is pointed at,
and gateways with the ``otel`` callback on in front of the simulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .common import gateway_config
from .receiver import Receiver, grpc_receiver, http_receiver


@pytest.fixture(params=["http/protobuf", "grpc"])
def receiver(request, monkeypatch) -> Iterator[Receiver]:
    make = grpc_receiver if request.param == "grpc" else http_receiver
    with make() as (rec, endpoint):
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", request.param)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")  # export within milliseconds
        monkeypatch.setenv("OTEL_SERVICE_NAME", "gateway-under-test")
        yield rec


@pytest.fixture
def make_gateway(gateway_factory, bedrock_simulator) -> Callable[..., Any]:
    return lambda **extra: gateway_factory(gateway_config(bedrock_simulator.url, **extra))
