"""Fixtures: a gateway with ``callbacks: ["prometheus"]`` in front of the simulator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .common import gateway_config


@pytest.fixture
def prom_gateway(gateway_factory: Callable[..., Any], bedrock_simulator: Any) -> Any:
    return gateway_factory(gateway_config(bedrock_simulator.url))
