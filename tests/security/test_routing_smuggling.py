"""A client's path or tags never reach a deployment or model the configuration does not give it.

* The pass-through's model paths: dot segments (plain, percent-encoded, overlong UTF-8), encoded
  slashes, double slashes, double encoding, case, NUL and backslashes around a configured
  ``model_name`` never make AWS see a model id other than the configured one (a model_list is
  configured, so raw ids are refused): each is refused (4xx) before any upstream call, or
  served as exactly the configured model. Sent as raw bytes (an HTTP client would normalise
  some of them away).
* A native call naming a configured model_name's model id never hands that name to a wildcard
  deployment (the chat route keeps serving it from its configured deployment).
* Tag routing (issue 9's "a key reaches only what it may"): on a ``model_name`` mixing native
  (or Claude) deployments with others, tags that choose only the others, exclude the native
  one or require a tag it lacks are refused on ``/bedrock/model/{name}/...`` and
  ``/v1/messages``; they are never served by the deployment they left out. Hostile tag headers
  (thousands of tags, unicode, markers alone) are refused or served within what they choose.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY

from .conftest import AUTH, MASTER_KEY, NATIVE, assert_still_serves
from .rawhttp import CONVERSE_BODY, connect, read_response, request_head

NATIVE_ID = NATIVE.removeprefix("bedrock/")
OTHER = "cohere.command-r-v1:0"  # a raw id no deployment serves: refused with a model_list

SMUGGLED_PATHS = [
    f"/bedrock/model/native/../{OTHER}/converse",
    f"/bedrock/model/native/%2E%2E/{OTHER}/converse",
    f"/bedrock/model/native/%2e%2E/{OTHER}/converse",
    f"/bedrock/model/native%2F..%2F{OTHER}/converse",
    f"/bedrock/model/native%2f%2e%2e%2f{OTHER}/converse",
    f"/bedrock/model/%2E%2E/model/{OTHER}/converse",
    f"/bedrock/model/./{OTHER}/converse",
    f"/bedrock/model/.%2F{OTHER}/converse",
    f"/bedrock/model//{OTHER}/converse",
    f"/bedrock//model/{OTHER}/converse",
    f"/bedrock/model/{OTHER}/converse/../../native/converse",
    f"/bedrock/model/native/converse/..%2F..%2F..%2Fmodel%2F{OTHER}%2Fconverse",
    f"/bedrock/model/native%252F..%252F{OTHER}/converse",
    "/bedrock/model/%C0%AE%C0%AE/converse",
    f"/bedrock/model/native%00/../{OTHER}/converse",
    f"/bedrock/model/native\\..\\{OTHER}/converse",
    f"/bedrock/model/native;/../{OTHER}/converse",
    "/bedrock/model/NATIVE/converse",
    "/bedrock/model/n%C3%A4tive/converse",
    f"/bedrock/model/{NATIVE_ID}%2F..%2F{OTHER}/converse",
    "/bedrock/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A999999999999%3Ainference-profile%2F..%2F"
    f"{OTHER}/converse",
    "/bedrock/model/native/converse/",
    "/bedrock/model/native//converse",
]


def _raw_post(url: str, path: str) -> Any:
    sock = connect(url)
    try:
        head = request_head(
            "POST",
            path,
            url,
            {**AUTH, "content-type": "application/json", "content-length": str(len(CONVERSE_BODY))},
        )
        sock.sendall(head + CONVERSE_BODY)
        return read_response(sock)
    finally:
        sock.close()


@pytest.mark.parametrize("path", SMUGGLED_PATHS)
def test_a_path_never_smuggles_another_model_past_the_model_list(gateway, bedrock_simulator, path):
    r = _raw_post(gateway.url, path)
    sent = [q for q in bedrock_simulator.requests if q.operation]
    # served: exactly the configured model, once; refused: a 4xx, before AWS
    assert all(q.params.get("modelId") == NATIVE_ID for q in sent), [q.params for q in sent]
    if r.status == 200:
        assert len(sent) == 1
    else:
        assert 400 <= r.status < 500, (r.status, r.body)
        assert sent == []
    assert_still_serves(gateway)


# -- tags on a name mixing native / Claude deployments with others --------------------------------


def _params(model: str, url: str, tags: list[str]) -> dict[str, Any]:
    return {
        "model": model,
        "aws_region_name": "us-west-2",
        "aws_access_key_id": TEST_ACCESS_KEY,
        "aws_secret_access_key": TEST_SECRET_KEY,
        "api_base": url,
        "tags": tags,
    }


@pytest.fixture
def mixed(gateway_factory, bedrock_simulator) -> Any:
    """``mixed``: a native Claude deployment tagged ``paid`` and an agent tagged ``free``;
    ``mixed-chat``: the same Claude model tagged ``paid`` and Nova tagged ``free``."""
    url = bedrock_simulator.url
    return gateway_factory(
        {
            "model_list": [
                {"model_name": "mixed", "litellm_params": _params(NATIVE, url, ["paid"])},
                {
                    "model_name": "mixed",
                    "litellm_params": _params("bedrock/agent/L1RT58GYRW/MFPSBCXYTW", url, ["free"]),
                },
                {"model_name": "mixed-chat", "litellm_params": _params(NATIVE, url, ["paid"])},
                {
                    "model_name": "mixed-chat",
                    "litellm_params": _params("bedrock/amazon.nova-lite-v1:0", url, ["free"]),
                },
                {
                    "model_name": "agent",
                    "litellm_params": _params("bedrock/agent/L1RT58GYRW/MFPSBCXYTW", url, []),
                },
            ],
            "general_settings": {"master_key": MASTER_KEY},
            "router_settings": {"enable_tag_filtering": True},
        }
    )


REFUSED_TAGS = [
    "free",
    "!paid",
    "&free",
    "free, !paid",
    "&free, paid",
    "!paid, !free",
    "free," * 2000,
    ",".join(f"t{i}" for i in range(1000)) + ",free",
    "frée, free",
    "&paid, !paid",
]


@pytest.mark.parametrize("tags", REFUSED_TAGS)
def test_passthrough_tags_never_reach_the_native_deployment_they_left_out(
    mixed, bedrock_simulator, tags
):
    r = httpx.post(
        f"{mixed.url}/bedrock/model/mixed/converse",
        headers={**AUTH, "x-litellm-tags": tags.encode(), "content-type": "application/json"},
        content=CONVERSE_BODY,
        timeout=10,
    )
    assert r.status_code == 400, r.text
    assert r.headers["x-amzn-errortype"] == "ValidationException"
    assert bedrock_simulator.requests == []
    ok = httpx.post(
        f"{mixed.url}/bedrock/model/mixed/converse",
        headers={**AUTH, "x-litellm-tags": "paid", "content-type": "application/json"},
        content=CONVERSE_BODY,
        timeout=10,
    )
    assert ok.status_code == 200 and bedrock_simulator.last("Converse").params["modelId"]


@pytest.mark.parametrize("tags", REFUSED_TAGS)
def test_messages_tags_never_reach_the_claude_deployment_they_left_out(
    mixed, bedrock_simulator, tags
):
    r = httpx.post(
        f"{mixed.url}/v1/messages",
        headers={
            "x-api-key": MASTER_KEY,
            "x-litellm-tags": tags.encode(),
            "anthropic-version": "2023-06-01",
        },
        json={
            "model": "mixed-chat",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}],
        },
        timeout=10,
    )
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "error" and r.json()["error"]["message"]
    assert bedrock_simulator.requests == []
    assert_still_serves(mixed)


# -- a client's native call never changes what a configured name serves ---------------------------

CLAUDE_ID = "us.anthropic.claude-3-5-sonnet-20240620-v1:0"


@pytest.mark.parametrize(
    "label",
    [CLAUDE_ID, f"bedrock%2F{CLAUDE_ID}", f"bedrock/{CLAUDE_ID}", CLAUDE_ID.replace(":", "%3A")],
)
def test_a_native_call_never_hands_a_configured_name_to_a_wildcard(
    gateway_factory, bedrock_simulator, label
):
    url = bedrock_simulator.url
    gw = gateway_factory(
        {
            "model_list": [
                {
                    "model_name": "bedrock/*",
                    "litellm_params": _params("bedrock/*", url, []),
                    "model_info": {"allowed_models": ["bedrock/us.anthropic.*"]},
                },
                {
                    "model_name": f"bedrock/{CLAUDE_ID}",
                    "litellm_params": {
                        **_params(f"bedrock/{CLAUDE_ID}", url, []),
                        "aws_region_name": "eu-west-1",
                    },
                },
            ],
            "general_settings": {"master_key": MASTER_KEY},
        }
    )
    chat = {"model": f"bedrock/{CLAUDE_ID}", "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(2):
        httpx.post(
            f"{gw.url}/bedrock/model/{label}/converse",
            headers={**AUTH, "content-type": "application/json"},
            content=CONVERSE_BODY,
            timeout=10,
        )
        r = httpx.post(f"{gw.url}/v1/chat/completions", headers=AUTH, json=chat, timeout=10)
        assert r.status_code == 200, r.text
        assert bedrock_simulator.last("Converse").region == "eu-west-1"
    assert {q.region for q in bedrock_simulator.requests} == {"eu-west-1"}
