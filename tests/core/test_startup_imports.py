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
from botocore.configprovider import BOTOCORE_DEFAUT_SESSION_VARIABLES
from botocore.utils import normalize_url_path as botocore_normalize
from hypothesis import given, settings
from hypothesis import strategies as st

from outcrop import operations
from outcrop.aws import AwsSettings, CredentialSource, env_credentials
from outcrop.config import DeploymentParams
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


def test_the_operation_table_reads_the_aws_config_files_data_path(tmp_path, monkeypatch):
    """botocore's ``data_path`` setting also comes from the AWS config file (the profile's
    ``data_path``) when AWS_DATA_PATH is not set; the environment wins over the file."""
    description = operations.service_description("bedrock-runtime")
    description["operations"]["Converse"]["http"]["responseCode"] = 202
    models = tmp_path / "models"
    (models / "bedrock-runtime" / "2999-01-01").mkdir(parents=True)
    (models / "bedrock-runtime" / "2999-01-01" / "service-2.json").write_text(
        json.dumps(description)
    )
    config = tmp_path / "aws-config"
    config.write_text(f"[default]\ndata_path = {models}\n")
    monkeypatch.delenv("AWS_DATA_PATH", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    table = _table_from_outcrop()
    assert table[("bedrock-runtime", "Converse")][-1] == 202
    loader = botocore.session.Session().get_component("data_loader")
    assert table == _table_from_botocore(loader)
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path / "empty"))
    assert _table_from_outcrop()[("bedrock-runtime", "Converse")][-1] == 200


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


@settings(derandomize=True, max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(["/", ".", "..", "a", "%2F", ":", "é", "~", " "])).map("".join))
def test_any_path_normalises_as_botocores(path):
    assert normalize_url_path(path) == botocore_normalize(path)


