"""The features-on gateway: a virtual key, spend rows, a key rate limit on Redis, Prometheus and
OpenTelemetry, added one at a time so each feature's cost can be read from one run.

Stages (each a fresh gateway with its own config directory, so its SQLite store starts empty):

- ``key``: the calls carry a virtual key made through ``POST /key/generate`` at start, so every
  call is looked up in the key cache and writes a spend row (``spend_logs_for`` default);
- ``limit``: the key also has ``rpm_limit`` and ``tpm_limit`` (high enough never to refuse), on
  the machine's Redis (``general_settings.redis_url``, a prefix of this run's own);
- ``all``: and ``litellm_settings.callbacks: [prometheus, otel]``, spans exported over OTLP/HTTP
  to a sink on the load core that accepts and discards (``harness/otlp_sink.py``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import yaml

from . import procs
from .surfaces import MASTER_KEY

BENCH = Path(__file__).resolve().parent.parent
STAGES = ("key", "limit", "all")
TITLES = {
    "off": "master key, no spend rows, no limits, no observability",
    "key": "virtual key + spend rows",
    "limit": "virtual key + spend rows + key rpm/tpm limit on Redis",
    "all": "virtual key + spend rows + Redis limit + Prometheus + OpenTelemetry",
}
#: The key's limits: far above anything one worker can serve, so they never refuse.
RPM_LIMIT, TPM_LIMIT = 1_000_000_000, 1_000_000_000_000
REDIS_URL = "redis://127.0.0.1:6379/0"


def write_config(base: Path, stage: str, workdir: Path, database_url: str | None) -> Path:
    """The base config (deployments, master key) plus what ``stage`` turns on, in a directory of
    its own (the SQLite store is created beside the config)."""
    config = yaml.safe_load(base.read_text())
    gs = config.setdefault("general_settings", {})
    if database_url:
        gs["database_url"] = database_url
    if stage in ("limit", "all"):
        gs["redis_url"] = REDIS_URL
        gs["redis_key_prefix"] = f"outcrop-bench-{os.getpid()}-{stage}:"
    if stage == "all":
        config.setdefault("litellm_settings", {})["callbacks"] = ["prometheus", "otel"]
    folder = workdir / f"features-{stage}"
    folder.mkdir(exist_ok=True)
    path = folder / "outcrop.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def otel_env(sink_url: str) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink_url,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": "outcrop-bench",
    }


def _call(
    url: str, method: str = "GET", body: dict | None = None, token: str = MASTER_KEY
) -> bytes:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read()


def generate_key(gateway_url: str, stage: str) -> dict:
    """A virtual key through the keys API, with the never-refusing limits from ``limit`` on."""
    body: dict = {"key_alias": f"bench-{stage}"}
    if stage in ("limit", "all"):
        body |= {"rpm_limit": RPM_LIMIT, "tpm_limit": TPM_LIMIT}
    answer = json.loads(_call(gateway_url + "/key/generate", "POST", body))
    return {"key": answer["key"], "request": body}


def scrape(gateway_url: str) -> dict:
    """Prove the Prometheus plugin counts the calls: the sum of outcrop_requests_total."""
    text = _call(gateway_url + "/metrics").decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("outcrop_requests_total"):
            total += float(line.rsplit(" ", 1)[1])
    return {"metrics_lines": len(text.splitlines()), "outcrop_requests_total": total}


def spend_rows(config: Path, database_url: str | None) -> int | None:
    """Spend rows written (read once the gateway stopped, so its last batch is flushed)."""
    if database_url:
        import psycopg  # the keys plugin's PostgreSQL driver

        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT count(*) FROM outcrop_spend_logs").fetchone()
            return int(row[0]) if row else None
    db = config.parent / "outcrop.db"
    if not db.exists():
        return None
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM outcrop_spend_logs").fetchone()[0])


def create_database(database_url: str) -> None:
    """Create the URL's database on its server when missing (the benchmark's own, never the
    tests'), through the keys plugin's PostgreSQL driver."""
    import psycopg

    base, name = database_url.split("?", 1)[0].rsplit("/", 1)
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def reset_postgres(database_url: str) -> None:
    """Each stage starts with empty tables (created by the gateway's migrations when missing)."""
    import psycopg

    create_database(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        for table in ("outcrop_spend_logs", "outcrop_keys", "outcrop_teams"):
            exists = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()
            if exists and exists[0]:
                conn.execute(f"DELETE FROM {table}")


class OtlpSink:
    """The discarding OTLP/HTTP collector, pinned to the load core."""

    def __init__(self, workdir: Path) -> None:
        self.port = procs.free_port()
        self.log = workdir / "otlp-sink.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        argv = [sys.executable, "-m", "harness.otlp_sink", "--port", str(self.port)]
        self.proc = procs.launch(argv, procs.LOAD_CORE, self.log, cwd=str(BENCH))
        procs.wait_http(self.url + "/stats", timeout=20, proc=self.proc)

    def stats(self) -> dict:
        with urllib.request.urlopen(self.url + "/stats", timeout=5) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        procs.stop(self.proc)
