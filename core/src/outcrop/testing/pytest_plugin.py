"""pytest fixtures for plugin authors (registered through the ``pytest11`` entry point).

- ``bedrock_simulator``: a running Bedrock simulator (real HTTP); scripts and recorded requests
  are reset for every test.
- ``simulator_params``: ``litellm_params`` pointing a deployment at that simulator.
- ``gateway_factory``: start a real gateway (HTTP, in a thread) from a config dict.
- ``outcrop_plugin``: register a plugin object for one test.
- ``call_events``: a ``CallEvents`` recorder of ``outcrop_after_call`` events, registered for
  one test (request it before the gateway starts).

pytest loads this module in every session wherever ``outcrop`` is installed, so it imports
nothing heavy at module level: each fixture imports what it needs when it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ..gateway import Gateway
    from .events import CallEvents
    from .server import ServerThread


@dataclass
class RunningGateway:
    url: str
    app: Starlette
    gateway: Gateway
    server: ServerThread


@pytest.fixture(scope="session")
def _outcrop_simulator_server() -> Iterator[ServerThread]:
    from .server import ServerThread
    from .simulator import BedrockSimulator

    server = ServerThread(BedrockSimulator())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def bedrock_simulator(_outcrop_simulator_server: ServerThread) -> Iterator[Any]:
    """The running simulator app; ``.url`` is its base URL."""
    sim = _outcrop_simulator_server.app
    sim.reset()
    sim.url = _outcrop_simulator_server.url
    yield sim
    sim.reset()


@pytest.fixture
def simulator_params(bedrock_simulator: Any) -> Callable[..., dict[str, Any]]:
    """``simulator_params(model, **extra)`` -> litellm_params for a deployment on the simulator."""
    from .simulator import TEST_ACCESS_KEY, TEST_SECRET_KEY

    def make(model: str, **extra: Any) -> dict[str, Any]:
        return {
            "model": model,
            "aws_region_name": "us-west-2",
            "aws_access_key_id": TEST_ACCESS_KEY,
            "aws_secret_access_key": TEST_SECRET_KEY,
            "api_base": bedrock_simulator.url,
            **extra,
        }

    return make


@pytest.fixture
def gateway_factory() -> Iterator[Callable[..., RunningGateway]]:
    """``gateway_factory(config_dict, certfile=None, keyfile=None)`` -> a served gateway."""
    from ..app import create_app
    from ..config import parse_config
    from .server import ServerThread

    started: list[ServerThread] = []

    def make(config: dict[str, Any] | None = None, **server_kwargs: Any) -> RunningGateway:
        app = create_app(parse_config(config or {}))
        server = ServerThread(app, **server_kwargs)
        server.start()
        started.append(server)
        return RunningGateway(server.url, app, app.state.gateway, server)

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def outcrop_plugin() -> Iterator[Callable[..., str]]:
    """``outcrop_plugin(obj, name=None)`` registers a plugin for the rest of this test."""
    from ..plugins import register_extra, unregister_extra

    registered: list[object] = []

    def register(plugin: object, name: str | None = None) -> str:
        registered.append(plugin)
        return register_extra(plugin, name)

    yield register
    for plugin in registered:
        unregister_extra(plugin)


@pytest.fixture
def call_events(outcrop_plugin: Callable[..., str]) -> CallEvents:
    """A ``CallEvents`` registered for this test: every gateway started after it records into it."""
    from .events import CallEvents

    recorder = CallEvents()
    outcrop_plugin(recorder, "outcrop-testing-call-events")
    return recorder
