"""Nothing is downloaded at run time: in a network namespace with nothing but loopback, the
gateway installs from its wheels, starts, creates and migrates its SQLite store, and serves a
virtual key."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CLIENT = textwrap.dedent('''
    import json, os, socket, subprocess, sys, time, urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    env["LITELLM_MASTER_KEY"] = "sk-offline-master"
    server = subprocess.Popen([sys.argv[1], "--host", "127.0.0.1", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"

    def call(path, key, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(base + path, data=data, method="POST" if data else "GET",
                                     headers={"authorization": "Bearer " + key,
                                              "content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/health/readiness", timeout=1)
                break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit("gateway exited: " + server.stdout.read())
                time.sleep(0.1)
        key = call("/key/generate", "sk-offline-master", {"key_alias": "offline"})["key"]
        models = call("/v1/models", key)
        print("OFFLINE-OK", models["object"], os.path.exists("outcrop.db"))
    finally:
        server.terminate()
        server.wait(30)
''')


def test_installs_starts_and_serves_keys_without_a_network(tmp_path):
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(wheels), str(ROOT / "core"),
         str(ROOT / "plugins" / "keys")], capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stderr
    (tmp_path / "client.py").write_text(CLIENT)
    script = (
        "ip link set lo up && "
        f"{sys.executable} -m venv venv && "
        "venv/bin/pip install -q --no-index --find-links wheels outcrop-keys && "
        "venv/bin/python client.py venv/bin/outcrop"
    )
    done = subprocess.run(["unshare", "--net", "sh", "-c", script], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OFFLINE-OK list True" in done.stdout
