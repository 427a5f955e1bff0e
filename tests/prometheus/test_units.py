"""How one ``CallEvent`` moves the metrics, for what the end-to-end tests cannot make happen
yet: calls retried or moved to another deployment (``CallEvent.attempts``), and error types
read from a pass-through's error text."""

from __future__ import annotations

from prometheus_client import generate_latest

import outcrop
from outcrop import Attempt, CallEvent
from outcrop.config import parse_config
from outcrop.plugins import make_plugin_manager
from outcrop_prometheus.metrics import Metrics, error_type
from outcrop_prometheus.settings import PrometheusSettings

from .common import Scrape


def _metrics() -> Metrics:
    config = parse_config(
        {
            "model_list": [
                {"model_name": "m", "litellm_params": {"model": "bedrock/converse/a", "aws_region_name": "us-east-1"}},
                {"model_name": "m", "litellm_params": {"model": "bedrock/converse/b", "aws_region_name": "us-west-2"}},
                {"model_name": "f", "litellm_params": {"model": "bedrock/converse/c", "aws_region_name": "us-west-2"}},
            ]
        }
    )  # fmt: skip
    gateway = outcrop.Gateway(config, pm=make_plugin_manager())
    return Metrics(gateway, PrometheusSettings(), multiprocess=False)


def _event(**kw: object) -> CallEvent:
    base: dict = dict(
        request_id="r", surface="chat", route="/v1/chat/completions", model="a",
        deployment="m#1", provider="p", status=200, stream=False, latency_s=1.0,
        upstream_latency_s=0.9,
    )  # fmt: skip
    return CallEvent(**{**base, **kw})


def test_retries_and_fallbacks_come_from_the_attempts():
    m = _metrics()
    m.observe(
        _event(
            deployment="f#2",
            attempts=(
                Attempt("m#0", 503, 0.1, "ServiceUnavailableException"),
                Attempt("m#0", 503, 0.1, "ServiceUnavailableException"),  # again: a retry
                Attempt("m#1", 503, 0.1, "ServiceUnavailableException"),  # failover: a retry
                Attempt("f#2", 200, 0.7),  # another model_name: a fallback
            ),
        )
    )
    m.observe(_event())  # one attempt: neither
    s = Scrape(generate_latest(m.registry).decode())
    assert s.value("outcrop_retries_total", model_name="m") == 2
    assert s.value("outcrop_retries_total", deployment="m#1") == 1
    assert s.value("outcrop_fallbacks_total") == 1
    assert s.value("outcrop_fallbacks_total", deployment="f#2", model_name="f") == 1
    assert s.value("outcrop_requests_total") == 2


def test_error_type_from_the_event_or_its_text():
    assert error_type(_event(status=429, error_type="ThrottlingException")) == "ThrottlingException"
    assert error_type(_event(status=400, error="ValidationException: bad")) == "ValidationException"
    assert error_type(_event(status=500, error="500")) == ""  # not a type name
    assert error_type(_event(status=499, error="client disconnected")) == ""
