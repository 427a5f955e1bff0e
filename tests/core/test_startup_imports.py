"""What `outcrop serve` imports at start-up: botocore only when a deployment needs it, SQLAlchemy
only when keys are on; and the botocore-free replacements give botocore's answers."""

import json
import os
import subprocess
import sys
import textwrap

import botocore.loaders
import botocore.session
import pytest
from botocore.utils import normalize_url_path as botocore_normalize

from outcrop import operations
from outcrop.aws import env_credentials
from outcrop.sigv4_canonical import normalize_url_path

#: A fresh interpreter builds the app as `outcrop serve` does (parser, plugins, app, lifespan
#: start-up), gets static credentials and an endpoint, signs a request, then says what it loaded.
_SERVE = textwrap.dedent("""
    import asyncio, json, sys
    from outcrop.cli import build_parser
    from outcrop.app import create_app
    from outcrop.config import load_config, DeploymentParams
    from outcrop import sigv4

    build_parser()
    app = create_app(load_config(sys.argv[1]))
    gateway = app.state.gateway

    async def main():
        messages = asyncio.Queue()
        sent = []
        await messages.put({"type": "lifespan.startup"})

        async def send(message):
            sent.append(message["type"])

        task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"},
                                        "state": {}}, messages.get, send))
        while not sent:
            await asyncio.sleep(0.01)
        params = DeploymentParams(model="bedrock/x", aws_access_key_id="AKIDSTATIC",
                                  aws_secret_access_key="secret", aws_region_name="us-west-2",
                                  api_base="http://127.0.0.1:9")
        frozen = await gateway.credentials(params)
        from_env = await gateway.credentials(DeploymentParams(model="bedrock/y",
                                                              aws_region_name="us-west-2"))
        headers = {}
        sigv4.sign("POST", gateway.endpoint("bedrock-runtime", "us-west-2", params) + "/model/x/converse",
                   headers, b"{}", access_key=frozen.access_key, secret_key=frozen.secret_key,
                   token=frozen.token, region="us-west-2", service="bedrock")
        await messages.put({"type": "lifespan.shutdown"})
        await task
        signed = "authorization" in {k.lower() for k in headers}
        return sent[0], frozen.access_key, from_env.access_key, signed

    started, key, env_key, signed = asyncio.run(main())
    heavy = sorted(m for m in ("botocore", "sqlalchemy", "alembic") if m in sys.modules)
    print(json.dumps({"started": started, "key": key, "env_key": env_key, "signed": signed,
                      "loaded": heavy}))
""")


