"""``outcrop serve --workers N``: every scrape, whichever worker answers it, counts every worker's
calls (multiprocess mode in the server's shared directory, removed when it stops)."""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from outcrop.testing import ConverseReply, HttpError

from ..core.procs import Served
from .common import AUTH, gateway_config, runtime_client, scrape

USER = [{"role": "user", "content": "hi"}]


def _chat(base: str, **body: object) -> int:
    # a fresh connection per call, so the workers share them
    with httpx.Client(headers=AUTH) as client:
        r = client.post(
            base + "/v1/chat/completions", json={"model": "nova", "messages": USER, **body}
        )
        return r.status_code


def _pids(tmp_path: Path) -> set[str]:
    """The workers that wrote counters (one file per worker process)."""
    return {
        p.stem.rsplit("_", 1)[1] for p in tmp_path.glob("outcrop-workers-*/prometheus/counter_*.db")
    }


@pytest.mark.parametrize("workers", [1, 2])
def test_one_scrape_counts_every_worker(tmp_path, bedrock_simulator, workers):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(json.dumps(gateway_config(bedrock_simulator.url)))
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["TMPDIR"] = str(tmp_path)  # where the supervisor makes the shared directory
    # its own key store: keys other tests left in the shared one must not decide the start
    env["DATABASE_URL"] = f"sqlite:///{tmp_path}/keys.db"
    command = [sys.executable, "-m", "outcrop", "serve", "--config", str(cfg)]
    command += ["--host", "127.0.0.1", "--workers", str(workers)]
    server = Served(command, env=env)
    base = server.url
    try:
        server.output.wait_for("Running on", count=workers)
        # one of each ending
        bedrock_simulator.reply(HttpError(500, "InternalServerException", "boom"), times=1)
        assert _chat(base) == 502
        assert _chat(base, messages=[]) == 400
        assert _chat(base, stream=True) == 200
        bedrock_simulator.reply(ConverseReply(" ".join(["word"] * 60), delay=0.05), times=1)
        with httpx.stream(
            "POST",
            base + "/v1/chat/completions",
            json={"model": "nova", "messages": USER, "stream": True},
            headers=AUTH,
        ) as r:
            for _ in r.iter_lines():
                break  # hang up after the first chunk
        runtime_client(base).converse(
            modelId="nova", messages=[{"role": "user", "content": [{"text": "hi"}]}]
        )
        calls = 5
        # plain successes until every worker has served some
        with ThreadPoolExecutor(8) as pool:
            for _ in range(30):
                assert set(pool.map(lambda _: _chat(base), range(8))) == {200}
                calls += 8
                if workers == 1 or len(_pids(tmp_path)) >= workers:
                    break
        if workers > 1:
            assert len(_pids(tmp_path)) == workers
        else:
            assert not _pids(tmp_path)  # one process: no multiprocess files at all

        def settled() -> bool:
            s = scrape(base)  # other workers' in-flight levels are sampled every second
            return s.value("outcrop_requests_total") == calls and not s.value(
                "outcrop_in_flight_requests"
            )

        deadline = time.monotonic() + 30
        while not settled():  # the disconnected call's event lands when the worker sees it
            if time.monotonic() >= deadline:
                s = scrape(base)
                raise AssertionError(
                    f"expected {calls} calls and none in flight; the scrape says "
                    f"{s.value('outcrop_requests_total')} calls, "
                    f"{s.value('outcrop_in_flight_requests')} in flight\n{server.logs()}"
                )
            time.sleep(0.05)
        for _ in range(6):  # whichever worker answers, the same totals
            s = scrape(base)
            assert s.value("outcrop_requests_total") == calls
            assert s.value("outcrop_requests_total", status_class="5xx") == 1
            assert s.value("outcrop_requests_total", status_class="4xx") == 2  # 400 and 499
            assert s.value("outcrop_requests_total", surface="passthrough") == 1
            assert s.value("outcrop_time_to_first_token_seconds_count") == 2
            assert s.value("outcrop_request_duration_seconds_count") == calls
            assert s.value("outcrop_in_flight_requests") == 0
    finally:
        code = server.stop(timeout=60)
    assert code == 0, server.logs()
    assert not list(tmp_path.glob("outcrop-workers-*"))  # the shared directory is gone
