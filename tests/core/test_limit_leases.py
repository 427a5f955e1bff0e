"""Leases on Redis-shared request and token limits (``outcrop.limits.RedisCounters``): several
instances (each its own ``RedisCounters``, connection and instance id) on the machine's Redis.
A lease is a block of a window reserved in one script: the calls waiting, and ahead of them
twice the last half second's calls from the part of the window above a reserve; blocks go back
when idle, never outlive their window, and the window still admits exactly ``limit``."""

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


async def _next_bucket() -> None:
    """Sleep to just past the start of the next demand bucket (the calls made before it are
    then the last complete bucket: what a lease asks for beyond the calls waiting)."""
    now = asyncio.get_running_loop().time()
    size = limits_module.DEMAND_BUCKET_S
    await asyncio.sleep((int(now / size) + 1) * size - now + 0.02)


@pytest.fixture
def no_reserve(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leases ahead of the calls on a window as small as the tests' (100 requests): by default
    the last 1,000 go only to calls already waiting."""
    monkeypatch.setattr(limits_module, "LEASE_RESERVE", {Limit.REQUESTS: 0, Limit.TOKENS: 0})


async def test_blocks_are_the_calls_waiting_and_the_window_admits_exactly_the_limit(
    fleet: Any, redis_settings: dict[str, str]
) -> None:
    a, b, c, d = await fleet(4)
    assert (await a.admit([RPM], "r")).refused is None
    assert _value(redis_settings, "r:k") == 1  # one call waited: a block of 1
    assert (await b.admit([RPM], "r")).refused is None
    assert _value(redis_settings, "r:k") == 2
    # 200 concurrent callers over the 4 instances: each block is the calls waiting (at most
    # what is left / (2 x instances)), so exactly 100 are admitted and none is held back
    verdicts = await asyncio.gather(
        *[x.admit([RPM], f"c{i}") for i in range(50) for x in (a, b, c, d)]
    )
    assert sum(v.refused is None for v in verdicts) + 2 == 100
    assert sum(_held(x) for x in (a, b, c, d)) == 0 and _value(redis_settings, "r:k") == 100
    # refused ones name the limit and its window
    refused = [v for v in verdicts if v.refused is not None]
    assert refused and all(v.refused == RPM and 0 < v.retry_after_s <= 60 for v in refused)


async def test_a_burst_leases_what_waits_in_one_round_trip(
    fleet: Any, redis_settings: dict[str, str]
) -> None:
    (a,) = await fleet(1)
    await asyncio.gather(*[a.admit([RPM], f"c{i}") for i in range(30)])
    # the first call's block of 1, then one block for the 29 that waited behind it
    assert _value(redis_settings, "r:k") == 30 and _held(a) == 0


async def test_a_steady_instance_leases_ahead_only_above_the_reserve(
    fleet: Any, redis_settings: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twice the last complete bucket's calls are leased ahead, from the part of the window
    above the reserve only: a process whose calls stop strands none of the last units."""
    (a,) = await fleet(1)
    await _next_bucket()
    for i in range(5):
        assert (await a.admit([RPM], f"c{i}")).refused is None
    await _next_bucket()
    assert (await a.admit([RPM], "r")).refused is None
    assert _held(a) == 0  # 100 is under the default reserve: nothing ahead
    monkeypatch.setattr(limits_module, "LEASE_RESERVE", {Limit.REQUESTS: 80, Limit.TOKENS: 0})
    (b,) = await fleet(1)
    await _next_bucket()
    for i in range(5):
        assert (await b.admit([RPM], f"c{i}")).refused is None
    await _next_bucket()
    assert (await b.admit([RPM], "r")).refused is None
    # 6 of a's and 5 of b's counted, 1 waiting: 10 ahead asked, above the reserve of 80
    # there are (100 - 12 - 80) / (2 x 2 lessees) = 2
    assert _held(b) == 2 and _value(redis_settings, "r:k") == 14


async def test_an_idle_instance_gives_its_block_back(
    fleet: Any, redis_settings: dict[str, str], monkeypatch: pytest.MonkeyPatch, no_reserve: None
) -> None:
    monkeypatch.setattr(limits_module, "LEASE_IDLE_S", 0.3)
    a, b = await fleet(2)
    await _next_bucket()
    for i in range(5):
        assert (await a.admit([RPM], f"c{i}")).refused is None
    await _next_bucket()
    assert (await a.admit([RPM], "r")).refused is None
    assert _held(a) == 10  # twice the 5 of the last bucket, ahead of its calls
    taken = await _drain(b, [RPM])
    assert taken == 100 - 6 - 10 and _value(redis_settings, "r:k") == 100
    await asyncio.sleep(0.6)  # a is idle: its 10 go back, b uses them in the same window
    assert _value(redis_settings, "r:k") == 90
    assert await _drain(b, [RPM]) == 10
    assert _value(redis_settings, "r:k") == 100
    assert (await a.admit([RPM], "r")).refused == RPM


async def test_a_lease_never_crosses_its_window(
    fleet: Any, redis_settings: dict[str, str], monkeypatch: pytest.MonkeyPatch, no_reserve: None
) -> None:
    monkeypatch.setattr(limits_module, "WINDOW_S", 1.5)
    monkeypatch.setattr(limits_module, "LEASE_IDLE_S", 30.0)  # the window ends first
    a, b = await fleet(2)
    await _next_bucket()
    for i in range(3):
        assert (await a.admit([RPM], f"c{i}")).refused is None
    await _next_bucket()
    assert (await a.admit([RPM], "r")).refused is None
    assert _held(a) == 6  # of the first window
    await asyncio.sleep(1.6)
    # the next window: a's block of the first went with it; a gives it back at close, and the
    # new window's count is not touched
    assert (await b.admit([RPM], "r")).refused is None and _value(redis_settings, "r:k") == 1
    await a.close()
    assert _value(redis_settings, "r:k") == 1
    assert 1 + await _drain(b, [RPM]) == 100 and _value(redis_settings, "r:k") == 100


async def test_tokens_are_charged_to_the_lease_then_to_redis(
    fleet: Any, redis_settings: dict[str, str], no_reserve: None
) -> None:
    tpm = Limit(Limit.TOKENS, "k", 1000, "this key's tpm_limit")
    a, b = await fleet(2)
    verdict = await a.admit([RPM, tpm], "r")
    # no tokens charged yet: a block of 1 token (the call is admitted while the block holds any)
    assert verdict.refused is None and _value(redis_settings, "t:k") == 1
    assert verdict.headers["x-ratelimit-remaining-tokens"] == "1000"
    await _next_bucket()
    a.finish("r", tokens=[("k", 300)])  # 1 from the lease, 299 charged to Redis
    await _next_bucket()
    assert _value(redis_settings, "t:k") == 300
    # the next block: 1 for the call, and ahead of it twice the 300 tokens of the last bucket,
    # at most (1000 - 300 - 1) / 2 = 349
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
