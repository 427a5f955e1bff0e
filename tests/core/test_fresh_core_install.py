"""Install nothing but core/ into a fresh virtualenv and serve: an empty gateway that names
the missing plugin. Proves the core has no hidden dependency on a plugin."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import loopback_guard

from .procs import Served

ROOT = Path(__file__).resolve().parents[2]


def test_core_alone_in_a_fresh_venv(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # pip fetches the core's dependencies from the package index: the one step of the suite
    # allowed off the machine (tests/conftest.py), so it runs without the loopback guard
    unguarded = {k: v for k, v in os.environ.items() if k != loopback_guard.ENV}
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(ROOT / "core")],
        capture_output=True,
        text=True,
        timeout=300,
        env=unguarded,
    )
    assert pip.returncode == 0, pip.stderr
    listing = subprocess.run(
        [str(venv / "bin" / "outcrop"), "plugins"], capture_output=True, text=True, timeout=60
    )
    assert "No plugins installed" in listing.stdout
    command = [str(venv / "bin" / "outcrop"), "serve", "--host", "127.0.0.1"]
    with Served(command) as server:
        base = server.url
        assert httpx.get(base + "/v1/models").json()["data"] == []
        r = httpx.post(
            base + "/v1/chat/completions",
            json={
                "model": "bedrock/agent/ABCD1234/LIVE",
                "messages": [{"role": "user", "content": "hi"}],
            },
        )
        assert r.status_code == 400
        assert (
            "no installed plugin claims model 'bedrock/agent/ABCD1234/LIVE'"
            in r.json()["error"]["message"]
        )
        assert "no provider plugin is installed" in r.json()["error"]["message"]
        server.stop(timeout=20)
    assert "no_client_authentication" in server.logs()  # the start-up warning
