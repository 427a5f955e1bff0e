"""Small frictions: a busy port is one line, the demo leaves no config with its master key."""

from __future__ import annotations

import socket

import pytest

from outcrop import cli

from .test_cli import run


@pytest.mark.parametrize("server", ["hypercorn", "uvicorn", "granian"])
def test_busy_port_is_one_line(server):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        r = run("serve", "--host", "127.0.0.1", "--port", str(port), "--server", server)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    # plugins' start-up log lines (JSON) aside, the answer is one line
    lines = [line for line in r.stderr.splitlines() if line.strip() and line[0] != "{"]
    assert lines == [
        f"outcrop: port {port} on 127.0.0.1 is already in use (another outcrop or LiteLLM?); "
        "stop it or choose another port with --port"
    ]


def test_demo_prints_this_python_and_removes_its_config(capsys):
    seen = {}

    def fake_server(app, listen):
        out = capsys.readouterr().out
        seen["out"] = out
        seen["path"] = next(
            line.split("Config written to ", 1)[1]
            for line in out.splitlines()
            if line.startswith("Config written to ")
        )
        import os

        seen["existed"] = os.path.exists(seen["path"])

    from outcrop.demo import run_demo

    run_demo(host="127.0.0.1", port=4999, run_server=fake_server)
    import os
    import shlex
    import sys

    assert seen["existed"] and not os.path.exists(seen["path"])
    assert f"{shlex.quote(sys.executable)} - <<'EOF'" in seen["out"]
    assert cli.port_problem("127.0.0.1", 0) is None


API_SCRIPT = """
import asyncio, outcrop
from outcrop.testing import running_simulator, TEST_ACCESS_KEY, TEST_SECRET_KEY
with running_simulator() as sim:
    kw = dict(aws_region_name="us-west-2", aws_access_key_id=TEST_ACCESS_KEY,
              aws_secret_access_key=TEST_SECRET_KEY, api_base=sim.url)
    model = "bedrock/converse/amazon.nova-lite-v1:0"
    messages = [{"role": "user", "content": "hi"}]
    print("sync:", outcrop.completion(model, messages, **kw).choices[0].message.content)
    async def main():
        r = await outcrop.acompletion(model, messages, **kw)
        print("async:", r.choices[0].message.content)
    asyncio.run(main())
"""


def test_python_api_closes_cleanly_and_logs_quietly(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("OUTCROP_CONFIG", "OUTCROP_LOG_LEVEL")}
    r = subprocess.run(
        [sys.executable, "-c", API_SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "sync: You said: hi" in r.stdout and "async: You said: hi" in r.stdout
    both = r.stdout + r.stderr
    assert "Unclosed" not in both  # aiohttp's warnings about unclosed sessions/connectors
    assert '"request"' not in both and "[info     ] request" not in both  # no access lines
    assert "no_client_authentication" not in both
