"""Four gateway processes (separate ports) sharing the machine's Redis and PostgreSQL: every
limit and budget holds for the fleet, not per process.

- 200 concurrent clients on one key with ``rpm_limit: 100``: exactly 100 admitted in the
  window, across all instances;
- ``max_parallel_requests: 5``: never more than 5 calls at once, measured at the upstream;
- a budget shared by the 4 instances is not overspent beyond the calls in flight when it was
  crossed.

Redis or PostgreSQL missing is a failure, never a skip."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from outcrop.testing.replies import ConverseReply

from ..core.procs import Served
from .conftest import BEDROCK_ID
from .test_flow import _env

INSTANCES = 4
MASTER = "sk-1234"
MESSAGES = [{"role": "user", "content": [{"text": "Hello"}]}]
ONE_CALL = 10 * 3e-6 + 5 * 15e-6  # claude 3.5 sonnet, 10 in / 5 out tokens


@pytest.fixture
def fleet(
    tmp_path: Path, bedrock_simulator: Any, pg_url: str, redis_settings: dict[str, str]
) -> Iterator[list[str]]:
    config = tmp_path / "outcrop.yaml"
    config.write_text(
        yaml.safe_dump({"general_settings": {"database_url": pg_url, **redis_settings}})
    )
    env = _env(bedrock_simulator, None)
    servers: list[Served] = []
    try:
        for _ in range(INSTANCES):
            # at the default log level: the "Running on" line names the port
            command = [str(Path(sys.executable).with_name("outcrop")), "--config", str(config)]
            servers.append(Served(command, ready=False, env=env, cwd=tmp_path))
        yield [server.wait_ready() for server in servers]
    finally:
        for server in servers:
            if server.proc.poll() is None:
                server.proc.terminate()
        for server in servers:
            try:
                server.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


def _generate(url: str, **fields: Any) -> str:
    r = httpx.post(
        url + "/key/generate", json=fields, headers={"authorization": f"Bearer {MASTER}"}
    )
    assert r.status_code == 200, r.text
    return r.json()["key"]


def _storm(urls: list[str], key: str, clients: int, calls_each: int, path: str) -> list[int]:
    """``clients`` threads, spread over the instances, each making ``calls_each`` calls at once
    (a barrier starts them together); the statuses."""
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client(index: int) -> None:
        with httpx.Client(
            base_url=urls[index % len(urls)], headers={"x-api-key": key}, timeout=120
        ) as http:
            start.wait()
            for _ in range(calls_each):
                r = http.post(path, json={"messages": MESSAGES})
                assert r.status_code in (200, 429), r.text
                with lock:
                    statuses.append(r.status_code)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return statuses


def test_fleet_limits(fleet: list[str], bedrock_simulator: Any) -> None:
    bedrock_simulator.reset()
    bedrock_simulator.reply(ConverseReply("Hello there", usage=(10, 5)))
    converse = f"/bedrock/model/{BEDROCK_ID}/converse"

    # rpm_limit 100, 200 concurrent clients over 4 instances: exactly 100 in the window
    key = _generate(fleet[0], rpm_limit=100)
    statuses = _storm(fleet, key, clients=200, calls_each=1, path=converse)
    assert len(statuses) == 200
    assert statuses.count(200) == 100 and statuses.count(429) == 100
    assert len(bedrock_simulator.requests) == 100

    # max_parallel_requests 5: streams that last a while, 40 clients, never more than 5 upstream
    bedrock_simulator.reset()
    bedrock_simulator.reply(ConverseReply("slow stream", usage=(10, 5), delay=0.05))
    key = _generate(fleet[1], max_parallel_requests=5)
    statuses = _storm(
        fleet, key, clients=40, calls_each=3, path=f"/bedrock/model/{BEDROCK_ID}/converse-stream"
    )
    assert statuses.count(200) >= 5 and bedrock_simulator.max_in_flight == 5
    assert statuses.count(200) == len(bedrock_simulator.requests)

    # a budget of 40.5 calls shared by the 4 instances, 64 clients calling until refused
    bedrock_simulator.reset()
    bedrock_simulator.reply(ConverseReply("Hello there", usage=(10, 5)))
    budget_calls = 40
    key = _generate(fleet[2], max_budget=ONE_CALL * (budget_calls + 0.5))
    statuses = _budget_storm(fleet, key, clients=64, path=converse)
    admitted = statuses.count(200)
    # every call admitted was in flight before the crossing was counted: at most one per client
    assert budget_calls + 1 <= admitted <= budget_calls + 64
    assert admitted == len(bedrock_simulator.requests)
    print(f"\n[fleet budget] budget={budget_calls + 0.5} calls, admitted={admitted}")


def _budget_storm(urls: list[str], key: str, clients: int, path: str) -> list[int]:
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client(index: int) -> None:
        with httpx.Client(
            base_url=urls[index % len(urls)], headers={"x-api-key": key}, timeout=120
        ) as http:
            start.wait()
            while True:
                r = http.post(path, json={"messages": MESSAGES})
                with lock:
                    statuses.append(r.status_code)
                if r.status_code != 200:
                    assert r.status_code == 429 and "Budget has been exceeded" in r.text, r.text
                    return

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert statuses.count(429) == clients
    return statuses