def _serve_imports(tmp_path, general_settings: dict) -> dict:
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"model_list": [], "general_settings": general_settings}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OUTCROP_"))}
    env.pop("DATABASE_URL", None)
    env.update(
        HOME=str(tmp_path),
        AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ACCESS_KEY_ID="AKIDFROMENV",
        AWS_SECRET_ACCESS_KEY="secret-from-env",
        OUTCROP_LOG_LEVEL="WARNING",
    )
    r = subprocess.run(
        [sys.executable, "-c", _SERVE, str(config)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_keys_in_deployments_or_the_environment_and_no_aws_config_never_import_botocore(
    tmp_path,
):
    out = _serve_imports(tmp_path, {})
    assert out["started"] == "lifespan.startup.complete"
    assert out["key"] == "AKIDSTATIC" and out["signed"]
    assert out["env_key"] == "AKIDFROMENV"
    # no master key: outcrop-keys (when installed) stays off and never loads SQLAlchemy
    assert out["loaded"] == []


def test_keys_on_load_sqlalchemy_but_not_alembic_on_a_current_database(tmp_path):
    pytest.importorskip("outcrop_keys")
    settings = {
        "master_key": "sk-startup-imports-0000",
        "database_url": f"sqlite:///{tmp_path}/k.db",
    }
    _serve_imports(tmp_path, settings)  # the first start-up migrates (Alembic)
    out = _serve_imports(tmp_path, settings)
    assert out["started"] == "lifespan.startup.complete"
    assert out["loaded"] == ["sqlalchemy"]


def _table_from_botocore(loader: botocore.loaders.Loader) -> dict:
    session = botocore.session.Session()
    session.register_component("data_loader", loader)
    table = {}
    for service in operations.DATA_PLANE_SERVICES:
        model = session.get_service_model(service)
        bearer = "smithy.api#httpBearerAuth" in (model.metadata.get("auth") or [])
        for name in model.operation_names:
            op = model.operation_model(name)
            table[(service, name)] = (
                model.signing_name,
                bearer,
                op.http["method"],
                op.http["requestUri"].split("?", 1)[0],
                op.get_event_stream_output() is not None,
                int(op.http.get("responseCode", 200)),
            )
    return table


def _table_from_outcrop() -> dict:
    operations.operation_table.cache_clear()
    try:
        return {
            (op.service, op.name): (
                op.signing_name,
                op.bearer_auth,
                op.method,
                op.template,
                op.event_stream,
                op.status,
            )
            for op in operations.all_operations()
        }
    finally:
        operations.operation_table.cache_clear()


def test_the_operation_table_read_without_botocore_equals_botocores_models():
    table = _table_from_outcrop()
    assert table == _table_from_botocore(botocore.loaders.create_loader())
    assert any(streams for *_, streams, _ in table.values())  # ConverseStream and friends


def test_the_operation_table_reads_a_newer_model_from_aws_data_path(tmp_path, monkeypatch):
    """As botocore's loader does: the newest API version across the search paths wins."""
    description = operations.service_description("bedrock-runtime")
    description["operations"]["Converse"]["http"]["responseCode"] = 201
    folder = tmp_path / "bedrock-runtime" / "2999-01-01"
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps(description))
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    table = _table_from_outcrop()
    assert table[("bedrock-runtime", "Converse")][-1] == 201
    assert table == _table_from_botocore(botocore.loaders.create_loader(str(tmp_path)))


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/",
        "//",
        "/a/b/c",
        "/a//b///c/",
        "/a/./b/../c",
        "/../a",
        "a/b/../..",
        "/a/b/..",
        "/a/b/../",
        "/./",
        "/model/arn%3Aaws%3Abedrock%3Aus-west-2%3A1%3Afoo%2Fbar/converse",
        "/x/..%2F/y",
        "relative/./path/",
    ],
)
def test_path_normalisation_equals_botocores(path):
    assert normalize_url_path(path) == botocore_normalize(path)


@pytest.mark.parametrize(
    "env",
    [
        {"AWS_ACCESS_KEY_ID": "AKID1", "AWS_SECRET_ACCESS_KEY": "s1"},
        {"AWS_ACCESS_KEY_ID": "AKID1", "AWS_SECRET_ACCESS_KEY": "s1", "AWS_SESSION_TOKEN": "t1"},
        {"AWS_ACCESS_KEY_ID": "AKID1", "AWS_SECRET_ACCESS_KEY": "s1", "AWS_SECURITY_TOKEN": "t2"},
        {
            "AWS_ACCESS_KEY_ID": "AKID1",
            "AWS_SECRET_ACCESS_KEY": "s1",
            "AWS_SESSION_TOKEN": "",
            "AWS_SECURITY_TOKEN": "t2",
        },
        {"AWS_ACCESS_KEY_ID": "AKID1", "AWS_SECRET_ACCESS_KEY": "s1", "AWS_PROFILE": "other"},
    ],
)
def test_environment_keys_equal_botocores_default_chain(env, monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    (tmp_path / "config").write_text("[profile other]\nregion = us-east-1\n")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    theirs = botocore.session.Session().get_credentials().get_frozen_credentials()
    assert env_credentials() == (theirs.access_key, theirs.secret_key, theirs.token)


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"AWS_ACCESS_KEY_ID": "AKID1"},  # partial: botocore says what is missing
        {"AWS_SECRET_ACCESS_KEY": "s1"},
        {
            "AWS_ACCESS_KEY_ID": "AKID1",
            "AWS_SECRET_ACCESS_KEY": "s1",
            "AWS_CREDENTIAL_EXPIRATION": "2999-01-01T00:00:00Z",  # refreshable: botocore's
        },
    ],
)
def test_environment_keys_defer_to_botocore_unless_fixed_and_complete(env, monkeypatch):
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert env_credentials() is None
