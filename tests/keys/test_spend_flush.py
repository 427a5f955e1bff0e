"""A budget check while a spend flush is half done: the call's spend is counted once.

The flusher writes a batch (the key's recorded spend grows in the database), then forgets the
batch's pending amount; a cache refresh that lands in between (the poller's, every 250 ms) must
not make the check see the same spend twice (recorded + still pending), which refused calls
that were well under budget. The interleaving is forced with events, not timing."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest

from outcrop.testing.replies import ConverseReply
from outcrop_keys import store

from .conftest import BEDROCK_ID, Admin, flushed, service_of, wait_for

ONE_CALL = 10 * 3e-6 + 5 * 15e-6  # claude 3.5 sonnet, 10 in / 5 out tokens
MESSAGES = [{"role": "user", "content": [{"text": "Hello"}]}]


def _converse(url: str, key: str) -> httpx.Response:
    return httpx.post(
        f"{url}/bedrock/model/{BEDROCK_ID}/converse",
        json={"messages": MESSAGES},
        headers={"x-api-key": key},
    )


def test_refresh_during_a_flush_counts_spend_once(
    gateway_factory: Any, make_config: Any, bedrock_simulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bedrock_simulator.reply(ConverseReply("Hello there", usage=(10, 5)))
    gateway = gateway_factory(make_config())
    key = Admin(gateway.url).generate(max_budget=ONE_CALL * 1.5)["key"]
    service = service_of(gateway)
    loop = service._tasks[0].get_loop()

    committed, release = threading.Event(), threading.Event()
    real_write = store.write_spend

    def write_then_hold(engine: Any, rows: Any) -> None:
        real_write(engine, rows)  # the spend is in the database now
        committed.set()
        assert release.wait(30), "the test never let the flush finish"

    monkeypatch.setattr(store, "write_spend", write_then_hold)
    try:
        assert _converse(gateway.url, key).status_code == 200  # spends ONE_CALL of 1.5
        assert committed.wait(30), "the flush did not start"
        # a cache refresh while the flusher is between its write and its bookkeeping: it
        # either applies at once or waits for the flush (it may not split the two)
        refreshed = asyncio.run_coroutine_threadsafe(service.refresh(), loop)
        assert wait_for(lambda: refreshed.done() or service.writing)
        second = _converse(gateway.url, key)  # 1.0 of 1.5 spent: still under budget
        assert second.status_code == 200, second.text
    finally:
        release.set()
    refreshed.result(30)
    flushed(gateway)
    third = _converse(gateway.url, key)  # 2.0 of 1.5 spent: refused
    assert third.status_code == 429, third.text
    assert "Budget has been exceeded" in third.json()["message"]
