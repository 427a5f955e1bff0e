"""Per-key and per-team rate limits, per-model limits, budgets on the counters, the headers
every answer carries, and what spend rows record (cache tokens, prompts when asked for).

One gateway process here (in-process counters, and Redis for the round-trip variant); the
fleet of processes sharing Redis and PostgreSQL is in ``test_fleet.py``."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import boto3
import httpx
import openai
import pytest
from botocore.config import Config as BotoConfig

from outcrop.testing.replies import ConverseReply

from .conftest import BEDROCK_ID, MASTER, Admin, flushed, service_of, wait_for

MESSAGES = [{"role": "user", "content": [{"text": "Hello"}]}]
CONVERSE = f"/bedrock/model/{BEDROCK_ID}/converse"


@pytest.fixture
def database_url(tmp_path: Any) -> str:  # the limits do not depend on the engine
    return f"sqlite:///{tmp_path}/outcrop.db"


def _chat(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)


def _converse(url: str, key: str) -> httpx.Response:
    return httpx.post(url + CONVERSE, json={"messages": MESSAGES}, headers={"x-api-key": key})


def test_master_key_calls_cost_no_spend_row_by_default(gateway, admin):
    key = admin.generate()["key"]
    assert _converse(gateway.url, MASTER).status_code == 200
    assert _converse(gateway.url, key).status_code == 200
    flushed(gateway)
    rows = admin.get("/spend/logs")
    assert [r["auth"] for r in rows] == ["virtual_key"]
    assert service_of(gateway).stats()["written_rows"] == 1


def test_rpm_limit_on_chat_and_passthrough(gateway, admin):
    key = admin.generate(rpm_limit=3, aws_sigv4=True)
    client = _chat(gateway.url, key["key"])
    raw = client.with_raw_response.chat.completions.create(
        model="nova", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-ratelimit-limit-requests"] == "3"
    assert raw.headers["x-ratelimit-remaining-requests"] == "2"
    assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
    assert _converse(gateway.url, key["key"]).headers["x-ratelimit-remaining-requests"] == "1"
    last = _converse(gateway.url, key["key"])
    assert last.status_code == 200 and last.headers["x-ratelimit-remaining-requests"] == "0"
    # the fourth call in the window: refused in each caller's dialect, never forwarded
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="nova", messages=[{"role": "user", "content": "x"}])
    err = refused.value
    assert err.code == "rate_limit_exceeded" and "rpm_limit" in err.message
    assert 1 <= int(err.response.headers["retry-after"]) <= 60
    assert err.response.headers["x-ratelimit-remaining-requests"] == "0"
    bedrock = boto3.client(  # the key's SigV4 pair: the same key, the same counters
        "bedrock-runtime",
        region_name="us-west-2",
        endpoint_url=gateway.url + "/bedrock",
        aws_access_key_id=key["aws_access_key_id"],
        aws_secret_access_key=key["aws_secret_access_key"],
        config=BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"}),
    )
    with pytest.raises(bedrock.exceptions.ThrottlingException) as throttled:
        bedrock.converse(modelId=BEDROCK_ID, messages=MESSAGES)
    headers = throttled.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert "retry-after" in headers and headers["x-ratelimit-limit-requests"] == "3"
    # the master key is not limited
    assert _converse(gateway.url, MASTER).status_code == 200


def test_tpm_limit_counts_reported_tokens_when_calls_end(gateway, admin, bedrock_simulator):
    key = admin.generate(tpm_limit=25)["key"]  # each call reports 10 + 5 tokens
    first = _converse(gateway.url, key)
    assert first.headers["x-ratelimit-limit-tokens"] == "25"
    assert first.headers["x-ratelimit-remaining-tokens"] == "25"  # charged when it ends
    second = _converse(gateway.url, key)
    assert second.status_code == 200 and second.headers["x-ratelimit-remaining-tokens"] == "10"
    third = _converse(gateway.url, key)  # 30 tokens used >= 25
    assert third.status_code == 429, third.text
    assert third.headers["x-amzn-errortype"].startswith("ThrottlingException")
    assert "tpm_limit is 25 tokens per minute (30 used)" in third.json()["message"]
    assert len(bedrock_simulator.requests) == 2


def test_max_parallel_requests(gateway_factory, make_config, bedrock_simulator):
    gateway = gateway_factory(make_config())
    admin = Admin(gateway.url)
    key = admin.generate(max_parallel_requests=2)["key"]
    bedrock_simulator.reset()
    # a stream holds its slot until its last event (the delay is between events)
    bedrock_simulator.reply(ConverseReply("slow answer", usage=(10, 5), delay=1.0), times=2)
    bedrock_simulator.reply(ConverseReply("fast", usage=(10, 5)))
    statuses: list[int] = []

    def call() -> None:
        r = httpx.post(
            f"{gateway.url}/bedrock/model/{BEDROCK_ID}/converse-stream",
            json={"messages": MESSAGES},
            headers={"x-api-key": key},
            timeout=60,
        )
        statuses.append(r.status_code)

    slow = [threading.Thread(target=call) for _ in range(2)]
    for t in slow:
        t.start()
    assert wait_for(lambda: bedrock_simulator.in_flight == 2, 30)
    refused = _converse(gateway.url, key)  # both slots are held
    assert refused.status_code == 429 and "max_parallel_requests" in refused.json()["message"]
    for t in slow:
        t.join(60)
    assert statuses == [200, 200]
    assert _converse(gateway.url, key).status_code == 200  # the slots were released
    assert bedrock_simulator.max_in_flight == 2


def test_model_limits_and_team_limits(gateway, admin):
    key = admin.generate(model_rpm_limit={"nova": 1}, model_tpm_limit={"other": 1})["key"]
    client = _chat(gateway.url, key)
    ask = {"messages": [{"role": "user", "content": "x"}]}
    client.chat.completions.create(model="nova", **ask)
    with pytest.raises(openai.RateLimitError, match="model_rpm_limit for nova"):
        client.chat.completions.create(model="nova", **ask)
    client.chat.completions.create(model="other", **ask)  # other models have their own
    with pytest.raises(openai.RateLimitError, match="model_tpm_limit for other"):
        client.chat.completions.create(model="other", **ask)
    info = admin.get("/key/info", key=key)["info"]
    assert info["model_rpm_limit"] == {"nova": 1} and info["model_tpm_limit"] == {"other": 1}

    team = admin.post("/team/new", {"team_alias": "t", "rpm_limit": 2})["team_id"]
    one = admin.generate(team_id=team)["key"]
    two = admin.generate(team_id=team)["key"]
    assert _converse(gateway.url, one).status_code == 200
    assert _converse(gateway.url, two).status_code == 200
    third = _converse(gateway.url, one)  # the team's two requests are used, whichever key
    assert third.status_code == 429 and f"team {team}'s rpm_limit" in third.json()["message"]


def test_budget_admission_never_reads_the_database(gateway, admin, monkeypatch):
    """Only the background work (cache refresh, spend writes, resets) opens connections."""
    key = admin.generate(max_budget=1.0, team_id=None)["key"]
    engine = service_of(gateway).engine
    statements: set[str] = set()
    real = engine.connect

    def connect(*args: Any, **kwargs: Any) -> Any:
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename.endswith(os.path.join("outcrop_keys", "store.py")):
                statements.add(frame.f_code.co_name)
            frame = frame.f_back
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "connect", connect)
    for _ in range(5):
        assert _converse(gateway.url, key).status_code == 200
    flushed(gateway)
    assert wait_for(lambda: "changes_since" in statements)  # the spy sees the background
    assert statements <= {"changes_since", "write_spend", "reset_budgets"}, statements


def test_cache_tokens_and_stored_prompts(gateway_factory, make_config, bedrock_simulator):
    gateway = gateway_factory(make_config(store_prompts_in_spend_logs=True))
    admin = Admin(gateway.url)
    key = admin.generate()["key"]
    bedrock_simulator.reset()
    bedrock_simulator.reply(ConverseReply("Cached hello", usage=(10, 5), cache=(7, 3)), times=1)
    assert _converse(gateway.url, key).status_code == 200
    bedrock_simulator.reply(ConverseReply("plain", usage=(10, 5)))
    assert _converse(gateway.url, key).status_code == 200
    flushed(gateway)
    rows = admin.get("/spend/logs")
    (cached,) = [r for r in rows if "Cached hello" in str(r["response"])]
    (plain,) = [r for r in rows if r is not cached]
    assert (cached["cache_read_tokens"], cached["cache_write_tokens"]) == (7, 3)
    assert cached["messages"] == {"messages": MESSAGES}
    assert "Cached hello" in str(cached["response"])
    assert plain["cache_read_tokens"] is None and plain["cache_write_tokens"] is None


def test_prompts_are_not_stored_by_default(gateway, admin):
    key = admin.generate()["key"]
    assert _converse(gateway.url, key).status_code == 200
    flushed(gateway)
    (row,) = admin.get("/spend/logs")
    assert row["messages"] is None and row["response"] is None


def test_redis_counters_one_process(gateway_factory, make_config, redis_settings):
    gateway = gateway_factory(make_config(**redis_settings))
    admin = Admin(gateway.url)
    key = admin.generate(rpm_limit=2, max_budget=1.0)["key"]
    assert service_of(gateway).stats()["limits_shared"] is True
    assert _converse(gateway.url, key).status_code == 200
    assert _converse(gateway.url, key).status_code == 200
    refused = _converse(gateway.url, key)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1


@pytest.mark.parametrize("mode", ["fail_closed", "fail_open"])
def test_redis_unreachable(gateway_factory, make_config, mode, unused_port):
    gateway = gateway_factory(
        make_config(redis_url=f"redis://127.0.0.1:{unused_port}/0", limits_on_redis_failure=mode)
    )
    admin = Admin(gateway.url)
    limited = admin.generate(rpm_limit=5)["key"]
    free = admin.generate()["key"]
    assert _converse(gateway.url, free).status_code == 200  # no limits: Redis is not asked
    r = _converse(gateway.url, limited)
    if mode == "fail_closed":
        assert r.status_code == 503, r.text
        assert r.headers["x-amzn-errortype"].startswith("ServiceUnavailableException")
    else:
        assert r.status_code == 200
        assert service_of(gateway).stats()["limit_checks_skipped"] == 1


def test_several_workers_without_redis_refuse_limits(
    gateway_factory, make_config, monkeypatch, tmp_path
):
    monkeypatch.setenv("OUTCROP_WORKERS", "2")
    gateway = gateway_factory(make_config())
    admin = Admin(gateway.url)
    r = httpx.post(
        gateway.url + "/key/generate",
        json={"rpm_limit": 5},
        headers={"authorization": f"Bearer {MASTER}"},
    )
    assert r.status_code == 400 and "REDIS_URL" in r.json()["error"]["message"]
    assert admin.generate(max_budget=1.0)["key"]  # budgets work without Redis