_KEYS = {"AWS_ACCESS_KEY_ID": "AKID1", "AWS_SECRET_ACCESS_KEY": "s1"}
_CONFIG = "[profile other]\nregion = us-east-1\n"
_CREDENTIALS = "[other]\naws_access_key_id = AKIDFILE\naws_secret_access_key = filesecret\n"
_BROKEN = "not an ini file [[[\n=\n"


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """No AWS variable, no AWS file (``HOME`` is empty), IMDS off: each test sets its own."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never a link-local connection
    return tmp_path


def _botocores_answer():
    """What botocore's default chain gives: (key, secret, token), None, or the error's type."""
    try:
        found = botocore.session.Session().get_credentials()
    except Exception as exc:
        return type(exc).__name__
    return tuple(found.get_frozen_credentials())[:3] if found else None


def _outcrops_answer():
    """What a deployment without keys of its own signs with, in the same terms."""
    source = CredentialSource(DeploymentParams(model="bedrock/x"), AwsSettings())
    source.resolve()
    if source._frozen is not None:
        return tuple(source._frozen)
    assert source.error is not None
    return None if source.error == "no AWS credentials found" else source.error.split(":")[0]


@pytest.mark.parametrize(
    "env,files,fast",
    [
        (_KEYS, {}, True),
        ({**_KEYS, "AWS_SESSION_TOKEN": "t1"}, {}, True),
        ({**_KEYS, "AWS_SECURITY_TOKEN": "t2"}, {}, True),
        # both tokens: botocore takes AWS_SECURITY_TOKEN first
        ({**_KEYS, "AWS_SESSION_TOKEN": "t1", "AWS_SECURITY_TOKEN": "t2"}, {}, True),
        ({**_KEYS, "AWS_SESSION_TOKEN": "", "AWS_SECURITY_TOKEN": "t2"}, {}, True),
        ({**_KEYS, "AWS_SESSION_TOKEN": "t1", "AWS_SECURITY_TOKEN": ""}, {}, True),
        ({**_KEYS, "AWS_SESSION_TOKEN": "", "AWS_SECURITY_TOKEN": ""}, {}, True),
        ({**_KEYS, "AWS_CREDENTIAL_EXPIRATION": ""}, {}, True),
        ({"AWS_ACCESS_KEY_ID": " ", "AWS_SECRET_ACCESS_KEY": " "}, {}, True),
        # the environment's keys win over containers, web identity, a profile's keys...
        ({**_KEYS, "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:9/c"}, {}, True),
        ({**_KEYS, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/c"}, {}, True),
        (
            {**_KEYS, "AWS_WEB_IDENTITY_TOKEN_FILE": "/nonexistent", "AWS_ROLE_ARN": "arn"},
            {},
            True,
        ),
        ({**_KEYS, "AWS_PROFILE": "other"}, {"config": _CONFIG, "credentials": _CREDENTIALS}, 0),
        ({**_KEYS, "AWS_DEFAULT_PROFILE": "other"}, {"config": _CONFIG}, False),
        ({**_KEYS, "AWS_CONFIG_FILE": "$HOME/cfg"}, {"cfg": _CONFIG}, False),
        # ...but what botocore reads before them can make it fail: then no credentials
        ({**_KEYS, "AWS_PROFILE": "missing"}, {"config": _CONFIG}, False),
        ({**_KEYS, "AWS_PROFILE": ""}, {}, False),
        ({**_KEYS, "AWS_DEFAULT_PROFILE": "missing"}, {}, False),
        ({**_KEYS, "AWS_CONFIG_FILE": "$HOME/cfg"}, {"cfg": _BROKEN}, False),
        (_KEYS, {".aws/config": _BROKEN}, False),
        (_KEYS, {".aws/credentials": _BROKEN}, False),
        ({**_KEYS, "AWS_SHARED_CREDENTIALS_FILE": "~/creds"}, {"creds": _BROKEN}, False),
        ({**_KEYS, "AWS_METADATA_SERVICE_TIMEOUT": "soon"}, {}, False),
        ({**_KEYS, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE": "IPv5"}, {}, False),
        # expiring keys are botocore's (refreshable), partial ones its error or next link
        ({**_KEYS, "AWS_CREDENTIAL_EXPIRATION": "2999-01-01T00:00:00Z"}, {}, False),
        ({**_KEYS, "AWS_CREDENTIAL_EXPIRATION": "not a date"}, {}, False),
        ({}, {}, False),
        ({"AWS_ACCESS_KEY_ID": "AKID1"}, {}, False),
        ({"AWS_ACCESS_KEY_ID": "AKID1", "AWS_SECRET_ACCESS_KEY": ""}, {}, False),
        ({"AWS_SECRET_ACCESS_KEY": "s1"}, {}, False),
        ({"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "s1"}, {}, False),
        (
            {"AWS_SECRET_ACCESS_KEY": "s1"},
            {".aws/credentials": "[default]\n" + _CREDENTIALS[8:]},
            0,
        ),
    ],
)
def test_environment_credentials_equal_botocores_default_chain(
    aws_env, monkeypatch, env, files, fast
):
    """A deployment without keys signs with what botocore's default chain gives (or fails as it
    does), and skips botocore only where its chain would stop at the environment's keys."""
    for name, text in files.items():
        (aws_env / name).parent.mkdir(exist_ok=True)
        (aws_env / name).write_text(text)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _outcrops_answer() == _botocores_answer()
    assert (env_credentials() is not None) == bool(fast)


def _botocores_variables() -> list[str]:
    """Every environment variable botocore's session settings read."""
    names = set()
    for spec in BOTOCORE_DEFAUT_SESSION_VARIABLES.values():
        env = spec[1]
        names.update([env] if isinstance(env, str) else env or [])
    names.discard("AWS_EC2_METADATA_DISABLED")  # kept on: no test dials IMDS
    return sorted(names)


@pytest.mark.parametrize("value", ["", "-1", "not valid!"])
def test_no_botocore_setting_changes_the_environment_keys_answer(aws_env, monkeypatch, value):
    """Whatever botocore setting is in the environment, even one it refuses, a deployment
    without keys gets botocore's answer."""
    for name, key in _KEYS.items():
        monkeypatch.setenv(name, key)
    differ = {}
    for name in _botocores_variables():
        with monkeypatch.context() as m:
            m.setenv(name, value)
            ours, theirs = _outcrops_answer(), _botocores_answer()
            if ours != theirs:
                differ[name] = (ours, theirs)
    assert differ == {}
