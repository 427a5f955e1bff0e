"""``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` and ``OTEL_SDK_DISABLED``: which calls
reach the in-process receiver, and the ``sampled`` flag of the ``traceparent`` sent upstream."""

from __future__ import annotations

from typing import Any

import pytest

from outcrop.testing import CallEvents, ConverseReply
from outcrop_otel.sampling import DEFAULT, SAMPLERS, Sampler, from_environment

from .common import CLIENT_SPAN, SERVER, TRACE, USER, openai_client
from .receiver import Receiver

UNSAMPLED_CLIENT = {"traceparent": f"00-{TRACE}-{CLIENT_SPAN}-00"}
SAMPLED_CLIENT = {"traceparent": f"00-{TRACE}-{CLIENT_SPAN}-01"}


def _tracing(gw: Any) -> Any:
    (tracing,) = [p for n, p in gw.gateway.pm.list_name_plugin() if n.startswith("outcrop_otel.")]
    return tracing


def _calls(gw: Any, bedrock_simulator: Any, done: CallEvents, *headers: dict[str, str]) -> list:
    """One chat call per header set; the spans the receiver got once the exporter flushed."""
    for extra in headers:
        bedrock_simulator.reply(ConverseReply("hi"), times=1)
        openai_client(gw).chat.completions.create(model="nova", messages=USER, extra_headers=extra)
    done.wait_count(len(headers))  # every other observer saw them
    _tracing(gw).exporter.shutdown()  # sends what was queued, then returns
    return [r.headers["traceparent"] for r in bedrock_simulator.requests]


@pytest.fixture
def done(outcrop_plugin) -> CallEvents:
    recorder = CallEvents()
    outcrop_plugin(recorder)
    return recorder


def test_the_default_follows_the_client_and_samples_new_traces(
    receiver: Receiver, make_gateway, bedrock_simulator, done, monkeypatch
):
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    gw = make_gateway()
    assert _tracing(gw).sampler.name == DEFAULT == "parentbased_always_on"
    sent = _calls(gw, bedrock_simulator, done, UNSAMPLED_CLIENT, {})
    roots = [s for s in receiver.spans if s.kind == SERVER]
    assert len(roots) == 1 and roots[0].trace_id != TRACE  # the new trace only
    assert sent[0].startswith(f"00-{TRACE}-") and sent[0].endswith("-00")
    assert sent[1].startswith(f"00-{roots[0].trace_id}-") and sent[1].endswith("-01")


def test_always_off_records_nothing_and_propagates_unsampled(
    receiver: Receiver, make_gateway, bedrock_simulator, done, monkeypatch
):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    gw = make_gateway()
    sent = _calls(gw, bedrock_simulator, done, SAMPLED_CLIENT, {})
    assert receiver.spans == []
    assert sent[0].startswith(f"00-{TRACE}-") and all(t.endswith("-00") for t in sent)


def test_always_on_records_a_client_trace_the_client_did_not_sample(
    receiver: Receiver, make_gateway, bedrock_simulator, done, monkeypatch
):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "ALWAYS_ON")  # names are case-insensitive
    gw = make_gateway()
    sent = _calls(gw, bedrock_simulator, done, UNSAMPLED_CLIENT)
    [root] = [s for s in receiver.spans if s.kind == SERVER]
    assert root.trace_id == TRACE and root.parent_span_id == CLIENT_SPAN
    assert sent[0].endswith("-01")


@pytest.mark.parametrize("ratio", ["0", "0.0"])
def test_parentbased_traceidratio_follows_the_client_and_samples_new_traces_by_ratio(
    receiver: Receiver, make_gateway, bedrock_simulator, done, monkeypatch, ratio
):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", ratio)
    gw = make_gateway()
    sent = _calls(gw, bedrock_simulator, done, {}, SAMPLED_CLIENT)
    [root] = [s for s in receiver.spans if s.kind == SERVER]
    assert root.trace_id == TRACE  # the client's sampled trace; the new one is not sampled
    assert sent[0].endswith("-00") and sent[1].endswith("-01")


def test_sdk_disabled_turns_tracing_off(make_gateway, bedrock_simulator, monkeypatch):
    monkeypatch.setenv("OTEL_SDK_DISABLED", "TRUE")
    gw = make_gateway()
    assert not [n for n, _ in gw.gateway.pm.list_name_plugin() if n.startswith("outcrop_otel.")]
    bedrock_simulator.reply(ConverseReply("hi"), times=1)
    openai_client(gw).chat.completions.create(
        model="nova", messages=USER, extra_headers=SAMPLED_CLIENT
    )
    assert "traceparent" not in bedrock_simulator.last().headers


def test_traceidratio_decides_from_the_trace_ids_low_64_bits():
    half = Sampler.named("traceidratio", 0.5)
    high = 0xABCD << 64  # the high bits do not count
    assert half.flags(None, high | (1 << 63) - 1) == 1
    assert half.flags(None, high | 1 << 63) == 0
    # not parent-based: the client's sampled flag is replaced, its other flags kept
    client = _parent(flags=0x03)
    assert half.flags(client, 1 << 63) == 0x02
    assert Sampler.named("always_on").flags(_parent(flags=0x00), 1 << 63) == 0x01
    assert Sampler.named("parentbased_always_off").flags(_parent(flags=0x01), 0) == 0x01
    assert Sampler.named("parentbased_always_off", 0.0).flags(None, 0) == 0


def _parent(flags: int) -> Any:
    from outcrop_otel.context import Parent

    return Parent(int(TRACE, 16), int(CLIENT_SPAN, 16), flags)


def test_the_environment_names_the_sampler_and_bad_values_are_logged_and_ignored():
    for name in SAMPLERS:
        sampler, ignored = from_environment({"OTEL_TRACES_SAMPLER": name})
        assert (sampler.name, ignored) == (name, [])
        assert sampler.ratio == (0.0 if name.endswith("always_off") else 1.0)
    sampler, ignored = from_environment(
        {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}
    )
    assert (sampler.ratio, sampler.parent_based, ignored) == (0.25, False, [])
    sampler, ignored = from_environment({"OTEL_TRACES_SAMPLER": "always-on"})
    assert sampler.name == DEFAULT
    assert ignored == [
        "OTEL_TRACES_SAMPLER: 'always-on' is not a supported sampler (one of always_on, "
        "always_off, traceidratio, parentbased_always_on, parentbased_always_off, "
        "parentbased_traceidratio); using parentbased_always_on"
    ]
    for arg in ("1.5", "-0.1", "half", "nan"):
        sampler, ignored = from_environment(
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": arg}
        )
        assert sampler.ratio == 1.0
        assert ignored == [
            f"OTEL_TRACES_SAMPLER_ARG: {arg!r} is not a probability from 0 to 1; using 1.0"
        ]
