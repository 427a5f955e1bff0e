"""The gateway under test: a config for the installed plugins, one worker pinned to core 0.

It runs exactly as deployed: ``outcrop serve`` (hypercorn, uvloop), INFO logging with its
structured access log line per call (written to a file, as a container's stdout would be), on a
key database migrated beforehand (``outcrop db upgrade``, as in production).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from . import procs
from .surfaces import MASTER_KEY, Surface

OUTCROP = str(Path(sys.executable).with_name("outcrop"))
ACCESS_KEY, SECRET_KEY = "AKIDBENCHMARK0000001", "bench/secret/key/00000000000000000000"
#: Suffix of the deployments that point at the delayed upstream (streaming proofs).
DELAYED = "-delayed"


def installed_plugins() -> dict[str, str]:
    """Entry-point name -> "distribution version", from ``outcrop plugins --json``."""
    out = subprocess.run([OUTCROP, "plugins", "--json"], capture_output=True, text=True, check=True)
    return {p["name"]: f"{p['distribution']} {p['version']}" for p in json.loads(out.stdout)}


def deployments(surfaces: list[Surface], api_base: str, suffix: str = "") -> list[dict]:
    seen: dict[str, dict] = {}
    for s in surfaces:
        name = s.model_name + suffix
        seen.setdefault(
            name,
            {
                "model_name": name,
                "litellm_params": {
                    "model": s.model,
                    "aws_region_name": "us-west-2",
                    "aws_access_key_id": ACCESS_KEY,
                    "aws_secret_access_key": SECRET_KEY,
                    "api_base": api_base,
                },
            },
        )
    return list(seen.values())


def write_config(
    path: Path,
    surfaces: list[Surface],
    upstream: str,
    delayed: str | None,
    fast_only: list[Surface] | None = None,
) -> Path:
    """Deployments of ``surfaces`` on ``upstream`` (and of their streams on ``delayed``), plus
    ``fast_only`` on ``upstream`` alone (the long streams: never sent through the slow one)."""
    model_list = deployments(surfaces + (fast_only or []), upstream)
    if delayed:
        model_list += deployments([s for s in surfaces if s.stream], delayed, DELAYED)
    config: dict = {"model_list": model_list, "general_settings": {"master_key": MASTER_KEY}}
    if any(s.plugin == "bedrock_passthrough" for s in surfaces):
        config["bedrock_passthrough"] = {
            "aws_region_name": "us-west-2",
            "aws_access_key_id": ACCESS_KEY,
            "aws_secret_access_key": SECRET_KEY,
            "api_base": upstream,
        }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class Gateway:
    def __init__(
        self,
        workdir: Path,
        config: Path,
        argv: list[str] | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.config = config
        self.port = procs.free_port()
        self.argv = argv or [
            OUTCROP,
            "serve",
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *(extra_args or []),
        ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "gateway.log"
        self.env: dict[str, str] = {}  # added to the environment
        self.core: int | None = procs.GATEWAY_CORE  # None: not pinned (several workers)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid  # taskset exec()s the server: this is the worker's pid

    def start(self, ready_path: str = "/health/readiness", timeout: float = 60.0) -> None:
        env = {**os.environ, **self.env} if self.env else None
        self.migrate(env)
        self.proc = procs.launch(self.argv, self.core, self.log, env=env)
        procs.wait_http(self.url + ready_path, timeout=timeout, proc=self.proc)

    def migrate(self, env: dict[str, str] | None) -> None:
        """``outcrop db upgrade --config ...`` first, as docs/keys.md tells operators to do in
        production: a worker that migrates a fresh key database itself keeps Alembic in memory
        (about 11 MB more idle RSS), which is no figure of the gateway's. Nothing without the
        ``db`` command (outcrop-keys not installed)."""
        done = subprocess.run(
            [OUTCROP, "db", "upgrade", "--config", str(self.config)],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.workdir,
        )
        if done.returncode != 0 and "invalid choice: 'db'" not in done.stderr:
            raise RuntimeError(f"outcrop db upgrade failed: {done.stdout}{done.stderr}".strip())

    def stop(self) -> None:
        procs.stop(self.proc)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def server_choices() -> list[str]:
    """The ``--server`` choices of ``outcrop serve`` (empty when the CLI has no such option)."""
    out = subprocess.run([OUTCROP, "serve", "--help"], capture_output=True, text=True).stdout
    found = re.search(r"--server \{([^}]*)\}", out)
    return found.group(1).split(",") if found else []


#: ``outcrop serve``'s default server: launched without ``--server``, exactly as deployed.
DEFAULT_SERVER = "hypercorn"


def server_args(name: str) -> list[str]:
    """``outcrop serve`` arguments choosing ``name`` (none for the default server)."""
    if name == DEFAULT_SERVER:
        return []
    choices = server_choices()
    if name not in choices:
        raise RuntimeError(
            f"`outcrop serve --server` offers {choices or 'no choice'}, not {name!r}"
        )
    return ["--server", name]


def alternative_server(name: str, config: Path, workdir: Path) -> tuple[Gateway, str]:
    """The same config under another ASGI server: ``outcrop serve --server NAME``."""
    g = Gateway(workdir, config, extra_args=server_args(name) or ["--server", name])
    g.log = workdir / f"gateway-{name}.log"
    return g, f"outcrop serve --server {name}"
