"""Access log: one structured line per call with the documented fields, and no secret ever."""

import io
import json

import openai
import pytest

from outcrop.logs import configure_logging, get_logger
from outcrop.testing import TEST_SECRET_KEY
from outcrop.testing.replies import ConverseReply

from .converse_plugin import ConversePlugin


@pytest.fixture
def log_stream():
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    yield stream
    configure_logging("INFO")


def lines(stream):
    return [json.loads(x) for x in stream.getvalue().splitlines() if x.strip()]


def test_access_log_line_per_request_without_secrets(
    log_stream, outcrop_plugin, gateway_factory, simulator_params, bedrock_simulator
):
    outcrop_plugin(ConversePlugin(), "testprov")
    gw = gateway_factory(
        {
            "model_list": [
                {
                    "model_name": "m",
                    "litellm_params": simulator_params("testprov/amazon.nova-lite-v1:0"),
                }
            ],
            "general_settings": {"master_key": "sk-very-secret-master"},
        }
    )
    bedrock_simulator.reply(ConverseReply("hello", usage=(4, 2)))
    client = openai.OpenAI(base_url=gw.url, api_key="sk-very-secret-master", max_retries=0)
    client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-request-id": "req-log-1"},
    )
    bad = openai.OpenAI(base_url=gw.url, api_key="sk-wrong-guess", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    access = [e for e in lines(log_stream) if e.get("event") == "request"]
    ok = next(e for e in access if e["request_id"] == "req-log-1")
    assert ok["status"] == 200 and ok["model"] == "m" and ok["deployment"] == "m#0"
    assert ok["prompt_tokens"] == 4 and ok["completion_tokens"] == 2
    assert ok["latency_ms"] >= ok["upstream_ms"] >= 0 and ok["route"] == "/chat/completions"
    assert any(e["status"] == 401 for e in access)
    text = log_stream.getvalue()
    for secret in ("sk-very-secret-master", "sk-wrong-guess", TEST_SECRET_KEY):
        assert secret not in text


def test_redaction_processor_masks_secret_keys_and_values(log_stream):
    log = get_logger("t")
    log.info(
        "headers",
        headers={"Authorization": "Bearer sk-abc", "x-amz-security-token": "tok", "accept": "json"},
        aws_secret_access_key="s3cr3t",
        note="key AKIAABCDEFGHIJKLMNOP used",
        prompt_tokens=5,
    )
    (event,) = lines(log_stream)
    assert (
        event["headers"]["Authorization"] == "***"
        and event["headers"]["x-amz-security-token"] == "***"
    )
    assert event["headers"]["accept"] == "json"
    assert event["aws_secret_access_key"] == "***"
    assert "AKIAABCDEFGHIJKLMNOP" not in event["note"]
    assert event["prompt_tokens"] == 5


def test_redaction_masks_every_secret_spelling_wherever_it_is(log_stream):
    """Each value pattern (bearer token, SigV4 credential, AKIA/ASIA/AKID key ids) is masked in
    the message, in plain fields and inside lists and dicts; other text and numbers stay."""
    log = get_logger("t")
    log.info(
        "sent Bearer sk-in-message",
        sig="AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE0001/20261130/us-west-2/bedrock/aws4_request",
        ids=["ASIAABCDEFGHIJKL", ("AKIDABCDEFGHIJKL", 3)],
        nested={"inner": {"why": "Bearer sk-nested"}},
        plain="nothing to hide: Bear er, AKI, AWS4",
        ratio=0.5,
        ok=True,
    )
    (event,) = lines(log_stream)
    assert event["event"] == "sent Bearer ***"
    assert event["sig"] == "AWS4-HMAC-SHA256 Credential=***"
    assert event["ids"] == ["***", ["***", 3]]
    assert event["nested"] == {"inner": {"why": "Bearer ***"}}
    assert event["plain"] == "nothing to hide: Bear er, AKI, AWS4"
    assert event["ratio"] == 0.5 and event["ok"] is True


@pytest.mark.parametrize(
    "ns",
    [0, 1_764_557_626_000_000_000, 1_764_557_626_123_456_789, 1_764_557_626_000_000_999, 999],
)
def test_timestamp_is_structlog_timestampers_text(ns):
    """``iso_utc`` writes what ``TimeStamper(fmt="iso", utc=True)`` writes for the same instant:
    microseconds rounded down and left out when zero."""
    import datetime

    from outcrop.logs import iso_utc

    at = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(
        microseconds=ns // 1000
    )
    assert iso_utc(ns) == at.isoformat().replace("+00:00", "Z")


def test_a_logger_follows_a_new_configuration(log_stream):
    """The logger ``get_logger`` returns is assembled once per configuration: a later
    ``configure_logging`` (another stream) and structlog's ``capture_logs`` still apply."""
    import structlog

    log = get_logger("t")
    log.info("first")
    other = io.StringIO()
    configure_logging("INFO", json=True, stream=other)
    log.info("second")
    with structlog.testing.capture_logs() as captured:
        log.info("third")
    log.info("fourth")
    assert [e["event"] for e in lines(log_stream)] == ["first"]
    assert [e["event"] for e in lines(other)] == ["second", "fourth"]
    assert [e["event"] for e in captured] == ["third"]
    assert lines(other)[0]["timestamp"].endswith("Z") and lines(other)[0]["level"] == "info"
