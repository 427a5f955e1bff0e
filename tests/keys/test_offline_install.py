"""The key store installs from wheels and starts, migrates and serves keys on a machine with no
network at all (Bedrock users run in private subnets): nothing is downloaded at install or run
time. The network is namespaced away with ``unshare --net`` (only a loopback interface)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import loopback_guard

ROOT = Path(__file__).resolve().parents[2]

CHECK = r"""
import json, os, socket, subprocess, sys, time, urllib.request

# no route off the machine in here: the namespace has the loopback interface only (checked
# without dialling anything but loopback)
interfaces = [name for _, name in socket.if_nameindex()]
if interfaces != ["lo"]:
    sys.exit(f"interfaces {interfaces}: the network is reachable, the test proves nothing")
port = int(sys.argv[1])
# its own key store: the key with rate limits it makes must not land in the suite's shared one
env = {**os.environ, "LITELLM_MASTER_KEY": "sk-offline-master-0123",
       "DATABASE_URL": "sqlite:///" + os.path.abspath("offline-keys.db")}
proc = subprocess.Popen(
    [os.path.join(os.path.dirname(sys.executable), "outcrop"), "--port", str(port)],
    env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
)
base = f"http://127.0.0.1:{port}"

def call(path, body=None):
    request = urllib.request.Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"authorization": "Bearer sk-offline-master-0123",
                 "content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.loads(r.read())

try:
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(base + "/health/readiness", timeout=1)
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                sys.exit("the gateway did not start:\n" + proc.stdout.read())
            time.sleep(0.2)
    key = call("/key/generate", {"key_alias": "offline", "rpm_limit": 5})
    info = call("/key/info?key=" + key["key"])["info"]
    assert info["key_alias"] == "offline" and info["rpm_limit"] == 5, info
    print("OFFLINE OK", key["key"][:3])
finally:
    proc.terminate()
    proc.wait(30)
    print(proc.stdout.read())
"""


def test_install_and_serve_keys_without_network(tmp_path: Path) -> None:
    assert shutil.which("unshare"), "unshare (util-linux) is required for this test"
    wheels = tmp_path / "wheels"
    # Building the wheelhouse fetches the dependencies from the package index: like the fresh
    # core install, the one kind of step allowed off the machine, so it runs unguarded. What
    # follows runs with no network at all.
    unguarded = {k: v for k, v in os.environ.items() if k != loopback_guard.ENV}
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "-w",
            str(wheels),
            str(ROOT / "core"),
            str(ROOT / "plugins" / "keys"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=unguarded,
    )
    assert built.returncode == 0, built.stderr
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    (tmp_path / "check.py").write_text(CHECK)
    script = (
        "set -e; ip link set lo up; "
        f"{venv}/bin/pip install -q --no-index --find-links {wheels} outcrop-keys; "
        f"cd {tmp_path} && {venv}/bin/python check.py 4000"
    )
    env = {**unguarded, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_CONFIG_FILE": os.devnull}
    done = subprocess.run(
        ["unshare", "--net", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OFFLINE OK sk-" in done.stdout
    # it migrated its SQLite store (the default, beside the working directory) and served keys
    assert '"keys_ready"' in done.stdout and '"database": "sqlite:///' in done.stdout, done.stdout
