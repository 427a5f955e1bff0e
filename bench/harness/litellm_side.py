"""LiteLLM's proxy on the same upstream, for the Outcrop/LiteLLM ratio in the same run.

Installed into a throwaway venv (never part of the repo), started with ``litellm --config`` on
the gateway's core, with the same deployments (``api_base`` = the same nginx) and master key.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from . import gateway, procs
from .surfaces import MASTER_KEY, Surface


def ensure_venv(venv: Path, say=print) -> Path:
    litellm = venv / "bin" / "litellm"
    if litellm.exists():
        return litellm
    say(f"  installing litellm[proxy] into {venv} (throwaway venv)")
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "litellm[proxy]"], check=True)
    return litellm


def version(venv: Path) -> str:
    out = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or "unknown"


def write_config(path: Path, surfaces: list[Surface], upstream: str, delayed: str) -> Path:
    model_list = gateway.deployments(surfaces, upstream)
    model_list += gateway.deployments([s for s in surfaces if s.stream], delayed, gateway.DELAYED)
    for d in model_list:  # LiteLLM's AgentCore provider ignores api_base and reads this instead
        d["litellm_params"]["aws_bedrock_runtime_endpoint"] = d["litellm_params"]["api_base"]
    config = {
        "model_list": model_list,
        "general_settings": {"master_key": MASTER_KEY},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class LiteLLM(gateway.Gateway):
    def __init__(self, workdir: Path, config: Path, venv: Path) -> None:
        super().__init__(workdir, config, [])
        self.argv = [
            str(venv / "bin" / "litellm"),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--num_workers",
            "1",
        ]
        self.log = workdir / "litellm.log"

    def start(self, ready_path: str = "/health/liveliness", timeout: float = 180.0) -> None:
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "AWS_REGION_NAME": "us-west-2"}
        self.proc = procs.launch(self.argv, procs.GATEWAY_CORE, self.log, env=env)
        procs.wait_http(self.url + ready_path, timeout=timeout, proc=self.proc)

    @property
    def pids(self) -> list[int]:
        assert self.proc is not None
        return [self.proc.pid, *procs.children(self.proc.pid)]
