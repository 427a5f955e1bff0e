"""LiteLLM's proxy on the same upstream, for the Outcrop/LiteLLM ratio in the same run.

Installed into a throwaway venv (never part of the repo), started with ``litellm --config`` on
the gateway's core, with the same deployments (``api_base`` = the same nginx) and master key.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request
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


#: LiteLLM's equivalents of the features-on gateway, each a piece of its config.
#: ``keys``: virtual keys and spend logs (its PostgreSQL store, through prisma);
#: ``redis_limit``: the router counting each deployment's rpm/tpm in Redis (LiteLLM's key limits
#: need its virtual keys; these are the Redis limits it can run without them);
#: ``prometheus``, ``otel``: its callbacks.
EQUIVALENTS = ("keys", "redis_limit", "prometheus", "otel")
LIMIT = 1_000_000_000  # never refuses
DESCRIPTIONS = {
    "keys": "virtual keys + spend logs (PostgreSQL via prisma)",
    "redis_limit": "deployment rpm/tpm counted in Redis by its router",
    "prometheus": "the prometheus callback",
    "otel": "the otel callback (OTLP/HTTP to the same sink)",
}
#: LiteLLM's key store: a database of its own on the machine's PostgreSQL (never the tests').
DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/litellm_bench"


def write_config(
    path: Path,
    surfaces: list[Surface],
    upstream: str,
    delayed: str,
    equivalents: tuple[str, ...] = (),
    database_url: str = "",
) -> Path:
    model_list = gateway.deployments(surfaces, upstream)
    model_list += gateway.deployments([s for s in surfaces if s.stream], delayed, gateway.DELAYED)
    for d in model_list:  # LiteLLM's AgentCore provider ignores api_base and reads this instead
        d["litellm_params"]["aws_bedrock_runtime_endpoint"] = d["litellm_params"]["api_base"]
        if "redis_limit" in equivalents:
            d["litellm_params"] |= {"rpm": LIMIT, "tpm": LIMIT}
    config: dict = {"model_list": model_list, "general_settings": {"master_key": MASTER_KEY}}
    if "keys" in equivalents:
        config["general_settings"]["database_url"] = database_url
    callbacks = [c for c in ("prometheus", "otel") if c in equivalents]
    if callbacks:
        config["litellm_settings"] = {"callbacks": callbacks}
    if "redis_limit" in equivalents:
        config["router_settings"] = {
            "redis_host": "127.0.0.1",
            "redis_port": 6379,
            "routing_strategy": "usage-based-routing-v2",
        }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def otel_env(sink_url: str) -> dict[str, str]:
    """LiteLLM's OpenTelemetry settings (its own variable names)."""
    return {"OTEL_EXPORTER": "otlp_http", "OTEL_ENDPOINT": sink_url + "/v1/traces"}


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
        env |= self.env
        self.proc = procs.launch(self.argv, procs.GATEWAY_CORE, self.log, env=env)
        procs.wait_http(self.url + ready_path, timeout=timeout, proc=self.proc)

    @property
    def pids(self) -> list[int]:
        assert self.proc is not None
        return [self.proc.pid, *procs.children(self.proc.pid)]


def generate_key(url: str) -> str:
    """A LiteLLM virtual key with never-refusing rpm/tpm limits (its key limits)."""
    body = json.dumps({"rpm_limit": LIMIT, "tpm_limit": LIMIT}).encode()
    req = urllib.request.Request(url + "/key/generate", data=body, method="POST")
    req.add_header("Authorization", f"Bearer {MASTER_KEY}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())["key"]


def has_metrics(url: str) -> bool:
    req = urllib.request.Request(url + "/metrics")
    req.add_header("Authorization", f"Bearer {MASTER_KEY}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return b"litellm_" in resp.read()
    except OSError:
        return False


def redis_keys() -> int:
    """Keys in the machine's Redis db 0 (the router's counters add some)."""
    out = subprocess.run(["redis-cli", "-n", "0", "dbsize"], capture_output=True, text=True)
    return int(out.stdout.strip() or 0)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def reason(log: Path, lines: int = 400) -> str:
    """The log lines that say why LiteLLM refused or failed (errors, prisma, premium), short."""
    try:
        text = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    text = [_ANSI.sub("", x) for x in text]  # its console colours
    words = ("error", "exception", "premium", "enterprise", "failed", "unable", "refused")
    found = [x.strip()[-300:] for x in text if any(w in x.lower() for w in words)]
    return " | ".join(list(dict.fromkeys(found))[:3]) or " | ".join(text[-3:])[-400:]
