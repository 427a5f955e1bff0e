"""The `outcrop` command: check-config, serve, --config, bad configs exit without a traceback."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from .procs import Served, free_port, wait_ready

PY = sys.executable


def run(*args, env=None, **kw):
    return subprocess.run(
        [PY, "-m", "outcrop", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
        **kw,
    )


BAD = """
model_list:
  - model_name: a
    litellm_params:
      model: 42
  - litellm_params:
      model: nobody/claims/this
general_settings:
  master_key: os.environ/OUTCROP_TEST_UNSET_VAR
"""


def test_check_config_reports_field_paths_without_traceback(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(BAD)
    r = run("check-config", str(cfg), env={"OUTCROP_TEST_UNSET_VAR": ""} | {})
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "model_list[0].litellm_params.model: expected `str`, got `int`" in r.stderr
    assert "model_list[1].model_name: required" in r.stderr


def test_serve_with_bad_config_exits_nonzero(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        "model_list:\n  - model_name: x\n    litellm_params:\n      model: nobody/claims/this\n"
    )
    for args in (("serve", "--config", str(cfg)), ("--config", str(cfg))):
        r = run(*args, "--port", "0")
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr
        assert (
            "model_list[0].litellm_params.model: no installed plugin claims model 'nobody/claims/this'"
            in r.stderr
        )


def test_check_config_ok(tmp_path):
    cfg = tmp_path / "ok.yaml"
    cfg.write_text("general_settings:\n  master_key: sk-1\n")
    r = run("check-config", str(cfg))
    assert r.returncode == 0 and "OK" in r.stdout


def test_serve_answers_and_shuts_down_gracefully(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("general_settings:\n  master_key: sk-serve\n")
    with Served([PY, "-m", "outcrop", "--config", str(cfg), "--host", "127.0.0.1"]) as server:
        assert httpx.get(f"{server.url}/v1/models").status_code == 401
        assert (
            httpx.get(
                f"{server.url}/v1/models", headers={"Authorization": "Bearer sk-serve"}
            ).status_code
            == 200
        )
        assert server.stop(timeout=20) == 0
    assert "sk-serve" not in server.logs()


def test_plugins_command_runs():
    r = run("plugins", "--all")
    assert (
        r.returncode == 0
        and "outcrop.default_signer" in r.stdout
        and "outcrop_sign_request" in r.stdout
    )


def test_readme_has_the_two_commands():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "outcrop demo" in readme and "scripts/test" in readme


def test_serve_with_two_workers(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("general_settings:\n  master_key: sk-workers\n")
    command = [PY, "-m", "outcrop", "serve", "--config", str(cfg), "--host", "127.0.0.1"]
    # its own key store: keys other tests left in the shared one must not decide the start
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/keys.db"}
    with Served([*command, "--workers", "2"], env=env) as server:
        # The first worker can answer before the second has started: wait for both.
        server.output.wait_for("Running on", count=2)
        for _ in range(4):
            r = httpx.get(f"{server.url}/v1/models", headers={"Authorization": "Bearer sk-workers"})
            assert r.status_code == 200
        server.stop(timeout=30)
    assert server.logs().count("Running on") == 2


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
def test_serve_with_an_optional_server(tmp_path, server):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("general_settings:\n  master_key: sk-other\n")
    port = free_port()
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "outcrop",
            "serve",
            "--server",
            server,
            "--config",
            str(cfg),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        url = f"http://127.0.0.1:{port}/v1/models"
        r = httpx.get(url, headers={"Authorization": "Bearer sk-other"})
        assert r.status_code == 200 and r.headers["x-request-id"]
        assert httpx.get(url).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal it handled once shut down: both mean a clean stop
        clean = (0, -signal.SIGTERM) if server == "uvicorn" else (0,)
        assert proc.wait(timeout=60) in clean
    err = proc.stderr.read()
    assert f'"server": "{server}"' in err
    if server == "granian":
        assert '"event": "drained"' in err
        assert '"loop": "uvloop"' in err  # as the other servers: never granian's auto pick


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
@pytest.mark.parametrize("how", ["flag", "config"])
def test_http2_on_another_server_is_refused_in_one_line(tmp_path, server, how):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"general_settings:\n  master_key: sk-h2\n  http2: {how == 'config'}\n")
    flag = ["--http2"] if how == "flag" else []
    r = run("serve", "--config", str(cfg), "--server", server, "--port", str(free_port()), *flag)
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip() and line[0] != "{"]
    assert lines == [
        "outcrop: HTTP/2 (--http2 or general_settings.http2) needs the default server "
        f"(hypercorn), not {server}"
    ]


def test_check_config_names_a_deployment_whose_profile_gives_no_region(tmp_path):
    """A profile without a region (and no region elsewhere) fails check-config and serve in
    one line naming the deployment, before any call."""
    aws = tmp_path / "aws-config"
    aws.write_text("[profile acct]\noutput = json\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "model_list:\n  - model_name: nova\n    litellm_params:\n"
        "      model: bedrock/amazon.nova-lite-v1:0\n      aws_profile_name: acct\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"AWS_CONFIG_FILE": str(aws), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    wanted = (
        "model_list[0].litellm_params (model_name 'nova'): no AWS region: profile 'acct' sets "
        "no region"
    )
    for args in (("check-config", str(cfg)), ("serve", "--config", str(cfg), "--port", "0")):
        r = subprocess.run(
            [PY, "-m", "outcrop", *args], capture_output=True, text=True, env=env, timeout=60
        )
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr
        assert wanted in r.stderr
