"""`serve --workers N` drains like the single-process server: SIGTERM to the whole process group
(what systemd sends) or to the supervisor alone lets an in-flight stream finish, logs each
stage, and exits 0."""

from __future__ import annotations

import os
import signal

import httpx
import pytest

from outcrop.testing import AgentReply

from .conftest import AUTH


@pytest.mark.parametrize(
    ("workers", "target"),
    [
        (2, "group"),
        (2, "supervisor"),
        (1, "group"),
    ],
)
def test_sigterm_lets_the_stream_in_flight_finish(
    cli_server, make_config, bedrock_simulator, workers, target
):
    words = [f"w{i} " for i in range(8)]
    bedrock_simulator.reply(AgentReply(words, delay=0.4), operation="InvokeAgent")
    server = cli_server(make_config(), "--workers", str(workers))
    lines: list[str] = []
    body = {"model": "agent", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.stream(
        "POST", server.url + "/v1/chat/completions", headers=AUTH, json=body, timeout=30
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            lines.append(line)
            if len(lines) == 1:  # the stream is in flight: stop the server
                if target == "group":
                    os.killpg(os.getpgid(server.proc.pid), signal.SIGTERM)
                else:
                    server.proc.send_signal(signal.SIGTERM)
    assert lines[-1] == "data: [DONE]"
    joined = "".join(lines)
    assert all(word.strip() in joined for word in words)  # every part arrived
    code, err = server.stop()
    assert code == 0, err
    assert err.count('"event": "shutting_down"') == workers
    assert err.count('"event": "drained"') == workers
    if workers > 1:
        assert '"event": "stopping_workers"' in err and '"event": "workers_stopped"' in err
        assert '"event": "worker_exited"' not in err
    with pytest.raises(httpx.HTTPError):
        httpx.get(server.url + "/health/liveliness", timeout=2)
