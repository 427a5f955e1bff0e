"""Issue 9 item 1: a region that is not a region never picks a host or a SigV4 scope.

Every surface a region can come from is scanned with hostile values: the chat route (AgentCore
and native model ARNs in model strings, the Python API's ``aws_region_name``, a body that tries
to set one), the
pass-through's model ARNs and AgentCore runtime ARNs in the path, and the region of a client's
SigV4 credential scope. Each case must answer a 400 in the caller's dialect before any
connection: the simulator records nothing, the loopback guard (tests/conftest.py) sees no lookup
or connection to another host, and the worker still serves a good call afterwards.

The scan gateway configures no region and no endpoint for the pass-through's defaults: a region
that slipped through would be formatted into an AWS host name and dialled (the guard would see
it); only the configured deployments point at the simulator.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

import outcrop
from outcrop import Config, ConfigError, DeploymentParams, Gateway, OutcropError, UpstreamRequest
from outcrop.app import create_app
from outcrop.aws import MAX_CACHED_ENDPOINTS, AwsSettings
from outcrop.sigv4 import sign
from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY, ServerThread
from tests.clients import calls_settled, deployment_params

from .scan import CONVERSE_BODY, USER, nothing_left_the_gateway, simulator, still_serves

KEY = "sk-region-scan"
AUTH = {"Authorization": f"Bearer {KEY}"}
SDK_KEY_ID = "OUTCROPREGIONSCAN01"
SDK_SECRET = "outcrop-region-scan-secret-000001"
AGENT = "bedrock/agent/L1RT58GYRW/MFPSBCXYTW"
RUNTIME = "arn:aws:bedrock-agentcore:{}:123456789012:runtime/my_agent-AbCdEf1234"
PROFILE = (
    "arn:aws:bedrock:{}:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0"
)

#: Not regions. Each would put something other than an AWS-owned host into the URL, or bend the
#: host name (case, other scripts' letters and digits, a huge label).
HOSTILE = [
    "#",
    "/",
    "@",
    ":",
    "%23",
    "us-west-2#",
    "us-west-2/x",
    "user@us-west-2",
    "us-west-2:443",
    "us-west-2%23",
    "us-west-2?x=1",
    "US-WEST-2",
    "Us-West-2",
    "us-w\u00e9st-2",  # é
    "us-west-\u0662",  # ARABIC-INDIC DIGIT TWO: a \d, not a [0-9]
    "\uff55s-west-2",  # FULLWIDTH u
    "us-west-2\u200b",  # zero-width space
    "us-" + "west-" * 200 + "2",  # 1,005 characters
    "attacker.test#",
    "attacker.test:8443#",
    "us-west-2.attacker.test",
    "127.0.0.1",
    "localhost",
    " us-west-2",
    "us-west-2-",
    "us--2",
]
IDS = [f"{i:02d}-{r[:24]!r}" for i, r in enumerate(HOSTILE)]
#: In an ARN, ':' ends the region field: these two leave a real region (us-west-2, with "443" as
#: the account) or none at all, so they are not hostile there.
ARN_HOSTILE = [r for r in HOSTILE if r not in (":", "us-west-2:443")]
ARN_IDS = [i for i, r in zip(IDS, HOSTILE, strict=True) if r in ARN_HOSTILE]
API_CONFIG = Config()  # the Python API keeps one gateway per (event loop, config object)


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    with simulator(SDK_KEY_ID, SDK_SECRET) as sim:
        yield sim


@pytest.fixture(scope="module")
def gw_server(sim: Any) -> Iterator[ServerThread]:
    with pytest.MonkeyPatch.context() as mp:
        _no_aws_env(mp)
        app = create_app(
            {
                "model_list": [
                    {"model_name": "agent", "litellm_params": deployment_params(sim.url, AGENT)},
                    {
                        "model_name": "native",
                        "litellm_params": deployment_params(
                            sim.url, "bedrock/us.anthropic.claude-3-5-sonnet-20240620-v1:0"
                        ),
                    },
                ],
                "general_settings": {"master_key": KEY, "allow_raw_models": True},
                # the pass-through's defaults: credentials, no region, no endpoint
                "bedrock_passthrough": {
                    "aws_access_key_id": TEST_ACCESS_KEY,
                    "aws_secret_access_key": TEST_SECRET_KEY,
                    "keys": [{"access_key_id": SDK_KEY_ID, "secret_access_key": SDK_SECRET}],
                },
            }
        )
        with ServerThread(app) as server:
            yield server


@pytest.fixture
def gw(gw_server: ServerThread) -> Iterator[str]:
    """The module's gateway for one test; its calls have ended (and logged) when the test does."""
    yield gw_server.url
    calls_settled(gw_server)


