"""The pass-through page's virtual-key flow, as written: environment only (DATABASE_URL,
LITELLM_MASTER_KEY, AWS variables), ``outcrop`` with no config, ``/key/generate`` with ``{}``,
the key on ``/bedrock/model/.../converse``; then a restart keeps the key and its spend.

AWS is the simulator, reached the way a user redirects botocore (AWS_ENDPOINT_URL_*); the one
addition to the flow is ``--port``, so parallel test runs do not fight over port 4000."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from outcrop.testing import TEST_ACCESS_KEY, TEST_SECRET_KEY

from ..core.procs import Served

GENERATE = b"{}"
CONVERSE = b"""{
"messages": [
{"role": "user",
"content": [{"text": "Hello"}]
}
]
}"""


def _env(bedrock_simulator: Any, database_url: str | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "OUTCROP_", "LITELLM_", "DATABASE_URL"))
    }
    env.update(
        {
            "LITELLM_MASTER_KEY": "sk-1234",
            "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY,
            "AWS_REGION_NAME": "us-west-2",
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": bedrock_simulator.url,
            "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return env


class Outcrop:
    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.server = Served([str(Path(sys.executable).with_name("outcrop"))], env=env, cwd=cwd)
        self.base = self.server.url

    def stop(self) -> str:
        assert self.server.stop(timeout=30) == 0
        return self.server.logs()

    def kill(self) -> None:
        self.server.kill()


@pytest.mark.parametrize("engine", ["sqlite-default", "postgresql"])
def test_virtual_key_flow_verbatim(engine, request, tmp_path, bedrock_simulator):
    database_url = request.getfixturevalue("pg_url") if engine == "postgresql" else None
    env = _env(bedrock_simulator, database_url)
    server = Outcrop(env, tmp_path)
    try:
        r = httpx.post(
            server.base + "/key/generate",
            content=GENERATE,
            headers={"Authorization": "Bearer sk-1234", "Content-Type": "application/json"},
        )
        assert r.status_code == 200, r.text
        key = r.json()["key"]
        assert key.startswith("sk-")
        r = httpx.post(
            server.base + "/bedrock/model/cohere.command-r-v1:0/converse",
            content=CONVERSE,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        assert r.status_code == 200, r.text
        assert bedrock_simulator.last().body == CONVERSE
        r = httpx.post(
            server.base + "/bedrock/model/cohere.command-r-v1:0/converse",
            content=CONVERSE,
            headers={"Authorization": "Bearer sk-1234ewknldferwedojwojw"},
        )
        assert r.status_code == 403 and r.headers["x-amzn-errortype"].startswith(
            "UnrecognizedClient"
        )
        logs = server.stop()
    finally:
        server.kill()
    assert key not in logs and "sk-1234" not in logs
    if engine == "sqlite-default":
        assert (tmp_path / "outcrop.db").exists()  # beside the working directory: no config

    again = Outcrop(env, tmp_path)
    try:
        r = httpx.get(
            again.base + "/key/info",
            params={"key": key},
            headers={"Authorization": "Bearer sk-1234"},
        )
        assert r.status_code == 200 and r.json()["info"]["spend"] > 0
        r = httpx.get(
            again.base + "/spend/logs",
            params={"api_key": key},
            headers={"Authorization": "Bearer sk-1234"},
        )
        assert [row["status"] for row in r.json()] == [200]
        r = httpx.post(
            again.base + "/bedrock/model/cohere.command-r-v1:0/converse",
            content=CONVERSE,
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        assert r.status_code == 200
        again.stop()
    finally:
        again.kill()
