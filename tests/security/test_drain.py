"""`serve --workers N` drains like the single-process server: SIGTERM to the whole process group
(what systemd sends) or to the supervisor alone lets an in-flight stream finish, logs each
stage, and exits 0; on the default server and on granian (`--server granian`). A call still
running after `graceful_timeout` is cut with a 503 `shutting_down` and logged once. uvicorn
drains and cuts too, without Outcrop's stage lines (and one process re-raises the signal)."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import pytest

from outcrop.testing import AgentReply

from .conftest import AUTH

SERVERS = ["hypercorn", "granian", "uvicorn"]
#: (workers, what SIGTERM goes to, server): one hypercorn or uvicorn worker is a single process
#: (the group is the process), granian always runs a supervisor.
DRAIN_CASES = [
    (workers, target, server)
    for server in SERVERS
    for workers, target in ((2, "group"), (2, "supervisor"), (1, "group"), (1, "supervisor"))
    if not (workers == 1 and target == "supervisor" and server != "granian")
]


def _stopped_cleanly(code: int, server_name: str, workers: int) -> bool:
    # uvicorn's single process re-raises the signal it handled once it has shut down
    return code == 0 or (server_name == "uvicorn" and workers == 1 and code == -signal.SIGTERM)


@pytest.mark.parametrize(("workers", "target", "server_name"), DRAIN_CASES)
def test_sigterm_lets_the_stream_in_flight_finish(
    cli_server, make_config, bedrock_simulator, workers, target, server_name
):
    words = [f"w{i} " for i in range(8)]
    # ~1.4 s of stream left when the first part arrives and the signal goes out
    bedrock_simulator.reply(AgentReply(words, delay=0.2), operation="InvokeAgent")
    server = cli_server(make_config(), "--workers", str(workers), "--server", server_name)
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
    code, err = server.exited()  # signalled once, as systemd does
    assert _stopped_cleanly(code, server_name, workers), err
    assert '"event": "request"' in err and '"status": 200' in err  # the stream's access line
    if server_name != "uvicorn":  # Outcrop's stage lines
        assert err.count('"event": "shutting_down"') == workers
        assert err.count('"event": "drained"') == workers
        if workers > 1:
            assert '"event": "stopping_workers"' in err and '"event": "workers_stopped"' in err
            assert '"event": "worker_exited"' not in err
    with pytest.raises(httpx.HTTPError):
        httpx.get(server.url + "/health/liveliness", timeout=2)


@pytest.mark.parametrize("server_name", SERVERS)
def test_a_call_past_the_graceful_timeout_is_cut_with_a_503(
    cli_server, make_config, bedrock_simulator, server_name
):
    bedrock_simulator.reply(AgentReply(["part ", "never "], delay=30), operation="InvokeAgent")
    server = cli_server(make_config(graceful_timeout=1), "--server", server_name)
    body = {"model": "agent", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(timeout=30) as client:
        pending = client.build_request(
            "POST", server.url + "/v1/chat/completions", headers=AUTH, json=body
        )
        answers: list[httpx.Response] = []
        caller = threading.Thread(target=lambda: answers.append(client.send(pending)))
        caller.start()
        _wait_for(lambda: len(bedrock_simulator.requests) == 1)  # the call is upstream now
        os.killpg(os.getpgid(server.proc.pid), signal.SIGTERM)
        caller.join(30)
    assert len(answers) == 1
    assert answers[0].status_code == 503, answers[0].text
    assert answers[0].json()["error"]["code"] == "shutting_down"
    code, err = server.exited()
    assert _stopped_cleanly(code, server_name, 1), err
    assert err.count('"status": 503') == 1  # the cut call's one access-log line
    if server_name != "uvicorn":
        assert '"event": "graceful_timeout_reached"' in err
        assert '"event": "drained"' not in err


def _wait_for(condition, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.05)
