"""A gateway serving every surface (Bedrock agent and AgentCore on the chat route, the native
pass-through under /bedrock) in front of the simulator, and the check that a worker still
serves after a hostile input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from tests import clients
from tests.clients import (
    isolated_aws_env,  # noqa: F401  (autouse)
    passthrough_section,
)
from tests.core.procs import StderrLines

MASTER_KEY = "sk-security-test"
AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
AGENT = "bedrock/agent/L1RT58GYRW/MFPSBCXYTW"
RUNTIME_ARN = "arn:aws:bedrock-agentcore:us-west-2:123456789012:runtime/sec_agent-AbCdEf1234"
NATIVE = "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0"
SDK_KEY_ID = "OUTCROPSECKEY00001"
SDK_SECRET = "outcrop-security-sdk-secret-000000001"


def security_config(simulator_url: str, **general: Any) -> dict[str, Any]:
    """Every surface in front of the simulator at ``simulator_url``; ``general`` adds
    ``general_settings``."""

    def params(model: str) -> dict[str, Any]:
        return clients.deployment_params(simulator_url, model)

    return {
        "model_list": [
            {"model_name": "agent", "litellm_params": params(AGENT)},
            {"model_name": "runtime", "litellm_params": params(f"bedrock/agentcore/{RUNTIME_ARN}")},
            {"model_name": "native", "litellm_params": params(NATIVE)},
        ],
        "general_settings": {"master_key": MASTER_KEY, **general},
        "bedrock_passthrough": passthrough_section(simulator_url, SDK_KEY_ID, SDK_SECRET),
    }


@pytest.fixture
def make_config(bedrock_simulator: Any) -> Callable[..., dict[str, Any]]:
    def make(**general: Any) -> dict[str, Any]:
        return security_config(bedrock_simulator.url, **general)

    return make


@pytest.fixture
def gateway(gateway_factory: Callable[..., Any], make_config: Callable[..., dict[str, Any]]) -> Any:
    return gateway_factory(make_config())


@pytest.fixture
def client(gateway: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=MASTER_KEY, max_retries=0)


def sigv4_client(service: str, url: str) -> Any:
    return clients.sigv4_client(service, url, SDK_KEY_ID, SDK_SECRET)


def assert_still_serves(gateway: Any) -> None:
    """The worker answers a real call after the hostile one (the simulator's default echo)."""
    r = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers=AUTH,
        timeout=10,
        json={"model": "agent", "messages": [{"role": "user", "content": "still there?"}]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "You said: still there?"


def assert_openai_error(
    r: httpx.Response, status: int, *, code: str | None = None
) -> dict[str, Any]:
    """An OpenAI-shaped error body with ``status``; returns the ``error`` object."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str)
    if code is not None:
        assert error["code"] == code, error
    return error


def assert_aws_error(r: httpx.Response, status: int, error_type: str) -> str:
    """An AWS-shaped error (``x-amzn-ErrorType``, ``{"message"}``); returns the message."""
    assert r.status_code == status, r.text
    assert r.headers["x-amzn-errortype"] == error_type
    message = r.json()["message"]
    assert isinstance(message, str) and message
    return message


@pytest.fixture
def bounded_gateway(
    gateway_factory: Callable[..., Any], make_config: Callable[..., dict[str, Any]]
) -> Any:
    """A gateway with a small body limit and timeout, so hostile bodies stay small and quick."""
    from .rawhttp import BODY_TIMEOUT, LIMIT

    return gateway_factory(make_config(max_request_bytes=LIMIT, body_timeout=BODY_TIMEOUT))


class CliServer:
    """`outcrop serve` in its own process group (so a test may signal the whole group)."""

    def __init__(self, config: dict[str, Any], tmp_path: Any, *args: str) -> None:
        import yaml

        from tests.core.procs import PortTaken, free_port, wait_ready

        path = tmp_path / f"outcrop-{id(self)}.yaml"
        path.write_text(yaml.safe_dump(config))
        # uvicorn does not name the port it bound in Outcrop's log, so the port is picked here;
        # when another test's process takes it first, start again on another one
        for attempt in range(5):
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self._start(path, args)
            try:
                wait_ready(self.url, self.proc, output=self.output)
                return
            except PortTaken:
                if attempt == 4:
                    raise
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)

    def _start(self, path: Any, args: tuple[str, ...]) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "outcrop",
                "serve",
                "--config",
                str(path),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                *args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            # its own key store: keys other tests left in the shared one (a key with rate
            # limits) must not decide whether `--workers N` starts
            env={
                **os.environ,
                "OUTCROP_LOG_LEVEL": "INFO",
                "DATABASE_URL": f"sqlite:///{path.parent}/outcrop-{id(self)}.db",
            },
        )
        # read while it runs: a pipe nobody empties fills up and blocks a chatty server
        self.output = StderrLines(self.proc)

    def stop(self) -> tuple[int, str]:
        """SIGTERM; the exit code and everything the server logged."""
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.exited()

    def exited(self) -> tuple[int, str]:
        """Once the server stopped (signalled by the test): its exit code and log."""
        code = self.proc.wait(timeout=60)
        return code, self.output.text()


def _kill_all(started: list[CliServer]) -> None:
    for server in started:
        try:  # the whole group: a supervisor's workers (granian's) must not outlive the test
            os.killpg(server.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        server.proc.wait(timeout=30)


@pytest.fixture
def cli_server(tmp_path: Any) -> Any:
    """``cli_server(config, *serve_args)`` -> a running `outcrop serve` (stopped afterwards)."""
    started: list[CliServer] = []

    def start(config: dict[str, Any], *args: str) -> CliServer:
        server = CliServer(config, tmp_path, *args)
        started.append(server)
        return server

    yield start
    _kill_all(started)


@pytest.fixture(scope="module")
def module_cli_server(
    tmp_path_factory: pytest.TempPathFactory, _outcrop_simulator_server: Any
) -> Any:
    """``module_cli_server(*serve_args, **general_settings)`` -> an `outcrop serve` in front of
    the simulator, started once per module and set of arguments, for tests that leave a server
    as they found it (each starting its own costs seconds). It logs warnings only: nothing
    reads its output while it runs."""
    folder = tmp_path_factory.mktemp("cli")
    started: dict[tuple[Any, ...], CliServer] = {}

    def get(*args: str, **general: Any) -> CliServer:
        key = (args, tuple(sorted(general.items())))
        if key not in started:
            config = security_config(_outcrop_simulator_server.url, **general)
            started[key] = CliServer(config, folder, *args, "--log-level", "WARNING")
        return started[key]

    yield get
    _kill_all(list(started.values()))