def _no_aws_env(mp: pytest.MonkeyPatch, tmp: str = "/nonexistent/outcrop-region-scan") -> None:
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            mp.delenv(name)
    mp.setenv("AWS_CONFIG_FILE", tmp + "/config")
    mp.setenv("AWS_SHARED_CREDENTIALS_FILE", tmp + "/credentials")
    mp.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(autouse=True)
def _clean(sim: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    _no_aws_env(monkeypatch)
    sim.reset()
    yield
    sim.reset()


def _openai_400(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and isinstance(error["message"], str)
    assert len(r.content) < 2000  # a 1,005-character region is not echoed whole
    return error


def _aws_400(r: httpx.Response, aws_type: str = "ValidationException", status: int = 400) -> str:
    assert r.status_code == status, r.text
    assert r.headers["x-amzn-errortype"] == aws_type
    assert len(r.content) < 2000
    return r.json()["message"]


# -- request surfaces ---------------------------------------------------------------------------


@pytest.mark.parametrize("region", HOSTILE, ids=IDS)
def test_chat_agentcore_model_string(gw, sim, region):
    r = httpx.post(
        f"{gw}/v1/chat/completions",
        headers=AUTH,
        json={"model": "bedrock/agentcore/" + RUNTIME.format(region), "messages": USER},
    )
    assert _openai_400(r)["param"] == "model"
    nothing_left_the_gateway(sim)
    still_serves(gw, sim, AUTH)


@pytest.mark.parametrize("region", ARN_HOSTILE, ids=ARN_IDS)
def test_chat_native_model_arn(gw, sim, region):
    r = httpx.post(
        f"{gw}/v1/chat/completions",
        headers=AUTH,
        json={"model": "bedrock/" + PROFILE.format(region), "messages": USER},
    )
    assert _openai_400(r)["param"] == "model"
    nothing_left_the_gateway(sim)
    still_serves(gw, sim, AUTH)


@pytest.mark.parametrize("region", HOSTILE, ids=IDS)
def test_chat_body_cannot_set_a_region(gw, sim, region):
    r = httpx.post(
        f"{gw}/v1/chat/completions",
        headers=AUTH,
        json={"model": "agent", "messages": USER, "aws_region_name": region},
    )
    assert _openai_400(r)["param"] == "aws_region_name"
    nothing_left_the_gateway(sim)
    still_serves(gw, sim, AUTH)


@pytest.mark.parametrize("region", HOSTILE, ids=IDS)
async def test_python_api_aws_region_name(gw, sim, region):
    # The Python API takes deployment settings as keywords: here the endpoint is the simulator,
    # so a region that slipped through would show up there, in a SigV4 scope.
    with pytest.raises(OutcropError) as caught:
        await outcrop.acompletion(
            model=AGENT,
            messages=USER,
            config=API_CONFIG,
            aws_region_name=region,
            api_base=sim.url,
            aws_access_key_id=TEST_ACCESS_KEY,
            aws_secret_access_key=TEST_SECRET_KEY,
        )
    assert (caught.value.status, caught.value.code) == (400, "invalid_region")
    assert "aws_region_name" in caught.value.message
    nothing_left_the_gateway(sim)
    still_serves(gw, sim, AUTH)


@pytest.mark.parametrize("region", ARN_HOSTILE, ids=ARN_IDS)
def test_passthrough_model_arn_in_the_path(gw, sim, region):
    path = f"/bedrock/model/{quote(PROFILE.format(region), safe='')}/converse"
    r = httpx.post(gw + path, headers=AUTH, content=CONVERSE_BODY)
    assert "region of the model ARN" in _aws_400(r)
    nothing_left_the_gateway(sim)
    still_serves(gw, sim, AUTH)


@pytest.mark.parametrize("region", ARN_HOSTILE, ids=ARN_IDS)
def test_passthrough_agentcore_runtime_arn_in_the_path(gw, sim, region):
    path = f"/bedrock/runtimes/{quote(RUNTIME.format(region), safe='')}/invocations"
    r = httpx.post(gw + path, headers=AUTH, content=b'{"prompt": "hi"}')
    assert "region of the agent runtime ARN" in _aws_400(r)
    nothing_left_the_gateway(sim)
    still_serves(gw, sim, AUTH)


def _signed_with_scope(gw: str, path: str, region: str) -> httpx.Response:
    """A request signed by a gateway-issued key with ``region`` in its credential scope.

    Header values travel as bytes read back as Latin-1, so a non-Latin-1 region is signed the
    way the gateway will read it: the signature verifies and the region reaches the router.
    """
    on_the_wire = region.encode("utf-8").decode("latin-1")
    url = gw + path
    headers = {"Content-Type": "application/json"}
    sign(
        "POST",
        url,
        headers,
        CONVERSE_BODY,
        access_key=SDK_KEY_ID,
        secret_key=SDK_SECRET,
        token=None,
        region=on_the_wire,
        service="bedrock",
    )
    raw = {k: v.encode("latin-1") for k, v in headers.items()}
    return httpx.post(url, headers=raw, content=CONVERSE_BODY)


@pytest.mark.parametrize("region", HOSTILE, ids=IDS)
def test_region_of_the_clients_sigv4_scope(gw, sim, region):
    # No region is configured anywhere: the client's own scope would be the last resort.
    r = _signed_with_scope(gw, "/bedrock/model/cohere.command-r-v1%3A0/converse", region)
    if "/" in region:  # the Credential cannot even be split into its five parts
        _aws_400(r, "IncompleteSignatureException", 403)
    else:
        assert "SigV4 credential scope" in _aws_400(r)
    nothing_left_the_gateway(sim)
    still_serves(gw, sim, AUTH)


def test_a_real_region_in_the_scope_is_still_used(gw, sim):
    # the same request with a region: it passes the check and is signed for it. No endpoint
    # is configured, so the gateway would dial AWS: point the defaults at the simulator instead.
    app_gw = create_app(
        {
            "general_settings": {"master_key": KEY},
            "bedrock_passthrough": {
                "aws_access_key_id": TEST_ACCESS_KEY,
                "aws_secret_access_key": TEST_SECRET_KEY,
                "api_base": sim.url,
                "keys": [{"access_key_id": SDK_KEY_ID, "secret_access_key": SDK_SECRET}],
            },
        }
    )
    with ServerThread(app_gw) as server:
        r = _signed_with_scope(
            server.url, "/bedrock/model/cohere.command-r-v1%3A0/converse", "ap-southeast-5"
        )
    assert r.status_code == 200, r.text
    assert sim.last("Converse").region == "ap-southeast-5"


# -- configuration sources ------------------------------------------------------------------------


def _config_error(config: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        Gateway(outcrop.parse_config(config))
    return str(caught.value)


@pytest.mark.parametrize("region", HOSTILE, ids=IDS)
def test_config_sources_name_their_path(region):
    deployment = {"model": AGENT, "aws_region_name": region}
    text = _config_error({"model_list": [{"model_name": "a", "litellm_params": deployment}]})
    assert "model_list[0].litellm_params.aws_region_name: " in text and "not an AWS region" in text
    text = _config_error({"general_settings": {"default_region": region}})
    assert text.startswith("general_settings.default_region: ")
    text = _config_error({"bedrock_passthrough": {"aws_region_name": region}})
    assert text.startswith("bedrock_passthrough.aws_region_name: ")
    models = ["bedrock/agentcore/" + RUNTIME.format(region)]
    if region in ARN_HOSTILE:
        models.append("bedrock/" + PROFILE.format(region))
    for model in models:
        text = _config_error(
            {"model_list": [{"model_name": "a", "litellm_params": {"model": model}}]}
        )
        assert text.startswith("model_list[0].litellm_params.model: "), text
    assert len(text) < 1000


@pytest.mark.parametrize("variable", ["AWS_REGION", "AWS_DEFAULT_REGION", "AWS_REGION_NAME"])
@pytest.mark.parametrize(
    "region", ["attacker.test#", "attacker.test:8443#", "US-WEST-2", "us-west-\u0662"]
)
def test_environment_region_is_a_config_error(monkeypatch, variable, region):
    monkeypatch.setenv(variable, region)
    assert _config_error({}).startswith(f"{variable} (environment): ")


@pytest.mark.parametrize(
    "where",
    [
        {"AWS_CONFIG_FILE": "{tmp}/config"},
        {"AWS_CONFIG_FILE": "$REGION_TEST_DIR/config"},  # expanded as botocore expands it
        {"AWS_CONFIG_FILE": "{tmp}/config", "AWS_PROFILE": "other"},
        {"AWS_CONFIG_FILE": "{tmp}/config", "AWS_DEFAULT_PROFILE": "other"},
        {"HOME": "{tmp}/home"},  # ~/.aws/config
    ],
)
def test_profile_region_is_a_config_error(monkeypatch, tmp_path, where):
    """Read without botocore unless the file exists: whichever way the environment names the
    file or the profile, the region is checked (environment keys present or not)."""
    text = "[default]\nregion = attacker.test:8443#\n[profile other]\nregion = x.test#\n"
    (tmp_path / "config").write_text(text)
    (tmp_path / "home" / ".aws").mkdir(parents=True)
    (tmp_path / "home" / ".aws" / "config").write_text(text)
    monkeypatch.setenv("REGION_TEST_DIR", str(tmp_path))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    monkeypatch.delenv("AWS_CONFIG_FILE")  # the isolating fixture's (no file)
    for name, value in where.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    region = "x.test#" if "other" in where.values() else "attacker.test:8443#"
    assert f"the AWS config file's region: {region!r}" in _config_error({})


# -- the core's own defences ------------------------------------------------------------------------


@pytest.mark.parametrize("region", HOSTILE, ids=IDS)
def test_endpoint_builder_refuses_to_format_a_non_region(region):
    with pytest.raises(OutcropError) as caught:
        AwsSettings().endpoint("bedrock-runtime", region, None)
    assert caught.value.code == "invalid_region"


def test_endpoint_cache_is_bounded():
    aws = AwsSettings()
    for i in range(MAX_CACHED_ENDPOINTS * 3):
        region = f"zz-{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}{chr(97 + i // 676)}-1"
        assert aws.endpoint("bedrock-runtime", region, None).endswith(f".{region}.amazonaws.com")
    assert len(aws._endpoints) == MAX_CACHED_ENDPOINTS


async def test_nothing_is_signed_for_a_non_region(sim):
    # whatever built the request, the gateway refuses to sign a scope that is not a region
    gateway = Gateway(Config())
    request = UpstreamRequest(
        "POST",
        sim.url + "/model/m/converse",
        {},
        b"{}",
        service="bedrock-runtime",
        signing_name="bedrock",
        region="attacker.test:8443#",
    )
    params = DeploymentParams(
        model="m", aws_access_key_id=TEST_ACCESS_KEY, aws_secret_access_key=TEST_SECRET_KEY
    )
    try:
        with pytest.raises(OutcropError) as caught:
            await gateway.send(request, params)
    finally:
        await gateway.stop()
    assert caught.value.code == "invalid_region" and "Authorization" not in request.headers
    nothing_left_the_gateway(sim)


# -- what a failed connection tells the client ------------------------------------------------------


class _LogRecorder:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))


def test_502_bodies_never_name_the_dialled_host_port_or_error(sim, gateway_factory, monkeypatch):
    logged = _LogRecorder()
    monkeypatch.setattr(outcrop.upstream, "log", logged)
    closed = "http://127.0.0.1:9"  # loopback, nothing listens: the connection is refused
    gw_ = gateway_factory(
        {
            "model_list": [
                {
                    "model_name": "agent",
                    "litellm_params": {**deployment_params(sim.url, AGENT), "api_base": closed},
                }
            ],
            "general_settings": {"master_key": KEY, "allow_raw_models": True},
            "bedrock_passthrough": {
                "aws_region_name": "us-west-2",
                "api_base": closed,
                "aws_access_key_id": TEST_ACCESS_KEY,
                "aws_secret_access_key": TEST_SECRET_KEY,
            },
        }
    )
    chat = httpx.post(
        f"{gw_.url}/v1/chat/completions", headers=AUTH, json={"model": "agent", "messages": USER}
    )
    native = httpx.post(
        f"{gw_.url}/bedrock/model/cohere.command-r-v1:0/converse",
        headers=AUTH,
        content=CONVERSE_BODY,
    )
    assert chat.status_code == 502 and native.status_code == 502
    assert chat.json()["error"]["message"] == "could not reach bedrock-agent-runtime"
    assert native.json()["message"] == "could not reach bedrock-runtime"
    for body in (chat.text, native.text):
        assert "127.0.0.1" not in body and ":9" not in body and "onnect" not in body
    # the operator still sees where, and why
    assert [(event, f["origin"]) for event, f in logged.lines] == [
        ("upstream_unreachable", closed),
        ("upstream_unreachable", closed),
    ]
    assert all("Connect" in f["error"] for _, f in logged.lines)
