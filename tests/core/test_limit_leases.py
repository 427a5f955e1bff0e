"""Leases on Redis-shared request and token limits (``outcrop.limits.RedisCounters``): several
instances (each its own ``RedisCounters``, connection and instance id) on the machine's Redis.
A lease is a block of a window reserved in one script, sized to the calls this instance saw
lately; blocks shrink to 1 near the limit, go back when idle, never outlive their window, and
the window still admits exactly ``limit``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis

from outcrop import Limit
from outcrop import limits as limits_module
from outcrop.limits import RedisCounters

RPM = Limit(Limit.REQUESTS, "k", 100, "this key's rpm_limit")


@pytest.fixture
async def fleet(redis_settings: dict[str, str]) -> AsyncIterator[Callable[[int], Any]]:
    made: list[RedisCounters] = []

    async def make(n: int) -> list[RedisCounters]:
        for _ in range(n):
            counters = RedisCounters(
                redis_settings["redis_url"], prefix=redis_settings["redis_key_prefix"]
            )
            await counters.start()
            made.append(counters)
        return made[-n:]

    yield make
    for counters in made:
        await counters.close()


def _value(redis_settings: dict[str, str], name: str) -> float:
    client = redis.Redis.from_url(redis_settings["redis_url"])
    try:
        return float(client.get(redis_settings["redis_key_prefix"] + name) or 0)
    finally:
        client.close()


async def _drain(counters: RedisCounters, limits: list[Limit]) -> int:
    """Admit until refused: how many were admitted."""
    admitted = 0
    while (await counters.admit(limits, "r")).refused is None:
        admitted += 1
    return admitted


def _held(counters: RedisCounters) -> int:
    return sum(max(int(lease.left), 0) for lease in counters._leases.values())


async def test_blocks_follow_demand_and_the_window_admits_exactly_the_limit(
    fleet: Any, redis_settings: dict[str, str]
) -> None:
    a, b, c, d = await fleet(4)
    assert (await a.admit([RPM], "r")).refused is None
    assert _value(redis_settings, "r:k") == 2  # one call asked: a block of 2 x 1
    assert (await b.admit([RPM], "r")).refused is None
    assert _value(redis_settings, "r:k") == 4
    # 200 concurrent callers over the 4 instances: blocks grow with the calls waiting, and
    # exactly 100 are admitted or held in the window, however the blocks were cut (the last
    # ones are single requests: what is left / (2 x instances))
    verdicts = await asyncio.gather(
        *[x.admit([RPM], f"c{i}") for i in range(50) for x in (a, b, c, d)]
    )
    admitted = sum(v.refused is None for v in verdicts) + 2
    assert admitted + sum(_held(x) for x in (a, b, c, d)) == 100
    assert _value(redis_settings, "r:k") == 100
    # near the limit a block is one request: refused ones name the limit and its window
    refused = [v for v in verdicts if v.refused is not None]
    assert refused and all(v.refused == RPM and 0 < v.retry_after_s <= 60 for v in refused)


async def test_a_busy_instance_leases_up_to_half_of_what_is_left(
    fleet: Any, redis_settings: dict[str, str]
) -> None:
    (a,) = await fleet(1)
    await asyncio.gather(*[a.admit([RPM], f"c{i}") for i in range(30)])
    # 30 calls asked at once: after the first block of 2, one of what is left / 2 (49)
    assert _value(redis_settings, "r:k") == 51 and _held(a) == 21


async def test_an_instance_with_a_trickle_of_calls_strands_no_block(
    fleet: Any, redis_settings: dict[str, str]
) -> None:
    """An instance taking a call every 0.2 s is never idle long enough to give a block back:
    its blocks are sized to its own calls, so the others still get the rest of the window."""
    a, b = await fleet(2)
    trickle = 0
    for _ in range(6):
        trickle += (await a.admit([RPM], "r")).refused is None
        await asyncio.sleep(0.2)
    assert trickle == 6 and _held(a) <= 10
    taken = await _drain(b, [RPM])
    assert trickle + taken + _held(a) == 100 and _value(redis_settings, "r:k") == 100


async def test_an_idle_instance_gives_its_block_back(
    fleet: Any, redis_settings: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits_module, "LEASE_IDLE_S", 0.3)
    a, b = await fleet(2)
    assert (await a.admit([RPM], "r")).refused is None and _held(a) == 1
    taken = await _drain(b, [RPM])
    assert taken == 98 and _value(redis_settings, "r:k") == 100
    await asyncio.sleep(0.6)  # a is idle: its 1 goes back, b uses it in the same window
    assert _value(redis_settings, "r:k") == 99
    assert await _drain(b, [RPM]) == 1
    assert _value(redis_settings, "r:k") == 100
    assert (await a.admit([RPM], "r")).refused == RPM


async def test_a_lease_never_crosses_its_window(
    fleet: Any, redis_settings: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits_module, "WINDOW_S", 1.0)
    monkeypatch.setattr(limits_module, "LEASE_IDLE_S", 30.0)  # the window ends first
    a, b = await fleet(2)
    assert (await a.admit([RPM], "r")).refused is None and _held(a) == 1  # of the first window
    await asyncio.sleep(1.2)
    # the new window: a's old block is gone (a leases again) and b shares what is left
    total = await _drain(a, [RPM]) + await _drain(b, [RPM])
    assert total == 100 and _value(redis_settings, "r:k") == 100
    await asyncio.sleep(1.2)
    assert (await a.admit([RPM], "r")).refused is None and _held(a) > 0  # a third window
    await asyncio.sleep(1.2)
    assert (await b.admit([RPM], "r")).refused is None  # b leases in a fourth window
    fourth = _value(redis_settings, "r:k")
    assert fourth == b._leases[next(iter(b._leases))].used
    await a.close()  # a gives back a block of the third window: the fourth keeps its count
    assert _value(redis_settings, "r:k") == fourth


async def test_tokens_are_charged_to_the_lease_then_to_redis(
    fleet: Any, redis_settings: dict[str, str]
) -> None:
    tpm = Limit(Limit.TOKENS, "k", 1000, "this key's tpm_limit")
    a, b = await fleet(2)
    verdict = await a.admit([RPM, tpm], "r")
    # no tokens charged yet: a block of 1 token (the call is admitted while the block holds any)
    assert verdict.refused is None and _value(redis_settings, "t:k") == 1
    assert verdict.headers["x-ratelimit-remaining-tokens"] == "1000"
    a.finish("r", tokens=[("k", 300)])  # 1 from the lease, 299 charged to Redis
    await asyncio.sleep(0.05)
    assert _value(redis_settings, "t:k") == 300
    # the next block follows the 300 tokens just charged: min(700 / 2, 2 x 300) = 350
    assert (await a.admit([RPM, tpm], "r")).refused is None
    assert _value(redis_settings, "t:k") == 650
    a.finish("r", tokens=[("k", 200)])  # from the lease: Redis unchanged
    await asyncio.sleep(0.05)
    assert _value(redis_settings, "t:k") == 650
    a.finish("r", tokens=[("k", 500)])  # 150 left in the lease, 350 charged to Redis
    await a.close()  # the charge is written before the connection closes
    assert _value(redis_settings, "t:k") == 1000
    refused = await b.admit([RPM, tpm], "r")
    assert refused.refused == tpm and refused.used == 1000
