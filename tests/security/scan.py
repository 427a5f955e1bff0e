"""Shared by the scans that throw hostile model strings and regions at one module-wide gateway
(test_raw_models.py, test_regions.py): its simulator, and the checks after each refusal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import loopback_guard

from outcrop.testing import BedrockSimulator, ServerThread

USER = [{"role": "user", "content": "hi"}]
CONVERSE_BODY = b'{"messages": [{"role": "user", "content": [{"text": "hi"}]}]}'


@contextmanager
def simulator(key_id: str, secret: str) -> Iterator[Any]:
    """A simulator of the module's own that also accepts the gateway key pair ``key_id``."""
    server = ServerThread(BedrockSimulator({key_id: secret}))
    server.start()
    server.app.url = server.url
    try:
        yield server.app
    finally:
        server.stop()


def nothing_left_the_gateway(sim: Any) -> None:
    assert sim.requests == []
    assert loopback_guard.take() == []  # no lookup of, or connection to, any other host


def still_serves(gw: str, sim: Any, auth: dict[str, str]) -> None:
    """The gateway answers a chat call and a pass-through call normally."""
    r = httpx.post(
        f"{gw}/v1/chat/completions", headers=auth, json={"model": "agent", "messages": USER}
    )
    assert r.status_code == 200, r.text
    r = httpx.post(f"{gw}/bedrock/model/native/converse", headers=auth, content=CONVERSE_BODY)
    assert r.status_code == 200, r.text
    assert [q.operation for q in sim.requests] == ["InvokeAgent", "Converse"]
