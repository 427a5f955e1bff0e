"""Error hygiene: a client's value is echoed clipped (never 1 MB back, never a 2 MB log line),
the unknown-model error does not list the configured models, and ``log.exception`` lines carry
their traceback, with secrets masked."""

from __future__ import annotations

import io
import json

import httpx
import pytest

from outcrop import clip
from outcrop.errors import MAX_ECHO
from outcrop.logs import configure_logging, get_logger

from .conftest import AUTH, assert_aws_error, assert_openai_error, assert_still_serves

HUGE = "m" * 1_000_000
#: An error message quoting a clipped value stays this short (text around it included).
SHORT = 1000


@pytest.fixture
def log_stream():
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    yield stream
    configure_logging("INFO")


def log_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(x) for x in stream.getvalue().splitlines() if x.strip()]


def chat(gateway, **body) -> httpx.Response:
    return httpx.post(f"{gateway.url}/v1/chat/completions", headers=AUTH, timeout=30, json=body)


def test_clip_helper():
    assert clip("short") == "short"
    assert clip(HUGE) == "m" * MAX_ECHO + "...[1000000 characters]"
    assert clip(12345, 3) == "123...[5 characters]"


def test_unknown_model_of_1_mb_is_clipped_and_lists_no_models(gateway, log_stream):
    r = chat(gateway, model=HUGE, messages=[{"role": "user", "content": "hi"}])
    error = assert_openai_error(r, 400)
    assert error["param"] == "model"
    assert len(error["message"]) < SHORT and "[1000000 characters]" in error["message"]
    for name in ("runtime", "native"):  # configured model_names are not listed
        assert name not in error["message"]
    lines = [x for x in log_stream.getvalue().splitlines() if '"request"' in x]
    assert lines and all(len(x) < 2 * SHORT + 1000 for x in lines)
    assert_still_serves(gateway)


@pytest.mark.parametrize(
    "message",
    [
        {"role": HUGE, "content": "hi"},
        {"role": "user", "content": [{"type": HUGE}]},
    ],
)
def test_agent_plugin_echoes_clipped_values(gateway, message):
    error = assert_openai_error(chat(gateway, model="agent", messages=[message]), 400)
    assert len(error["message"]) < SHORT
    assert_still_serves(gateway)


def test_agentcore_plugin_echoes_clipped_values(gateway):
    r = chat(
        gateway, model="runtime", messages=[{"role": "user", "content": "hi"}], payload_format=HUGE
    )
    error = assert_openai_error(r, 400)
    assert len(error["message"]) < SHORT and "prompt, messages" in error["message"]


def test_passthrough_echoes_clipped_paths(gateway):
    r = httpx.post(
        f"{gateway.url}/bedrock/{'p' * 10_000}/x", headers=AUTH, timeout=10, content=b"{}"
    )
    assert len(assert_aws_error(r, 404, "UnknownOperationException")) < SHORT
    r = httpx.post(
        f"{gateway.url}/bedrock/model/native/{'%2E' * 3000}/converse",
        headers=AUTH,
        timeout=10,
        content=b"{}",
    )
    assert r.status_code in (400, 404) and len(r.json()["message"]) < SHORT
    assert_still_serves(gateway)


def test_sigv4_errors_echo_clipped_values(gateway):
    auth = (
        "AWS4-HMAC-SHA256 Credential=OUTCROPSECKEY00001/20260101/us-west-2/bedrock/"
        + "t" * 5000
        + ", SignedHeaders=host;x-amz-date, Signature="
        + "0" * 64
    )
    r = httpx.post(
        f"{gateway.url}/bedrock/model/native/converse",
        timeout=10,
        content=b"{}",
        headers={"Authorization": auth, "X-Amz-Date": "20260101T000000Z"},
    )
    message = assert_aws_error(r, 403, "IncompleteSignatureException")
    assert len(message) < SHORT and "[5000 characters]" in message
    assert_still_serves(gateway)


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "console"])
def test_log_exception_renders_the_traceback_without_secrets(as_json):
    stream = io.StringIO()
    configure_logging("INFO", json=as_json, stream=stream)
    try:
        log = get_logger("outcrop.test")

        def failing_step() -> None:
            raise RuntimeError("upstream said Bearer sk-leaked-secret for AKIAABCDEFGHIJKLMNOP")

        try:
            failing_step()
        except RuntimeError:
            log.exception("chat_failed", request_id="r-1")
    finally:
        configure_logging("INFO")
    text = stream.getvalue()
    assert "Traceback (most recent call last)" in text
    assert "failing_step" in text and "RuntimeError" in text
    assert "sk-leaked-secret" not in text and "AKIAABCDEFGHIJKLMNOP" not in text
    if as_json:
        (line,) = log_lines(stream)
        assert line["event"] == "chat_failed" and "RuntimeError" in line["exception"]
