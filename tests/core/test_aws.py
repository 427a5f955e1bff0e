"""Region, endpoint and credential resolution, as botocore does it."""

import asyncio
import datetime as dt

import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from outcrop.aws import AwsSettings, dns_suffix
from outcrop.config import DeploymentParams
from outcrop.errors import OutcropError
from outcrop.testing.server import ServerThread


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in (
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
        "AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME",
        "AWS_ENDPOINT_URL_BEDROCK_AGENTCORE",
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


def test_default_hosts_per_partition(clean_env):
    aws = AwsSettings()
    assert (
        aws.endpoint("bedrock-agent-runtime", "us-west-2", None)
        == "https://bedrock-agent-runtime.us-west-2.amazonaws.com"
    )
    assert (
        aws.endpoint("bedrock-agentcore", "cn-north-1", None)
        == "https://bedrock-agentcore.cn-north-1.amazonaws.com.cn"
    )
    assert dns_suffix("eusc-de-east-1") == "amazonaws.eu"


def test_endpoint_order(clean_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://global:1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_AGENTCORE", "http://agentcore:2/")
    aws = AwsSettings()
    assert aws.endpoint("bedrock-agentcore", "us-east-1", None) == "http://agentcore:2"
    assert aws.endpoint("bedrock-runtime", "us-east-1", None) == "http://global:1"
    params = DeploymentParams(
        model="x", api_base="https://vpce-123.bedrock-runtime.us-east-1.vpce.amazonaws.com/"
    )
    assert (
        aws.endpoint("bedrock-runtime", "us-east-1", params)
        == "https://vpce-123.bedrock-runtime.us-east-1.vpce.amazonaws.com"
    )


def test_endpoint_from_shared_config_services_section(clean_env):
    (clean_env / "config").write_text(
        "[default]\nservices = local\n\n[services local]\nbedrock_agent_runtime =\n  endpoint_url = http://from-config:3\n"
    )
    aws = AwsSettings()
    assert aws.endpoint("bedrock-agent-runtime", "us-east-1", None) == "http://from-config:3"
    assert (
        aws.endpoint("bedrock-runtime", "us-east-1", None)
        == "https://bedrock-runtime.us-east-1.amazonaws.com"
    )


def test_region_order(clean_env, monkeypatch):
    aws = AwsSettings()
    with pytest.raises(OutcropError, match="no AWS region"):
        aws.region(DeploymentParams(model="x"))
    (clean_env / "config").write_text("[default]\nregion = ap-south-1\n")
    assert AwsSettings().region(DeploymentParams(model="x")) == "ap-south-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert AwsSettings().region(DeploymentParams(model="x")) == "eu-west-1"
    monkeypatch.setenv("AWS_REGION", "eu-west-2")
    assert AwsSettings().region(DeploymentParams(model="x")) == "eu-west-2"
    assert (
        AwsSettings().region(DeploymentParams(model="x"), route_region="us-east-2") == "us-east-2"
    )
    assert (
        AwsSettings().region(DeploymentParams(model="x", aws_region_name="sa-east-1"), "us-east-2")
        == "sa-east-1"
    )


def test_static_profile_and_env_credentials(clean_env, monkeypatch):
    (clean_env / "credentials").write_text(
        "[team]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profsecret\n"
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
    aws = AwsSettings()

    async def resolve(params):
        return await aws.credentials(params)

    assert (
        asyncio.run(
            resolve(
                DeploymentParams(
                    model="x", aws_access_key_id="AKIDSTATIC", aws_secret_access_key="s"
                )
            )
        ).access_key
        == "AKIDSTATIC"
    )
    assert (
        asyncio.run(resolve(DeploymentParams(model="x", aws_profile_name="team"))).access_key
        == "AKIDPROFILE"
    )
    assert asyncio.run(resolve(DeploymentParams(model="x"))).access_key == "AKIDENV"


def test_missing_credentials_is_a_clear_error(clean_env):
    aws = AwsSettings()
    with pytest.raises(OutcropError, match="AWS credentials are not available"):
        asyncio.run(aws.credentials(DeploymentParams(model="x")))


def test_botocores_reason_goes_to_the_log_not_to_the_caller(clean_env):
    """A missing profile's name (or an STS answer with a role ARN) is the operator's business."""
    aws = AwsSettings()
    params = DeploymentParams(model="x", aws_profile_name="secret-team-profile")
    with pytest.raises(OutcropError) as caught:
        asyncio.run(aws.credentials(params))
    assert "secret-team-profile" not in str(caught.value)
    assert "ProfileNotFound" in (aws.source(params).error or "")


def _fake_sts(calls):
    async def sts(request):
        form = (await request.body()).decode()
        calls.append(form)
        exp = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        xml = f"""<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
<Credentials><AccessKeyId>ASIAASSUMED</AccessKeyId><SecretAccessKey>assumedsecret</SecretAccessKey>
<SessionToken>assumedtoken</SessionToken><Expiration>{exp}</Expiration></Credentials>
<AssumedRoleUser><AssumedRoleId>AROA:outcrop</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/r/outcrop</Arn></AssumedRoleUser>
</AssumeRoleResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleResponse>"""
        return Response(xml, media_type="text/xml")

    return Starlette(routes=[Route("/", sts, methods=["POST"])])


def test_assume_role_resolves_once_off_loop(clean_env):
    calls = []
    with ServerThread(_fake_sts(calls)) as sts:
        aws = AwsSettings()
        params = DeploymentParams(
            model="x",
            aws_access_key_id="AKIDBASE",
            aws_secret_access_key="base",
            aws_role_name="arn:aws:iam::123456789012:role/r",
            aws_session_name="outcrop-test",
            aws_region_name="us-east-1",
            aws_sts_endpoint=sts.url,
        )

        async def twice():
            a = await aws.credentials(params)
            b = await aws.credentials(params)
            return a, b

        a, b = asyncio.run(twice())
    assert a.access_key == "ASIAASSUMED" and a.token == "assumedtoken" and b == a
    assert (
        len(calls) == 1
        and "Action=AssumeRole" in calls[0]
        and "RoleSessionName=outcrop-test" in calls[0]
    )
