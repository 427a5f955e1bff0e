"""Hostile and mistaken configurations: each is a clear error at its path, and nothing serves open.

Every case runs through ``outcrop check-config`` and ``outcrop serve`` (in-process, with the
server replaced by a recorder: a case that would serve fails instead of hanging), and a few
through real subprocesses. Then the gateway's authentication posture over HTTP: a configured
credential closes every route but the health probes; an open gateway answers loopback only.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

import outcrop
from outcrop import cli
from outcrop.app import create_app
from outcrop.config import parse_config
from outcrop.errors import ConfigError, OutcropError
from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY

from ..core.procs import Served

PY = sys.executable
MODEL = "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0"


def deployment(**params: Any) -> str:
    inner = "".join(f"\n      {k}: {v}" for k, v in params.items())
    return f"model_list:\n  - model_name: m\n    litellm_params:\n      model: {MODEL}{inner}\n"


BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)
DEEP = "a0: &a0 [x]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 80))

#: (id, file content, environment, the error line's exact start)
CASES: list[tuple[str, str | bytes, dict[str, str], str]] = [
    (
        "empty-master-key",
        "general_settings:\n  master_key: ''\n",
        {},
        "general_settings.master_key: empty; set a key",
    ),
    (
        "null-master-key",
        "general_settings:\n  master_key:\n",
        {},
        "general_settings.master_key: empty; set a key",
    ),
    (
        "blank-master-key",
        "general_settings:\n  master_key: '   '\n",
        {},
        "general_settings.master_key: empty; set a key",
    ),
    (
        "master-key-from-empty-env",
        "general_settings:\n  master_key: os.environ/OUTCROP_SEC_EMPTY\n",
        {"OUTCROP_SEC_EMPTY": ""},
        "general_settings.master_key: empty (environment variable OUTCROP_SEC_EMPTY is empty)",
    ),
    (
        "master-key-not-a-string",
        "general_settings:\n  master_key: 1234\n",
        {},
        "general_settings.master_key: expected a string, got int",
    ),
    (
        "empty-OUTCROP_MASTER_KEY",
        "model_list: []\n",
        {"OUTCROP_MASTER_KEY": ""},
        "OUTCROP_MASTER_KEY: set but empty",
    ),
    (
        "empty-LITELLM_MASTER_KEY",
        "model_list: []\n",
        {"LITELLM_MASTER_KEY": " "},
        "LITELLM_MASTER_KEY: set but empty",
    ),
    (
        "duplicate-master-key",
        "general_settings:\n  master_key: sk-1\n  master_key: ''\n",
        {},
        "config.yaml: general_settings.master_key: duplicate key (lines 2 and 3)",
    ),
    (
        "duplicate-section",
        "general_settings: {master_key: sk-1}\ngeneral_settings: {}\n",
        {},
        "config.yaml: general_settings: duplicate key (lines 1 and 2)",
    ),
    (
        "duplicate-flow-key",
        "general_settings: {master_key: sk-1, master_key: ''}\n",
        {},
        "config.yaml: general_settings.master_key: duplicate key (twice on line 1)",
    ),
    (
        "typo-section",
        "general_setting:\n  master_key: sk-1\n",
        {},
        "general_setting: unknown section (did you mean `general_settings`?)",
    ),
    (
        "typo-key",
        "general_settings:\n  master-key: sk-1\n",
        {},
        "general_settings.master-key: unknown key (did you mean `master_key`?)",
    ),
    (
        "typo-litellm-key",
        "litellm_settings:\n  drop_param: true\n",
        {},
        "litellm_settings.drop_param: unknown key (did you mean `drop_params`?)",
    ),
    (
        "typo-router-key",
        "router_settings:\n  routing_stratgy: simple-shuffle\n",
        {},
        "router_settings.routing_stratgy: unknown key (did you mean `routing_strategy`?)",
    ),
    (
        "typo-plugin-section",
        "bedrock_passthru:\n  only_aliases: true\n",
        {},
        "bedrock_passthru: unknown section (did you mean `bedrock_passthrough`?)",
    ),
    (
        "typo-entry-key",
        "model_list:\n  - model_name: m\n    litelm_params: {model: x}\n",
        {},
        "model_list[0].litelm_params: unknown key (did you mean `litellm_params`?)",
    ),
    (
        "typo-aws-key",
        deployment(aws_secret_key="abc"),
        {},
        "model_list[0].litellm_params.aws_secret_key: unknown key (did you mean "
        "`aws_secret_access_key`?)",
    ),
    (
        "refused-allowed-ips",
        "general_settings:\n  allowed_ips: [10.0.0.1]\n",
        {},
        "general_settings.allowed_ips: a LiteLLM setting Outcrop does not implement: it restricts",
    ),
    (
        "refused-callbacks",
        "litellm_settings:\n  success_callback: [datadog]\n",
        {},
        "litellm_settings.success_callback: no installed plugin implements callback 'datadog'",
    ),
    (
        "refused-guardrails",
        "guardrails: []\n",
        {},
        "guardrails: a LiteLLM setting Outcrop does not implement",
    ),
    (
        "general-settings-not-a-mapping",
        "general_settings: [master_key, sk-1]\n",
        {},
        "general_settings: expected a mapping, got list",
    ),
    (
        "litellm-settings-not-a-mapping",
        "litellm_settings: yes\n",
        {},
        "litellm_settings: expected a mapping, got bool",
    ),
    (
        "environment-variables-not-a-mapping",
        "environment_variables: [A]\n",
        {},
        "environment_variables: expected a mapping, got list",
    ),
    ("top-level-not-a-mapping", "- a\n- b\n", {}, "(top level): expected a mapping, got list"),
    (
        "weight-nan",
        deployment(weight=".nan"),
        {},
        "model_list[0].litellm_params.weight: expected `float` > 0.0",
    ),
    (
        "weight-inf",
        deployment(weight=".inf"),
        {},
        "model_list[0].litellm_params.weight: expected `float` <= 1000000.0",
    ),
    (
        "weight-negative",
        deployment(weight=-2),
        {},
        "model_list[0].litellm_params.weight: expected `float` > 0.0",
    ),
    (
        "weight-zero",
        deployment(weight=0),
        {},
        "model_list[0].litellm_params.weight: expected `float` > 0.0",
    ),
    (
        "timeout-zero",
        deployment(timeout=0),
        {},
        "model_list[0].litellm_params.timeout: expected `float` > 0.0",
    ),
    (
        "timeout-negative",
        deployment(timeout=-5),
        {},
        "model_list[0].litellm_params.timeout: expected `float` > 0.0",
    ),
    (
        "timeout-huge",
        deployment(timeout="1.0e+30"),
        {},
        "model_list[0].litellm_params.timeout: expected `float` <= 86400.0",
    ),
    (
        "deployment-connect-timeout-negative",
        deployment(connect_timeout=-1),
        {},
        "model_list[0].litellm_params.connect_timeout: expected `float` > 0.0",
    ),
    (
        "price-nan",
        deployment(input_cost_per_token=".nan"),
        {},
        "model_list[0].litellm_params.input_cost_per_token: expected `float` >= 0.0",
    ),
    (
        "api-base-not-a-url",
        deployment(api_base="'not a url'"),
        {},
        "model_list[0].litellm_params.api_base: expected an http(s) URL, got 'not a url'",
    ),
    (
        "connect-timeout-negative",
        "general_settings:\n  connect_timeout: -1\n",
        {},
        "general_settings.connect_timeout: expected `float` > 0.0",
    ),
    (
        "read-timeout-zero",
        "general_settings:\n  read_timeout: 0\n",
        {},
        "general_settings.read_timeout: expected `float` > 0.0",
    ),
    (
        "request-timeout-nan",
        "litellm_settings:\n  request_timeout: .nan\n",
        {},
        "litellm_settings.request_timeout: expected `float` > 0.0",
    ),
    (
        "max-request-bytes-negative",
        "general_settings:\n  max_request_bytes: -1\n",
        {},
        "general_settings.max_request_bytes: expected `int` >= 1",
    ),
    (
        "max-request-bytes-1e30",
        "general_settings:\n  max_request_bytes: 1.0e+30\n",
        {},
        "general_settings.max_request_bytes: expected `int`, got `float`",
    ),
    (
        "max-request-bytes-1e30-string",
        "general_settings:\n  max_request_bytes: 1e30\n",
        {},
        "general_settings.max_request_bytes: expected `int`, got `str`",
    ),
    (
        "max-request-bytes-too-large",
        "general_settings:\n  max_request_bytes: 2147483648\n",
        {},
        "general_settings.max_request_bytes: expected `int` <= 1073741824",
    ),
    (
        "max-request-size-mb-negative",
        "general_settings:\n  max_request_size_mb: -1\n",
        {},
        "general_settings.max_request_size_mb: expected a number of megabytes > 0",
    ),
    (
        "passthrough-timeout-zero",
        "bedrock_passthrough:\n  timeout: 0\n",
        {},
        "bedrock_passthrough.timeout: expected `float` > 0.0",
    ),
    (
        "passthrough-typo",
        "bedrock_passthrough:\n  aws_region: us-east-1\n",
        {},
        "bedrock_passthrough.aws_region: unknown key (did you mean `aws_region_name`?)",
    ),
    (
        "passthrough-endpoint-not-a-url",
        "bedrock_passthrough:\n  endpoints:\n    bedrock-runtime: 'x y'\n",
        {},
        "bedrock_passthrough.endpoints.bedrock-runtime: expected an http(s) URL, got 'x y'",
    ),
    (
        "not-utf8",
        b"general_settings:\n  master_key: \xff\xfe\n",
        {},
        "config.yaml: not UTF-8 text (byte 0xff at offset 32)",
    ),
    (
        "alias-bomb",
        BOMB,
        {},
        "config.yaml: line 6: anchors and aliases (&name, *name) expand this document beyond "
        "250000 values",
    ),
    (
        "recursive-alias",
        "a: &a [*a]\n",
        {},
        "config.yaml: line 1: an alias refers to a value that contains it",
    ),
    ("aliases-nested-deep", DEEP, {}, "config.yaml: line 64: values nested deeper than 64 levels"),
    (
        "python-tag",
        "a: !!python/object/apply:os.system ['true']\n",
        {},
        "config.yaml: not valid YAML (line 1, column 4): could not determine a constructor",
    ),
    (
        "unset-env-reference",
        "general_settings:\n  master_key: os.environ/OUTCROP_SEC_UNSET\n",
        {},
        "general_settings.master_key: environment variable OUTCROP_SEC_UNSET is not set",
    ),
]


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def write(content: str | bytes, env: dict[str, str]) -> Path:
        monkeypatch.delenv("OUTCROP_SEC_UNSET", raising=False)
        for name in ("OUTCROP_MASTER_KEY", "LITELLM_MASTER_KEY"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        path = tmp_path / "config.yaml"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path

    return write


@pytest.mark.parametrize(
    ("content", "env", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_check_config_and_serve_refuse_it_at_its_path(
    config_file, monkeypatch, capsys, content, env, expected
):
    path = config_file(content, env)
    assert cli.main(["check-config", str(path)]) == 2
    out = capsys.readouterr()
    lines = out.err.splitlines()
    assert lines[0] == f"outcrop: invalid configuration in {path}:"
    shown = [line.strip().replace(f"{path}", "config.yaml") for line in lines[1:]]
    assert any(line.startswith(expected) for line in shown), shown
    assert "OK" not in out.out and "Traceback" not in out.err

    served = []
    monkeypatch.setattr(cli, "_run_server", lambda *a, **k: served.append(a))
    # serve configures logging onto sys.stderr: capsys' stream, closed after this test
    monkeypatch.setattr(cli, "configure_logging", lambda level: None)
    assert cli.main(["serve", "--config", str(path), "--port", "1"]) == 2
    assert served == []
    assert any(
        line.strip().replace(f"{path}", "config.yaml").startswith(expected)
        for line in capsys.readouterr().err.splitlines()
    )


def test_there_are_enough_hostile_cases():
    assert len(CASES) >= 45 and len({c[0] for c in CASES}) == len(CASES)


def run_outcrop(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OUTCROP_MASTER_KEY", "LITELLM_MASTER_KEY", "OUTCROP_CONFIG")
    }
    return subprocess.run(
        [PY, "-m", "outcrop", *args],
        capture_output=True,
        text=True,
        env={**environ, **(env or {})},
        timeout=120,
    )


@pytest.mark.parametrize(
    "case",
    [
        "alias-bomb",
        "not-utf8",
        "empty-master-key",
        "general-settings-not-a-mapping",
        "duplicate-master-key",
    ],
)
def test_check_config_subprocess_exits_2_without_traceback(tmp_path, case):
    _, content, env, expected = next(c for c in CASES if c[0] == case)
    path = tmp_path / "config.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    r = run_outcrop("check-config", str(path), env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert expected in r.stderr.replace(str(path), "config.yaml")


# -- binding: an open gateway serves loopback only -------------------------------------------


def test_serve_on_every_interface_without_client_auth_refuses_in_one_line(tmp_path):
    r = run_outcrop("serve", "--host", "0.0.0.0", "--port", "0")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert (
        "--host 0.0.0.0: refusing to serve without client authentication on a non-loopback address"
    ) in r.stderr
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model_list: []\n")
    r = run_outcrop("--config", str(cfg), "--host", "::", "--port", "0")
    assert r.returncode == 2 and "--host ::: refusing" in r.stderr


def test_bind_host_defaults_and_rules(monkeypatch):
    for name in ("OUTCROP_MASTER_KEY", "LITELLM_MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    gateway = outcrop.Gateway(parse_config({}))
    assert cli.bind_host(None, gateway) == "127.0.0.1"
    for host in ("127.0.0.1", "127.8.9.10", "localhost", "::1", "[::1]"):
        assert cli.bind_host(host, gateway) == host
    for host in ("0.0.0.0", "::", "192.0.2.10", "example.test", "::ffff:192.0.2.1"):
        with pytest.raises(ConfigError, match="refusing to serve without client authentication"):
            cli.bind_host(host, gateway)
    allowed = outcrop.Gateway(parse_config({"general_settings": {"allow_unauthenticated": True}}))
    assert cli.bind_host(None, allowed) == "0.0.0.0"
    assert cli.bind_host("192.0.2.10", allowed) == "192.0.2.10"
    keyed = outcrop.Gateway(parse_config({"general_settings": {"master_key": "sk-bind"}}))
    assert cli.bind_host(None, keyed) == "0.0.0.0"  # authenticated: every interface, as LiteLLM
    monkeypatch.setenv("LITELLM_MASTER_KEY", "sk-from-env")
    assert cli.bind_host(None, outcrop.Gateway(parse_config({}))) == "0.0.0.0"


def test_bare_serve_starts_on_loopback_and_says_it_is_open():
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OUTCROP_MASTER_KEY", "LITELLM_MASTER_KEY", "OUTCROP_CONFIG")
    }
    with Served([PY, "-m", "outcrop", "serve"], env=environ) as server:
        assert server.url.startswith("http://127.0.0.1:")
        r = httpx.get(f"{server.url}/health/readiness")
        assert r.json() == {"status": "healthy"}
        server.stop()
    err = server.logs()
    assert "no_client_authentication" in err and "only loopback callers are served" in err
    assert "http://127.0.0.1:" in err


def asgi_client(app: Any, client_ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(client_ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway.test")


@pytest.mark.parametrize(
    "client_ip", ["203.0.113.7", "10.1.2.3", "::ffff:198.51.100.1", "2001:db8::1"]
)
def test_open_gateway_refuses_non_loopback_callers(client_ip, monkeypatch):
    """Over an in-process ASGI transport: no socket is opened to any address."""
    for name in ("OUTCROP_MASTER_KEY", "LITELLM_MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    asyncio.run(_open_gateway_checks(client_ip))


async def _open_gateway_checks(client_ip: str) -> None:
    app = create_app({})
    async with asgi_client(app, client_ip) as client:
        r = await client.get("/v1/models")
        assert r.status_code == 403 and r.json()["error"]["code"] == "loopback_only"
        assert "allow_unauthenticated" in r.json()["message"]
        assert r.headers["x-amzn-errortype"] == "AccessDeniedException"
        r = await client.post("/bedrock/model/x/converse", content=b"{}")
        assert r.status_code == 403
    for loopback in ("127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"):
        async with asgi_client(app, loopback) as client:
            assert (await client.get("/v1/models")).status_code == 200
    opened = create_app({"general_settings": {"allow_unauthenticated": True}})
    async with asgi_client(opened, client_ip) as client:
        assert (await client.get("/v1/models")).status_code == 200
    keyed = create_app({"general_settings": {"master_key": "sk-remote"}})
    async with asgi_client(keyed, client_ip) as client:
        assert (await client.get("/v1/models")).status_code == 401
        ok = await client.get("/v1/models", headers={"Authorization": "Bearer sk-remote"})
        assert ok.status_code == 200


# -- a configured credential closes every route --------------------------------------------

KEY_ID, KEY_SECRET = "OUTCROPSECKEY0001", "sec-config-secret-000000000001"


def _signed_converse(gateway_url: str, key_id: str, secret: str) -> int:
    import boto3
    from botocore.config import Config as BotoConfig
    from botocore.exceptions import ClientError

    client = boto3.client(
        "bedrock-runtime",
        region_name="us-west-2",
        endpoint_url=f"{gateway_url}/bedrock",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=BotoConfig(retries={"max_attempts": 1}),
    )
    try:
        client.converse(modelId="m", messages=[{"role": "user", "content": [{"text": "hi"}]}])
    except ClientError as exc:
        return int(exc.response["ResponseMetadata"]["HTTPStatusCode"])
    return 200


def test_key_pairs_without_master_key_refuse_unsigned_callers(
    gateway_factory, simulator_params, bedrock_simulator, monkeypatch
):
    for name in ("OUTCROP_MASTER_KEY", "LITELLM_MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    gw = gateway_factory(
        {
            "model_list": [{"model_name": "m", "litellm_params": simulator_params(MODEL)}],
            "bedrock_passthrough": {
                "keys": [{"access_key_id": KEY_ID, "secret_access_key": KEY_SECRET}]
            },
        }
    )
    assert gw.gateway.requires_auth and gw.gateway.master_key is None
    converse = f"{gw.url}/bedrock/model/m/converse"
    body = b'{"messages": [{"role": "user", "content": [{"text": "hi"}]}]}'
    unsigned = httpx.post(converse, content=body)
    assert unsigned.status_code == 403
    assert unsigned.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    bearer = httpx.post(converse, content=body, headers={"Authorization": "Bearer anything"})
    assert bearer.status_code == 403
    chat = httpx.post(f"{gw.url}/v1/chat/completions", json={"model": "m", "messages": []})
    assert chat.status_code == 401
    assert httpx.get(f"{gw.url}/v1/models").status_code == 401
    assert bedrock_simulator.requests == []
    assert _signed_converse(gw.url, KEY_ID, "not-the-secret-at-all-00000") == 403
    assert bedrock_simulator.requests == []
    assert _signed_converse(gw.url, KEY_ID, KEY_SECRET) == 200
    # The probes stay open, and say nothing about the configuration.
    assert httpx.get(f"{gw.url}/health/liveliness").status_code == 200
    ready = httpx.get(f"{gw.url}/health/readiness")
    assert ready.status_code == 200 and ready.json() == {"status": "healthy"}


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"OUTCROP_MASTER_KEY": "sk-outcrop-env"}, "sk-outcrop-env"),
        ({"LITELLM_MASTER_KEY": "sk-litellm-env"}, "sk-litellm-env"),
        (
            {"OUTCROP_MASTER_KEY": "sk-outcrop-env", "LITELLM_MASTER_KEY": "sk-litellm-env"},
            "sk-outcrop-env",
        ),
    ],
)
def test_master_key_from_the_environment(gateway_factory, monkeypatch, env, key):
    for name in ("OUTCROP_MASTER_KEY", "LITELLM_MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    gw = gateway_factory({})
    assert gw.gateway.requires_auth
    assert gw.gateway.config.master_key_source == next(iter(env))
    assert httpx.get(f"{gw.url}/v1/models").status_code == 401
    assert httpx.get(f"{gw.url}/v1/models", headers={"x-api-key": "sk-wrong"}).status_code == 401
    assert (
        httpx.get(f"{gw.url}/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code
        == 200
    )
    # the config file's key wins over the environment
    gw = gateway_factory({"general_settings": {"master_key": "sk-from-file"}})
    assert (
        httpx.get(f"{gw.url}/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code
        == 401
    )
    assert (
        httpx.get(
            f"{gw.url}/v1/models", headers={"Authorization": "Bearer sk-from-file"}
        ).status_code
        == 200
    )


def test_master_key_from_the_environment_with_no_config_file(monkeypatch):
    environ = {
        k: v for k, v in os.environ.items() if k not in ("LITELLM_MASTER_KEY", "OUTCROP_CONFIG")
    }
    environ["OUTCROP_MASTER_KEY"] = "sk-env-only"
    command = [PY, "-m", "outcrop", "serve", "--host", "127.0.0.1"]
    with Served(command, env=environ) as server:
        base = server.url
        assert httpx.get(f"{base}/v1/models").status_code == 401
        assert (
            httpx.get(f"{base}/v1/models", headers={"x-api-key": "sk-env-only"}).status_code == 200
        )
        server.stop()
    err = server.logs()
    assert "no_client_authentication" not in err and "sk-env-only" not in err


def test_check_config_reports_auth_and_ignored_litellm_keys(tmp_path, capsys, monkeypatch):
    for name in ("OUTCROP_MASTER_KEY", "LITELLM_MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    cfg = tmp_path / "litellm.yaml"
    cfg.write_text(
        textwrap.dedent(f"""\
        model_list:
          - model_name: m
            litellm_params: {{model: "{MODEL}", aws_region_name: us-west-2, rpm: 100, tags: [a],
                             custom_llm_provider: bedrock}}
        router_settings: {{routing_strategy: least-busy, num_retries: 2, redis_host: r}}
        litellm_settings: {{set_verbose: true, drop_params: true}}
        general_settings: {{master_key: sk-1234, alerting: [slack]}}
        """)
    )
    assert cli.main(["check-config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "client authentication: master key (from general_settings.master_key)" in out
    for path in (
        "model_list[0].litellm_params.tags",
        "model_list[0].litellm_params.custom_llm_provider",
        "router_settings.redis_host",
        "litellm_settings.set_verbose",
        "general_settings.alerting",
    ):
        assert f"  {path}: " in out, path
    # what the router reads is honoured, not listed as ignored
    assert "router: least-busy; num_retries 2" in out
    for path in ("litellm_params.rpm", "router_settings.routing_strategy", "num_retries:"):
        assert f"{path}" not in out.split("ignored:", 1)[1], path
    cfg.write_text("model_list: []\n")
    assert cli.main(["check-config", str(cfg)]) == 0
    assert (
        "client authentication: NONE: every caller is accepted, so the gateway serves on "
        "loopback only"
    ) in capsys.readouterr().out


def test_python_api_validates_deployment_settings():
    with pytest.raises(OutcropError) as info:
        outcrop.completion(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], api_base="not-a-url"
        )
    assert info.value.status == 400 and info.value.param == "api_base"
    assert "api_base: expected an http(s) URL, got 'not-a-url'" in info.value.message
    with pytest.raises(OutcropError) as info:
        outcrop.completion(model=MODEL, messages=[{"role": "user", "content": "hi"}], timeout=-1)
    assert info.value.param == "timeout" and "expected `float` > 0.0" in info.value.message
    with pytest.raises(OutcropError) as info:
        outcrop.completion(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            aws_access_key_id=TEST_ACCESS_KEY,
        )
    assert "aws_secret_access_key: required together with aws_access_key_id" in info.value.message
    assert TEST_SECRET_KEY not in info.value.message


def test_public_decoder_reports_every_problem_with_its_path():
    with pytest.raises(ConfigError) as info:
        outcrop.parse_params(
            {"model": "x", "aws_regoin_name": "us-east-1", "qualifier": "prod"},
            "plugin_section",
            provider_params=False,
        )
    assert info.value.errors == [
        "plugin_section.aws_regoin_name: unknown key (did you mean `aws_region_name`?)",
        "plugin_section.qualifier: unknown key",
    ]
    params = outcrop.parse_params(
        {
            "model": "x",
            "qualifier": "prod",
            "rpm": 5,
            "aws_bedrock_runtime_endpoint": "https://vpce.test",
        }
    )
    assert params.extra == {"qualifier": "prod"} and params.api_base == "https://vpce.test"


def test_the_litellm_key_tables_are_documented_and_do_not_shadow_settings():
    from outcrop.config import GeneralSettings
    from outcrop.config_keys import IGNORED, IGNORED_PARAMS, REFUSED
    from outcrop.params import PARAM_FIELDS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    tables = doc.split("## LiteLLM keys Outcrop does not implement", 1)[1]
    ignored, refused = tables.split("### Refused", 1)
    for section, keys in IGNORED.items():
        for key in keys:
            assert f"`{key}`" in ignored, f"{section}.{key} is not in the ignored table"
            assert key not in GeneralSettings.__struct_fields__
    for section, keys in REFUSED.items():
        for key in keys:
            assert f"`{key}`" in refused.split("## ", 1)[0], f"{section}.{key} not documented"
            assert key not in GeneralSettings.__struct_fields__
    for key in IGNORED_PARAMS:
        assert f"`{key}`" in ignored and key not in PARAM_FIELDS
    for key in ("master_key", "allow_unauthenticated", "max_request_bytes", "read_timeout"):
        assert f"| `{key}` |" in doc, f"general_settings.{key} is not documented"
