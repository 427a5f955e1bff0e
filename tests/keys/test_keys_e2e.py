"""Virtual keys through real clients on both engines: the OpenAI SDK on chat and /v1/models,
boto3 with a bearer token over TLS and with an issued SigV4 pair on /bedrock/*, raw HTTP."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime

import httpx
import openai
import pytest
from botocore.exceptions import ClientError

from tests.clients import bearer_client, sigv4_client

from .conftest import BEDROCK_ID, MASTER, Admin, flushed, wait_for

MESSAGES = [{"role": "user", "content": [{"text": "Hello"}]}]


def chat(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)


def aws_error(caught: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    response = caught.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def test_generated_key_on_bedrock_with_raw_http(gateway, admin, bedrock_simulator):
    created = admin.generate()
    key = created["key"]
    assert key.startswith("sk-") and len(key) >= 3 + 43  # 256 bits, URL-safe base64
    assert created["token"] != key and len(created["token"]) == 64
    r = httpx.post(
        f"{gateway.url}/bedrock/model/cohere.command-r-v1:0/converse",
        headers={"Authorization": f"Bearer {key}"},
        json={"messages": MESSAGES},
    )
    assert r.status_code == 200, r.text
    assert bedrock_simulator.last().operation == "Converse"
    flushed(gateway)
    rows = wait_for(lambda: admin.get("/spend/logs", api_key=key))
    (row,) = rows
    assert row["api_key"] == created["token"] and row["surface"] == "passthrough"
    assert row["path"] == "/bedrock/model/{modelId}/converse" and row["status"] == 200
    assert row["model"] == "cohere.command-r-v1:0" and row["prompt_tokens"] == 10
    assert row["spend"] == pytest.approx(10 * 0.5e-6 + 5 * 1.5e-6)
    assert row["client_ip"] == "127.0.0.1" and row["user_agent"].startswith("python-httpx")
    assert row["messages"] is None and row["response"] is None
    info = admin.get("/key/info", key=key)
    assert info["info"]["spend"] == pytest.approx(row["spend"])
    assert key not in str(admin.get("/key/list", return_full_object="true"))


def test_openai_sdk_chat_models_and_refusals(gateway, admin, bedrock_simulator):
    key = admin.generate(models=["nova"], key_alias="nova-only")["key"]
    client = chat(gateway.url, key)
    answer = client.chat.completions.create(
        model="nova", messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content
    assert [m.id for m in client.models.list()] == ["nova"]
    # raw model strings are allowed here, so the master key also sees the plugins' wildcards
    names = [m.id for m in chat(gateway.url, MASTER).models.list() if not m.id.endswith("*")]
    assert sorted(names) == ["nova", "other"]
    before = len(bedrock_simulator.requests)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.chat.completions.create(model="other", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.body["code"] == "model_not_allowed"
    with pytest.raises(openai.AuthenticationError):
        chat(gateway.url, "sk-not-a-key-at-all-000000").models.list()
    assert len(bedrock_simulator.requests) == before  # never forwarded
    # streamed chat records a row too, with the usage the stream reported
    stream = client.chat.completions.create(
        model="nova", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    rows = wait_for(lambda: len(r := admin.get("/spend/logs", api_key=key)) == 3 and r)
    assert sorted(r["status"] for r in rows) == [200, 200, 403]
    assert {r["key_alias"] for r in rows} == {"nova-only"} and all(
        r["surface"] == "chat" for r in rows
    )
    streamed = next(r for r in rows if r["stream"])
    assert streamed["total_tokens"] == 15 and streamed["spend"] == pytest.approx(
        10 * 0.001 + 5 * 0.002
    )


def test_boto3_bearer_over_tls_and_issued_sigv4_pair(
    gateway_factory, make_config, tls_files, monkeypatch, bedrock_simulator
):
    gw = gateway_factory(make_config(), certfile=tls_files["cert"], keyfile=tls_files["key"])
    admin = Admin(gw.url, verify=ssl.create_default_context(cafile=tls_files["ca"]))
    created = admin.generate(aws_sigv4=True, models=["bedrock/anthropic.*"], key_alias="sdk")
    assert (
        created["aws_access_key_id"].startswith("OCK")
        and len(created["aws_secret_access_key"]) == 40
    )
    info = admin.get("/key/info", key=created["key"])["info"]
    assert "aws_secret_access_key" not in info and "aws_secret_encrypted" not in info

    runtime = bearer_client(gw.url, tls_files["ca"], monkeypatch, created["key"])
    assert runtime.converse(modelId=BEDROCK_ID, messages=MESSAGES)["output"]["message"]
    monkeypatch.delenv("AWS_BEARER_TOKEN_BEDROCK")
    signed = sigv4_client(
        "bedrock-runtime", gw.url, created["aws_access_key_id"], created["aws_secret_access_key"]
    )
    signed._endpoint.http_session._verify = tls_files["ca"]
    assert signed.converse(modelId=BEDROCK_ID, messages=MESSAGES)["output"]["message"]
    with pytest.raises(ClientError) as caught:  # outside `models`: AWS-shaped, not forwarded
        signed.converse(modelId="cohere.command-r-v1:0", messages=MESSAGES)
    assert aws_error(caught) == (403, "AccessDeniedException")
    assert "may not use model" in caught.value.response["Error"]["Message"]
    wrong = sigv4_client("bedrock-runtime", gw.url, created["aws_access_key_id"], "x" * 40)
    wrong._endpoint.http_session._verify = tls_files["ca"]
    with pytest.raises(ClientError) as caught:
        wrong.converse(modelId=BEDROCK_ID, messages=MESSAGES)
    assert aws_error(caught)[1] == "InvalidSignatureException"
    assert [r.operation for r in bedrock_simulator.requests] == ["Converse", "Converse"]
    rows = wait_for(lambda: len(r := admin.get("/spend/logs", api_key=created["key"])) == 3 and r)
    assert sorted(r["auth"] for r in rows) == ["sigv4_key", "sigv4_key", "virtual_key"]


def test_block_unblock_expiry_routes_and_delete(gateway, admin, bedrock_simulator):
    key = admin.generate(allowed_routes=["/bedrock/*"])["key"]
    url = f"{gateway.url}/bedrock/model/{BEDROCK_ID}/converse"
    headers = {"x-api-key": key}

    def call() -> httpx.Response:
        return httpx.post(url, headers=headers, json={"messages": MESSAGES})

    assert call().status_code == 200
    with pytest.raises(openai.PermissionDeniedError) as caught:  # chat is not an allowed route
        chat(gateway.url, key).chat.completions.create(
            model="nova", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.body["code"] == "route_not_allowed"
    admin.post("/key/block", {"key": key})
    r = call()
    assert r.status_code == 403 and r.headers["x-amzn-errortype"].startswith(
        "AccessDeniedException"
    )
    assert "blocked" in r.json()["message"]
    admin.post("/key/unblock", {"key": key})
    assert call().status_code == 200
    admin.post("/key/update", {"key": key, "expires": "2020-01-01T00:00:00Z"})
    r = call()
    assert r.status_code == 403 and "expired" in r.json()["message"]
    admin.post("/key/update", {"key": key, "duration": "1h"})
    assert call().status_code == 200
    assert admin.post("/key/delete", {"keys": [key]}) == {"deleted_keys": [key]}
    r = call()
    assert r.status_code == 403 and r.headers["x-amzn-errortype"].startswith("UnrecognizedClient")
    assert len(bedrock_simulator.requests) == 3


def test_budget_refuses_before_upstream_in_each_dialect(gateway, admin, bedrock_simulator):
    one_call = 10 * 3e-6 + 5 * 15e-6  # claude 3.5 sonnet, 10 in / 5 out tokens
    key = admin.generate(max_budget=one_call * 1.5)["key"]
    url = f"{gateway.url}/bedrock/model/{BEDROCK_ID}/converse"
    for _ in range(2):  # the second call is admitted: spend is below the budget until it ends
        assert (
            httpx.post(url, headers={"x-api-key": key}, json={"messages": MESSAGES}).status_code
            == 200
        )
    r = httpx.post(url, headers={"x-api-key": key}, json={"messages": MESSAGES})
    assert r.status_code == 429 and r.headers["x-amzn-errortype"].startswith("ThrottlingException")
    assert "Budget has been exceeded" in r.json()["message"]
    with pytest.raises(openai.RateLimitError) as caught:
        chat(gateway.url, key).chat.completions.create(
            model="nova", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.body["code"] == "budget_exceeded"
    assert len(bedrock_simulator.requests) == 2
    admin.post("/key/update", {"key": key, "max_budget": 1.0})
    assert (
        httpx.post(url, headers={"x-api-key": key}, json={"messages": MESSAGES}).status_code == 200
    )


def test_team_models_budget_and_delete(gateway, admin, bedrock_simulator):
    team = admin.post(
        "/team/new", {"team_alias": "research", "models": ["nova"], "max_budget": 0.03}
    )
    key = admin.generate(team_id=team["team_id"], key_alias="r1")["key"]
    admin.generate(team_id=team["team_id"], key_alias="r2")
    client = chat(gateway.url, key)
    assert [m.id for m in client.models.list()] == ["nova"]
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="other", messages=[{"role": "user", "content": "x"}])
    client.chat.completions.create(model="nova", messages=[{"role": "user", "content": "x"}])
    client.chat.completions.create(model="nova", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.RateLimitError) as caught:  # 2 x $0.02 > the team's $0.03
        client.chat.completions.create(model="nova", messages=[{"role": "user", "content": "x"}])
    assert "team" in caught.value.body["message"]
    flushed(gateway)  # /team/info reads the spend recorded in the database
    info = admin.get("/team/info", team_id=team["team_id"])
    assert info["team_info"]["spend"] == pytest.approx(0.04)
    assert sorted(k["key_alias"] for k in info["keys"]) == ["r1", "r2"]
    assert [t["team_alias"] for t in admin.get("/team/list")] == ["research"]
    admin.post("/team/update", {"team_id": team["team_id"], "blocked": True})
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="nova", messages=[{"role": "user", "content": "x"}])
    admin.post("/team/delete", {"team_ids": [team["team_id"]]})
    assert admin.get("/key/list")["total_count"] == 0
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_management_needs_admin(gateway, admin):
    plain = admin.generate()["key"]
    boss = admin.generate(admin=True)["key"]
    r = httpx.post(
        gateway.url + "/key/generate", json={}, headers={"authorization": f"Bearer {plain}"}
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_admin"
    assert Admin(gateway.url, boss).generate()["key"].startswith("sk-")
    r = httpx.get(gateway.url + "/key/list")
    assert r.status_code == 401
    own = httpx.get(gateway.url + "/key/info", headers={"authorization": f"Bearer {plain}"})
    assert own.status_code == 200 and own.json()["info"]["admin"] is False
    assert admin.post("/key/generate", {"max_budget": -1}, status=400)["error"][
        "message"
    ].startswith("max_budget")
    assert (
        "budget_duration"
        in admin.post("/key/generate", {"budget_duration": "soon"}, status=400)["error"]["message"]
    )
    assert admin.post("/key/generate", {"team_id": "nope"}, status=400)
    admin.generate(key_alias="same")
    assert (
        "already used"
        in admin.post("/key/generate", {"key_alias": "same"}, status=400)["error"]["message"]
    )


def test_regenerate_list_pagination_and_spend_report(
    gateway_factory, make_config, bedrock_simulator
):
    # spend_logs_for: all -> the master key's calls get rows too
    gateway = gateway_factory(make_config(spend_logs_for="all"))
    admin = Admin(gateway.url)
    first = admin.generate(key_alias="rotating")
    again = admin.post("/key/regenerate", {"key": first["key"]})
    assert again["key"] != first["key"] and again["key_alias"] == "rotating"
    assert (
        httpx.get(gateway.url + "/v1/models", headers={"x-api-key": first["key"]}).status_code
        == 401
    )
    assert (
        httpx.get(gateway.url + "/v1/models", headers={"x-api-key": again["key"]}).status_code
        == 200
    )
    for i in range(4):
        admin.generate(key_alias=f"k{i}")
    page = admin.get("/key/list", page=2, size=2)
    assert page["total_count"] == 5 and page["current_page"] == 2 and page["total_pages"] == 3
    assert len(page["keys"]) == 2
    client = chat(gateway.url, again["key"])
    for _ in range(3):
        client.chat.completions.create(model="nova", messages=[{"role": "user", "content": "x"}])
    chat(gateway.url, MASTER).chat.completions.create(
        model="other", messages=[{"role": "user", "content": "x"}]
    )
    rows = wait_for(lambda: len(r := admin.get("/spend/logs")) == 4 and r)
    assert {r["auth"] for r in rows} == {"virtual_key", "master_key"}
    paged = admin.get("/spend/logs", page=1, page_size=3, model="nova")
    assert paged["total"] == 3 and len(paged["data"]) == 3
    assert admin.get("/spend/logs", start_date="2000-01-01", end_date="2000-01-02") == []
    report = admin.get("/global/spend/report", group_by="api_key")
    (day,) = report
    groups = {g["api_key"]: g for g in day["api_keys"]}
    assert groups[again["token"]]["total_spend"] == pytest.approx(0.06)
    by_model = admin.get("/global/spend/report", group_by="model")[0]["models"]
    assert {g["model"] for g in by_model} == {"nova", "other"}


def test_budget_duration_resets_spend(gateway, admin, bedrock_simulator):
    url = f"{gateway.url}/bedrock/model/{BEDROCK_ID}/converse"

    def call(key: str) -> int:
        return httpx.post(url, headers={"x-api-key": key}, json={"messages": MESSAGES}).status_code

    # The 429 is only owed while the budget window is open: on a machine slow enough that the
    # window closed before the second call, start again with a new key (a 200 inside the window
    # still fails the test).
    for _attempt in range(3):
        key = admin.generate(max_budget=1e-6, budget_duration="2s")["key"]
        info = admin.get("/key/info", key=key)["info"]
        assert info["budget_duration"] == "2s" and info["budget_reset_at"] is not None
        reset_at = datetime.fromisoformat(info["budget_reset_at"].replace("Z", "+00:00"))
        assert call(key) == 200
        status = call(key)
        if status == 429:
            break
        assert datetime.now(UTC) >= reset_at, "a 200 over budget inside the window"
    else:
        pytest.fail("the machine never made two calls inside one 2 s budget window")
    assert wait_for(lambda: call(key) == 200, 6.0)  # the reset time passed: spend starts again at 0
    assert wait_for(
        lambda: admin.get("/key/info", key=key)["info"]["budget_reset_at"] > info["budget_reset_at"]
    )  # the next reset is stored


def test_management_bad_bodies(gateway, admin):
    r = httpx.post(gateway.url + "/key/generate", content=b"{not json", headers=admin.headers)
    assert r.status_code == 400 and "invalid request body" in r.json()["error"]["message"]
    r = httpx.post(gateway.url + "/key/delete", content=b"[1, 2]", headers=admin.headers)
    assert r.status_code == 400 and "JSON object" in r.json()["error"]["message"]
    big = b'{"metadata": {"x": "' + b"a" * (1024 * 1024) + b'"}}'
    r = httpx.post(gateway.url + "/key/generate", content=big, headers=admin.headers)
    assert r.status_code == 413
    r = httpx.post(gateway.url + "/key/nope-key/regenerate", content=b"", headers=admin.headers)
    assert r.status_code == 404 and r.json()["error"]["message"] == "key not found"
    assert admin.get("/key/list", status=400, page="x")["error"]["message"].startswith("page")
    assert admin.get("/spend/logs", status=400, start_date="yesterday")["error"][
        "message"
    ].startswith("start_date")
    assert admin.get("/global/spend/report", status=400, group_by="user")
    assert admin.post("/key/update", {"max_budget": 1}, status=400)["error"]["message"].startswith(
        "key"
    )


def test_key_models_apply_to_wildcard_deployments(
    gateway_factory, make_config, simulator_params, bedrock_simulator
):
    """A wildcard serves what its allow-list allows; a key's ``models`` still narrow it (the
    model string the caller sent is what a key's patterns match, as LiteLLM's do)."""
    config = make_config(allow_raw_models=False)
    config["model_list"].append(
        {
            "model_name": "bedrock/*",
            "litellm_params": simulator_params("bedrock/*"),
            "model_info": {"allowed_models": ["bedrock/anthropic.*", "bedrock/amazon.nova-*"]},
        }
    )
    gw = gateway_factory(config)
    admin = Admin(gw.url)
    narrow = chat(gw.url, admin.generate(models=["bedrock/anthropic.*"])["key"])
    assert narrow.chat.completions.create(
        model=f"bedrock/{BEDROCK_ID}", messages=[{"role": "user", "content": "hi"}]
    ).choices
    with pytest.raises(
        openai.PermissionDeniedError
    ) as caught:  # the wildcard allows it, the key not
        narrow.chat.completions.create(
            model="bedrock/amazon.nova-pro-v1:0", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.code == "model_not_allowed"
    everything = chat(gw.url, admin.generate(models=["all-proxy-models"])["key"])
    assert everything.chat.completions.create(
        model="bedrock/amazon.nova-pro-v1:0", messages=[{"role": "user", "content": "hi"}]
    ).choices
    with pytest.raises(openai.BadRequestError) as refused:  # outside the allow-list: for all
        everything.chat.completions.create(
            model="bedrock/cohere.command-r-v1:0", messages=[{"role": "user", "content": "hi"}]
        )
    assert refused.value.code == "model_not_found"
    assert [r.params["modelId"] for r in bedrock_simulator.requests] == [
        BEDROCK_ID,
        "amazon.nova-pro-v1:0",
    ]
