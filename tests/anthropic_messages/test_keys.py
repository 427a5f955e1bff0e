"""Virtual keys on /v1/messages (``outcrop-keys``): ``x-api-key`` and ``Authorization: Bearer``,
model restrictions, spend rows with the call's tokens and cost, budgets."""

from __future__ import annotations

import time
from typing import Any

import anthropic
import httpx
import pytest

from outcrop.testing import ClaudeReply
from outcrop_keys.plugin import service_for

from .common import MASTER_KEY

HI = [{"role": "user", "content": "Hi"}]
ONE_CALL = 10 * 3e-6 + 5 * 15e-6  # claude sonnet 4.5, 10 in / 5 out tokens


@pytest.fixture
def keys_gateway(
    gateway_factory: Any, model_list: list[dict[str, Any]], tmp_path: Any, bedrock_simulator: Any
) -> Any:
    bedrock_simulator.reply(ClaudeReply("Hello", usage=(10, 5)))
    return gateway_factory(
        {
            "model_list": model_list,
            "general_settings": {
                "master_key": MASTER_KEY,
                "database_url": f"sqlite:///{tmp_path}/keys.db",
            },
        }
    )


def _admin(gateway: Any, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
    headers = {"authorization": f"Bearer {MASTER_KEY}"}
    if body is None:
        r = httpx.get(gateway.url + path, params=params, headers=headers)
    else:
        r = httpx.post(gateway.url + path, json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def _wait(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def test_virtual_key_with_x_api_key_and_bearer(keys_gateway: Any) -> None:
    key = _admin(keys_gateway, "/key/generate", {"models": ["claude"]})["key"]
    with anthropic.Anthropic(base_url=keys_gateway.url, api_key=key, max_retries=0) as c:
        assert c.messages.create(model="claude", max_tokens=8, messages=HI).content[0].text
        with pytest.raises(anthropic.PermissionDeniedError) as caught:
            c.messages.create(model="haiku", max_tokens=8, messages=HI)
        assert "may not use model 'haiku'" in caught.value.body["error"]["message"]
    with (
        anthropic.Anthropic(
            base_url=keys_gateway.url, auth_token=key, api_key=None, max_retries=0
        ) as c,
        c.messages.stream(model="claude", max_tokens=8, messages=HI) as stream,
    ):
        assert stream.get_final_message().content[0].text == "Hello"
    with (
        anthropic.Anthropic(base_url=keys_gateway.url, api_key="sk-wrong", max_retries=0) as c,
        pytest.raises(anthropic.AuthenticationError),
    ):
        c.messages.create(model="claude", max_tokens=8, messages=HI)
    rows = _wait(lambda: len(r := _admin(keys_gateway, "/spend/logs", api_key=key)) == 3 and r)
    assert rows, "the spend rows were not written"
    ok = [r for r in rows if r["status"] == 200]
    assert len(ok) == 2
    for row in ok:
        assert row["surface"] == "messages" and row["path"] == "/v1/messages"
        assert (row["prompt_tokens"], row["completion_tokens"]) == (10, 5)
        assert row["spend"] == pytest.approx(ONE_CALL)
    assert {r["stream"] for r in ok} == {True, False}


def test_budget_refuses_before_bedrock(keys_gateway: Any, bedrock_simulator: Any) -> None:
    key = _admin(keys_gateway, "/key/generate", {"max_budget": ONE_CALL * 1.5})["key"]
    with anthropic.Anthropic(base_url=keys_gateway.url, api_key=key, max_retries=0) as c:
        service = service_for(keys_gateway.gateway)
        for n in (1, 2):  # the second is admitted: spend is under the budget until it ends
            c.messages.create(model="claude", max_tokens=8, messages=HI)
            # every spend row written before the next admission reads the recorded spend
            assert _wait(lambda n=n: service.written >= n and not service.pending)
        with pytest.raises(anthropic.RateLimitError) as caught:
            c.messages.create(model="claude", max_tokens=8, messages=HI)
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert "Budget has been exceeded" in caught.value.body["error"]["message"]
    assert len(bedrock_simulator.requests) == 2
