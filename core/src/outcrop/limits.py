"""Rate-limit and budget counters, shared by every gateway process that uses the same Redis.

One home for the counters the keys plugin (per-key and per-team limits, budgets) and the core
(per-deployment ``rpm``/``tpm`` caps) check. Two backends with the same semantics:

- ``LocalCounters``: in this process, exact (one worker).
- ``RedisCounters``: in Redis (``REDIS_URL`` / ``general_settings.redis_url``), each check one
  atomic round trip (a Lua script), so N processes share one count; request and token limits
  alone are admitted from leased blocks of the window (``_LEASE``; docs/scale-out.md, "Leases").

Windows are fixed, 60 seconds long, and start with the first request counted in them (not on
the minute): within one window at most ``limit`` requests are admitted, whichever processes
serve them. Token counters are charged when a call ends, with the tokens the upstream reported;
a call is refused while the window's tokens already reached the limit. Parallel slots are held
from admission to the call's end (and expire after ``PARALLEL_TTL_S`` should a process die
holding them). Spend counters accumulate USD per budget period.

Nothing here runs for a call that has no limit: callers ask only when a key, team or
deployment has one.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .errors import OutcropError
from .logs import get_logger
from .resp import Prepared, RespConnection, RespError

log = get_logger("outcrop.limits")

#: Length of a rate-limit window, in seconds (documented in docs/scale-out.md).
WINDOW_S = 60.0
#: How long a parallel slot outlives a process that died holding it.
PARALLEL_TTL_S = 900.0

REQUESTS, TOKENS, PARALLEL, SPEND = "r", "t", "p", "s"
#: How long a finished call's token charge and slot release may wait to share a write with the
#: next check (seconds; see ``RedisCounters.finish``).
FINISH_DELAY_S = 0.005
#: How many worker processes serve the gateway (set by ``outcrop serve --workers N``).
WORKERS_ENV = "OUTCROP_WORKERS"


@dataclass(frozen=True, slots=True)
class Limit:
    """One counter checked at admission.

    ``kind`` is ``Limit.REQUESTS`` (one taken per admitted call), ``TOKENS`` (checked; charged at the
    call's end), ``PARALLEL`` (a slot held until the call ends) or ``SPEND`` (checked; charged
    at the end). ``name`` identifies the counter (``key:<hash>``); ``label`` says what it is in a
    refusal (``this key's rpm_limit``). ``ttl_s`` is a spend counter's lifetime (its budget
    period).
    """

    kind: str
    name: str
    limit: float
    label: str
    ttl_s: float = 0.0

    REQUESTS: ClassVar[str] = REQUESTS
    TOKENS: ClassVar[str] = TOKENS
    PARALLEL: ClassVar[str] = PARALLEL
    SPEND: ClassVar[str] = SPEND


@dataclass(slots=True)
class Verdict:
    """The answer to one admission: ``refused`` names the limit that said no."""

    refused: Limit | None = None
    used: float = 0.0
    retry_after_s: float = 0.0
    #: ``x-ratelimit-*`` headers for the caller (the tightest request and token limits).
    headers: dict[str, str] = field(default_factory=dict)
    #: Parallel counters a slot was taken on (release them when the call ends).
    held: tuple[str, ...] = ()
    #: The counters store was unreachable and the check was skipped (``fail_open``).
    skipped: bool = False

    def error(self) -> OutcropError:
        """The 429 for a refusal, with ``Retry-After`` and the ``x-ratelimit-*`` headers."""
        assert self.refused is not None
        limit = self.refused
        wait = max(math.ceil(self.retry_after_s), 1)
        headers = {
            **self.headers,
            "retry-after": str(wait),
            "retry-after-ms": str(max(int(self.retry_after_s * 1000), 1)),
        }
        if limit.kind in (REQUESTS, TOKENS):
            unit = "requests" if limit.kind == REQUESTS else "tokens"
            headers[f"x-ratelimit-limit-{unit}"] = _number(limit.limit)
            headers[f"x-ratelimit-remaining-{unit}"] = "0"
            headers[f"x-ratelimit-reset-{unit}"] = _duration(self.retry_after_s)
        if limit.kind == SPEND:
            message = (
                f"Budget has been exceeded: {limit.label} spent ${self.used:.6f} of "
                f"max_budget ${_number(limit.limit)}"
            )
            code = "budget_exceeded"
        elif limit.kind == PARALLEL:
            message = (
                f"Rate limit reached: {limit.label} ({_number(limit.limit)}) calls are in "
                "flight; retry when one ends"
            )
            code = "rate_limit_exceeded"
        else:
            unit = "requests" if limit.kind == REQUESTS else "tokens"
            message = (
                f"Rate limit reached: {limit.label} is {_number(limit.limit)} {unit} per "
                f"minute ({_number(self.used)} used); retry in {wait}s"
            )
            code = "rate_limit_exceeded"
        return OutcropError(
            message, 429, code=code, aws_type="ThrottlingException", headers=headers
        )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _duration(seconds: float) -> str:
    """``x-ratelimit-reset-*`` in OpenAI's spelling (``20ms``, ``6s``, ``1m0s``)."""
    if seconds < 1:
        return f"{max(int(seconds * 1000), 0)}ms"
    whole = math.ceil(seconds)
    return f"{whole // 60}m{whole % 60}s" if whole >= 60 else f"{whole}s"


def rate_headers(limits: Sequence[Limit], state: Sequence[tuple[float, float]]) -> dict[str, str]:
    """``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` for the tightest limit of each
    kind. ``state[i]`` is (used after this call, seconds until the window resets)."""
    tightest: dict[str, tuple[float, float, float]] = {}  # kind -> (limit, left, reset)
    for lim, (used, reset) in zip(limits, state, strict=True):
        kind = lim.kind
        if kind in (REQUESTS, TOKENS):
            left = max(lim.limit - used, 0)
            best = tightest.get(kind)
            if best is None or left < best[1]:
                tightest[kind] = (lim.limit, left, reset)
    out: dict[str, str] = {}
    for kind, unit in ((REQUESTS, "requests"), (TOKENS, "tokens")):
        best = tightest.get(kind)
        if best is not None:
            out[f"x-ratelimit-limit-{unit}"] = _number(best[0])
            out[f"x-ratelimit-remaining-{unit}"] = _number(best[1])
            out[f"x-ratelimit-reset-{unit}"] = _duration(best[2])
    return out


def counter(kind: str, name: str) -> str:
    """The one spelling of a counter's key (after the Redis prefix)."""
    return f"{kind}:{name}"


class CountersUnavailable(Exception):
    """The shared counters store could not be reached."""


class Counters(ABC):
    """The interface both backends implement (all counts in one atomic step per call)."""

    #: ``fail_closed`` (refuse with 503 when the store is down) or ``fail_open``.
    on_failure: str = "fail_closed"
    shared: bool = False
    #: Checks skipped because the store was down (``fail_open``).
    skipped = 0

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def admit(self, limits: Sequence[Limit], request_id: str) -> Verdict:
        """Check every limit; when all pass, take a request on each ``REQUESTS`` counter and a
        slot on each ``PARALLEL`` one, atomically."""
        try:
            return await self._admit(limits, request_id)
        except CountersUnavailable as exc:
            return self._unavailable(exc)

    async def pick(
        self, candidates: Sequence[tuple[str, float | None, float | None]]
    ) -> tuple[int, float]:
        """The index of the first candidate ``(name, rpm, tpm)`` under its caps, with one request
        taken on it, or ``(-1, seconds until the first window resets)`` when all are at a cap."""
        try:
            return await self._pick(candidates)
        except CountersUnavailable as exc:
            self._unavailable(exc)
            return 0, 0.0

    async def pick_least_used(
        self, candidates: Sequence[tuple[str, float | None, float | None]]
    ) -> tuple[int, float]:
        """Like ``pick``, but of the candidates under their caps the one with the fewest tokens
        (then requests) in its current window takes the request (usage-based-routing; ties go
        to the first)."""
        try:
            return await self._pick_least_used(candidates)
        except CountersUnavailable as exc:
            self._unavailable(exc)
            return 0, 0.0

    @abstractmethod
    def finish(
        self,
        request_id: str,
        held: Sequence[str] = (),
        tokens: Sequence[tuple[str, int]] = (),
        spend: Sequence[tuple[str, float, float]] = (),
    ) -> None:
        """A call ended: release its parallel slots, charge tokens ``(name, n)`` and spend
        ``(name, usd, ttl_s)``. Never raises; Redis work runs in the background."""

    @abstractmethod
    async def spent(self, name: str) -> float:
        """A spend counter's value (0 when absent)."""

    @abstractmethod
    async def _admit(self, limits: Sequence[Limit], request_id: str) -> Verdict: ...

    @abstractmethod
    async def _pick(
        self, candidates: Sequence[tuple[str, float | None, float | None]]
    ) -> tuple[int, float]: ...

    @abstractmethod
    async def _pick_least_used(
        self, candidates: Sequence[tuple[str, float | None, float | None]]
    ) -> tuple[int, float]: ...

    def _unavailable(self, exc: Exception) -> Verdict:
        if self.on_failure == "fail_open":
            self.skipped += 1
            log.warning(
                "limits_store_unavailable",
                error=str(exc),
                skipped_total=self.skipped,
                message="fail_open: the call is served without its limits checked",
            )
            return Verdict(skipped=True)
        log.error(
            "limits_store_unavailable",
            error=str(exc),
            message="fail_closed: calls with limits are refused until it is back",
        )
        raise OutcropError(
            "the rate-limit store is unavailable; retry shortly",
            503,
            code="limits_unavailable",
            aws_type="ServiceUnavailableException",
            headers={"retry-after": "1"},
        )


class LocalCounters(Counters):
    """Exact counters in this process (the default: one gateway process)."""

    #: Ended windows are swept after this many new ones (memory stays bounded by live ones).
    SWEEP_EVERY = 10_000

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, list[float]] = {}  # name -> [value, ends_at]
        self._slots: dict[str, dict[str, float]] = {}  # name -> request id -> expires_at
        self._opened = 0

    def _value(self, name: str, now: float) -> tuple[float, float]:
        window = self._windows.get(name)
        if window is None or window[1] <= now:
            return 0.0, WINDOW_S
        return window[0], window[1] - now

    def _add(self, name: str, amount: float, now: float, ttl: float = WINDOW_S) -> None:
        window = self._windows.get(name)
        if window is None or window[1] <= now:
            self._windows[name] = [amount, now + ttl]
            self._opened += 1
            if self._opened >= self.SWEEP_EVERY:
                self._sweep(now)
        else:
            window[0] += amount

    def _sweep(self, now: float) -> None:
        self._opened = 0
        for name in [n for n, w in self._windows.items() if w[1] <= now]:
            del self._windows[name]

    def _in_flight(self, name: str, now: float) -> int:
        slots = self._slots.get(name)
        if not slots:
            return 0
        for rid in [r for r, t in slots.items() if t <= now]:
            del slots[rid]
        return len(slots)

    async def _admit(self, limits: Sequence[Limit], request_id: str) -> Verdict:
        now = self._clock()
        state: list[tuple[float, float]] = []
        for lim in limits:
            key = counter(lim.kind, lim.name)
            if lim.kind == PARALLEL:
                used, reset = float(self._in_flight(key, now)), 1.0
            else:
                used, reset = self._value(key, now)
                if lim.kind == SPEND:
                    reset = 1.0
            if used >= lim.limit:
                return Verdict(refused=lim, used=used, retry_after_s=reset)
            state.append((used + (lim.kind == REQUESTS), reset))
        held = []
        for lim in limits:
            key = counter(lim.kind, lim.name)
            if lim.kind == REQUESTS:
                self._add(key, 1, now)
            elif lim.kind == PARALLEL:
                self._slots.setdefault(key, {})[request_id] = now + PARALLEL_TTL_S
                held.append(key)
        return Verdict(headers=rate_headers(limits, state), held=tuple(held))

    async def _pick(
        self, candidates: Sequence[tuple[str, float | None, float | None]]
    ) -> tuple[int, float]:
        now = self._clock()
        wait = WINDOW_S
        for i, (name, rpm, tpm) in enumerate(candidates):
            used, reset = self._value(counter(REQUESTS, name), now)
            if rpm is not None and used >= rpm:
                wait = min(wait, reset)
                continue
            used, reset = self._value(counter(TOKENS, name), now)
            if tpm is not None and used >= tpm:
                wait = min(wait, reset)
                continue
            self._add(counter(REQUESTS, name), 1, now)
            return i, 0.0
        return -1, wait

    async def _pick_least_used(
        self, candidates: Sequence[tuple[str, float | None, float | None]]
    ) -> tuple[int, float]:
        now = self._clock()
        wait = WINDOW_S
        best: tuple[float, float, int] | None = None  # (tokens, requests, index)
        for i, (name, rpm, tpm) in enumerate(candidates):
            requests, r_reset = self._value(counter(REQUESTS, name), now)
            tokens, t_reset = self._value(counter(TOKENS, name), now)
            if rpm is not None and requests >= rpm:
                wait = min(wait, r_reset)
            elif tpm is not None and tokens >= tpm:
                wait = min(wait, t_reset)
            elif best is None or (tokens, requests) < best[:2]:
                best = (tokens, requests, i)
        if best is None:
            return -1, wait
        self._add(counter(REQUESTS, candidates[best[2]][0]), 1, now)
        return best[2], 0.0

    def finish(
        self,
        request_id: str,
        held: Sequence[str] = (),
        tokens: Sequence[tuple[str, int]] = (),
        spend: Sequence[tuple[str, float, float]] = (),
    ) -> None:
        now = self._clock()
        for name in held:
            slots = self._slots.get(name)
            if slots is not None:
                slots.pop(request_id, None)
                if not slots:
                    del self._slots[name]
        for name, n in tokens:
            if n:
                self._add(counter(TOKENS, name), n, now)
        for name, usd, ttl in spend:
            if usd:
                self._add(counter(SPEND, name), usd, now, ttl)

    async def spent(self, name: str) -> float:
        return self._value(counter(SPEND, name), self._clock())[0]


# -- Redis ----------------------------------------------------------------------------------------

# KEYS: counters. ARGV: window_ms, parallel ttl ms, (kind, limit) per key, then now_ms and the
# request id (last: the arguments before them are encoded once per set of limits).
# Returns {1, used_1, pttl_1, ...} when every limit passes (and takes requests and slots), or
# {0, index, used, pttl} for the first that refuses.
_ADMIT = """
local window = tonumber(ARGV[1])
local slot_ttl = tonumber(ARGV[2])
local now = tonumber(ARGV[2 * #KEYS + 3])
local rid = ARGV[2 * #KEYS + 4]
local out = {1}
for i, key in ipairs(KEYS) do
  local kind = ARGV[1 + 2 * i]
  local limit = tonumber(ARGV[2 + 2 * i])
  local used, ttl
  if kind == 'p' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    used = redis.call('ZCARD', key)
    ttl = 1000
  else
    used = tonumber(redis.call('GET', key) or '0')
    ttl = redis.call('PTTL', key)
    if ttl < 0 then ttl = window end
  end
  if used >= limit then
    return {0, i, tostring(used), ttl}
  end
  if kind == 'r' then used = used + 1 end
  out[#out + 1] = tostring(used)
  out[#out + 1] = ttl
end
for i, key in ipairs(KEYS) do
  local kind = ARGV[1 + 2 * i]
  if kind == 'r' then
    if redis.call('INCR', key) == 1 or redis.call('PTTL', key) < 0 then
      redis.call('PEXPIRE', key, window)
    end
  elseif kind == 'p' then
    redis.call('ZADD', key, now + slot_ttl, rid)
    redis.call('PEXPIRE', key, slot_ttl)
  end
end
return out
"""

# KEYS: (requests, tokens) per candidate. ARGV: window_ms, then (rpm, tpm) per candidate (-1:
# none). Returns {1-based index of the candidate that took the request, 0}, or {0, the
# milliseconds until the first full window resets}.
_PICK = """
local window = tonumber(ARGV[1])
local wait = window
for i = 1, #KEYS / 2 do
  local rkey, tkey = KEYS[2 * i - 1], KEYS[2 * i]
  local rpm, tpm = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local full = nil
  if rpm >= 0 and tonumber(redis.call('GET', rkey) or '0') >= rpm then full = rkey end
  if not full and tpm >= 0 and tonumber(redis.call('GET', tkey) or '0') >= tpm then full = tkey end
  if full then
    local ttl = redis.call('PTTL', full)
    if ttl >= 0 and ttl < wait then wait = ttl end
  else
    if redis.call('INCR', rkey) == 1 or redis.call('PTTL', rkey) < 0 then
      redis.call('PEXPIRE', rkey, window)
    end
    return {i, 0}
  end
end
return {0, wait}
"""

# As _PICK, but the candidate under its caps with the fewest tokens (then requests) takes it.
_PICK_LEAST_USED = """
local window = tonumber(ARGV[1])
local wait = window
local best, best_t, best_r = 0, 0, 0
for i = 1, #KEYS / 2 do
  local rkey, tkey = KEYS[2 * i - 1], KEYS[2 * i]
  local rpm, tpm = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local r = tonumber(redis.call('GET', rkey) or '0')
  local t = tonumber(redis.call('GET', tkey) or '0')
  local full = nil
  if rpm >= 0 and r >= rpm then full = rkey elseif tpm >= 0 and t >= tpm then full = tkey end
  if full then
    local ttl = redis.call('PTTL', full)
    if ttl >= 0 and ttl < wait then wait = ttl end
  elseif best == 0 or t < best_t or (t == best_t and r < best_r) then
    best, best_t, best_r = i, t, r
  end
end
if best == 0 then return {0, wait} end
local rkey = KEYS[2 * best - 1]
if redis.call('INCR', rkey) == 1 or redis.call('PTTL', rkey) < 0 then
  redis.call('PEXPIRE', rkey, window)
end
return {best, 0}
"""

# KEYS: parallel counters, then token counters, then spend counters. ARGV: window_ms, #parallel,
# #tokens, then one amount per token counter, then (usd, ttl_ms) per spend, then the request id.
_FINISH = """
local window = tonumber(ARGV[1])
local np, nt = tonumber(ARGV[2]), tonumber(ARGV[3])
local rid = ARGV[#ARGV]
for i = 1, np do redis.call('ZREM', KEYS[i], rid) end
for i = 1, nt do
  local key = KEYS[np + i]
  redis.call('INCRBY', key, ARGV[3 + i])
  if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, window) end
end
local a = 4 + nt
for i = np + nt + 1, #KEYS do
  redis.call('INCRBYFLOAT', KEYS[i], ARGV[a])
  redis.call('PEXPIRE', KEYS[i], ARGV[a + 1])
  a = a + 2
end
return 1
"""

# Leases (request and token limits only). KEYS: counters. ARGV: window_ms, instance id, then
# (kind, limit, cap, reserve) per key, then (waiting, extra) per key: the units this process's
# waiting calls need now, and what its recent rate asks beyond them. Every counter is checked
# first (as _ADMIT); when all pass each grants a block: the waiting units (at most what is left
# / (2 x instances that leased in this window), at least 1: the call that asked) plus, only from
# the part of the window above ``reserve``, the extra (at most that part / (2 x instances)), all
# at most ``cap``. The last ``reserve`` units go only to calls already waiting: none is stranded
# in a process whose calls stopped. Returns {1, granted_1,
# used_1, expires_at_1, pttl_1, ...} (expires_at: the window's end, Redis clock, ms) or {0, index, used,
# pttl}.
_LEASE = """
local window = tonumber(ARGV[1])
local me = ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {1}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[4 * i])
  local used = tonumber(redis.call('GET', key) or '0')
  if used >= limit then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then ttl = window end
    return {0, i, tostring(used), ttl}
  end
end
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[4 * i])
  local cap = tonumber(ARGV[4 * i + 1])
  local reserve = tonumber(ARGV[4 * i + 2])
  local waiting = tonumber(ARGV[1 + 4 * #KEYS + 2 * i])
  local extra = tonumber(ARGV[2 + 4 * #KEYS + 2 * i])
  local who = key .. ':lessees'
  redis.call('ZADD', who, now, me)
  redis.call('ZREMRANGEBYSCORE', who, '-inf', now - window)
  redis.call('PEXPIRE', who, window)
  local seen = redis.call('ZCARD', who)
  local used = tonumber(redis.call('GET', key) or '0')
  local n = math.min(waiting, math.floor((limit - used) / (2 * seen)))
  if n < 1 then n = 1 end
  local spare = math.floor((limit - used - n - reserve) / (2 * seen))
  if extra > spare then extra = spare end
  if extra > 0 then n = n + extra end
  if n > cap then n = cap end
  used = tonumber(redis.call('INCRBYFLOAT', key, n))
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then redis.call('PEXPIRE', key, window); ttl = window end
  out[#out + 1] = tostring(n)
  out[#out + 1] = tostring(used)
  out[#out + 1] = now + ttl
  out[#out + 1] = ttl
end
return out
"""

# A lease's unused units back. KEYS: the counter. ARGV: units, the window's end the lease was
# granted in (ms): a window that ended (or a Redis that restarted) takes nothing back.
_GIVE_BACK = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then return 0 end
local t = redis.call('TIME')
local ends = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + ttl
if math.abs(ends - tonumber(ARGV[2])) > 5 then return 0 end
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = math.min(tonumber(ARGV[1]), used)
redis.call('INCRBYFLOAT', KEYS[1], -n)
return 1
"""

#: A lease's unused units go back to Redis after this long without a call taking from it.
LEASE_IDLE_S = 0.5
#: The most one lease holds, per kind (a block, however much of the window is left).
LEASE_CAP = {REQUESTS: 1000, TOKENS: 10_000_000}
#: The last units of a window, per kind, that leases give only to calls already waiting.
LEASE_RESERVE = {REQUESTS: 1000, TOKENS: 1_000_000}


#: The length of the buckets a process's recent demand on a counter is counted in.
DEMAND_BUCKET_S = 0.5


class _Demand:
    """What this process asked of one counter lately (requests that wanted admission, tokens
    charged), in ``DEMAND_BUCKET_S`` buckets. Beyond its waiting calls a block asks for twice the
    last complete bucket: a steady process leases ahead of its calls, a burst (counted only once
    its bucket is complete) takes no more than the calls it has waiting."""

    __slots__ = ("bucket", "current", "previous")

    def __init__(self) -> None:
        self.bucket = 0
        self.current = 0.0
        self.previous = 0.0

    def add(self, now: float, amount: float) -> None:
        bucket = int(now / DEMAND_BUCKET_S)
        if bucket != self.bucket:
            self.previous = self.current if bucket == self.bucket + 1 else 0.0
            self.current = 0.0
            self.bucket = bucket
        self.current += amount

    def extra(self, now: float) -> int:
        self.add(now, 0)
        return math.ceil(2 * self.previous)


@dataclass(slots=True)
class _Lease:
    """A block of one counter's window reserved in Redis for this process."""

    left: float
    #: Loop clock: the lease ends no later than its window does.
    ends: float
    #: The window's end on Redis's clock (ms): names the window a give-back is for.
    expires_at: int
    #: The counter in Redis after the grant (every process's blocks count as used).
    used: float
    #: Loop clock of the last call that took from it.
    last: float
    timer: asyncio.TimerHandle | None = None


#: Encoded command heads kept per set of limits (``Prepared``); past this many, forgotten.
HEADS_KEPT = 4096


class RedisCounters(Counters):
    """Counters in Redis, shared by every process using the same URL and ``prefix``.

    Each admission is one ``EVALSHA`` round trip; a finished call's charge is written without
    waiting for its reply (retried in the background when it fails), on one pipelined
    connection of our own (``outcrop.resp``). A charge of tokens and parallel slots only goes
    out with the next admission's write (or ``FINISH_DELAY_S`` later at the latest): this
    process's next check still sees it first (one connection, commands in order), other
    processes up to 5 ms later; a charge of spend (budgets) goes out at once. The part of each
    command that is the same from call to call (script, keys, limits) is encoded once."""

    shared = True

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "outcrop:",
        on_failure: str = "fail_closed",
        timeout: float = 1.0,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.on_failure = on_failure
        self.timeout = timeout
        self.skipped = 0
        self._conn: RespConnection | None = None
        self._scripts = {
            name: (hashlib.sha1(source.encode()).hexdigest(), source)
            for name, source in (
                ("admit", _ADMIT),
                ("pick", _PICK),
                ("pick_least_used", _PICK_LEAST_USED),
                ("finish", _FINISH),
                ("lease", _LEASE),
                ("give_back", _GIVE_BACK),
            )
        }
        self._tasks: set[asyncio.Task[None]] = set()
        self._finish_failures = 0
        #: limits -> (the admission's encoded head, the prefixed counter names)
        self._admit_heads: dict[tuple[Limit, ...], tuple[Prepared, tuple[str, ...]]] = {}
        #: (held, token names, spend names) -> the charge's encoded head
        self._finish_heads: dict[tuple[tuple[str, ...], ...], Prepared] = {}
        #: prefixed counter -> this process's lease on its window
        self._leases: dict[str, _Lease] = {}
        #: limits -> the lease request in flight (one at a time per set of limits)
        self._leasing: dict[tuple[Limit, ...], asyncio.Future[Verdict | None]] = {}
        self._lease_heads: dict[tuple[Limit, ...], tuple[Prepared, tuple[str, ...]]] = {}
        #: prefixed counter -> what this process asked of it lately (sizes its next block)
        self._demand: dict[str, _Demand] = {}
        #: limits -> calls of this process waiting for the lease request in flight
        self._waiting: dict[tuple[Limit, ...], int] = {}
        self.instance = uuid.uuid4().hex

    async def start(self) -> None:
        self._conn = RespConnection(self.url, timeout=self.timeout)
        try:  # loads the scripts: calls then use EVALSHA (one round trip each)
            await self._load_scripts()
        except Exception as exc:  # down at start: checks fail (open or closed) until it is up
            log.warning("limits_store_unavailable_at_start", error=f"{type(exc).__name__}: {exc}")

    async def _load_scripts(self) -> None:
        assert self._conn is not None
        for _sha, source in self._scripts.values():
            await self._conn.execute("SCRIPT", "LOAD", source)

    async def close(self) -> None:
        for key in list(self._leases):
            self._give_back(key)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
        conn, self._conn = self._conn, None
        if conn is not None:
            try:  # replies come in order: this one is behind every charge sent so far
                await conn.execute("PING")
            except Exception:
                pass
            await conn.close()

    async def _run(self, name: str, command: tuple[Any, ...]) -> Any:
        """``command``: the script's ``EVALSHA`` (its head ``Prepared`` or spelt out)."""
        if self._conn is None:
            raise CountersUnavailable("the Redis client is not started")
        try:
            try:
                return await self._conn.execute(*command)
            except RespError as exc:
                if not str(exc).startswith("NOSCRIPT"):
                    raise
                # Redis restarted (or flushed its scripts): load them again
                await self._load_scripts()
                return await self._conn.execute(*command)
        except (ConnectionError, TimeoutError, OSError) as exc:
            raise CountersUnavailable(f"Redis {type(exc).__name__}: {exc}") from None

    def _admit_head(self, limits: tuple[Limit, ...]) -> tuple[Prepared, tuple[str, ...]]:
        keys = tuple(self.prefix + counter(lim.kind, lim.name) for lim in limits)
        args: list[Any] = [int(WINDOW_S * 1000), int(PARALLEL_TTL_S * 1000)]
        for lim in limits:
            args += [lim.kind, repr(float(lim.limit))]
        sha = self._scripts["admit"][0]
        if len(self._admit_heads) >= HEADS_KEPT:
            self._admit_heads.clear()
        made = self._admit_heads[limits] = (Prepared("EVALSHA", sha, len(keys), *keys, *args), keys)
        return made

    async def _admit(self, limits: Sequence[Limit], request_id: str) -> Verdict:
        limits = tuple(limits)
        if all(lim.kind in (REQUESTS, TOKENS) for lim in limits):
            return await self._admit_leased(limits)
        head, keys = self._admit_heads.get(limits) or self._admit_head(limits)
        out = await self._run("admit", (head, int(time.time() * 1000), request_id))
        if out[0] == 0:
            index, used, ttl = int(out[1]) - 1, float(out[2]), int(out[3])
            return Verdict(refused=limits[index], used=used, retry_after_s=ttl / 1000)
        state = [(float(out[1 + 2 * i]), out[2 + 2 * i] / 1000) for i in range(len(limits))]
        held = tuple(keys[i] for i, lim in enumerate(limits) if lim.kind == PARALLEL)
        return Verdict(headers=rate_headers(limits, state), held=held)

    async def _admit_leased(self, limits: tuple[Limit, ...]) -> Verdict:
        """Admit from this process's leases; when one is used up (or its window ended), lease
        again (one request in flight per set of limits: the calls behind it wait for it)."""
        loop = asyncio.get_running_loop()
        head, keys = self._lease_heads.get(limits) or self._lease_head(limits)
        for lim, key in zip(limits, keys, strict=True):
            if lim.kind == REQUESTS:
                self._wants(key).add(loop.time(), 1)
        while True:
            now = loop.time()
            leases = [self._leases.get(key) for key in keys]
            ready = True
            for lim, lease in zip(limits, leases, strict=True):
                if (
                    lease is None
                    or lease.ends <= now
                    or lease.left < (lim.kind == REQUESTS)
                    or (lease.left <= 0)
                ):
                    ready = False
                    break
            if ready:
                state = []
                for lim, lease in zip(limits, leases, strict=True):
                    assert lease is not None
                    if lim.kind == REQUESTS:
                        lease.left -= 1
                    lease.last = now
                    state.append((lease.used - lease.left, lease.ends - now))
                return Verdict(headers=rate_headers(limits, state))
            pending = self._leasing.get(limits)
            if pending is not None:
                self._waiting[limits] = self._waiting.get(limits, 0) + 1
                try:
                    refused = await asyncio.shield(pending)
                finally:
                    if self._waiting[limits] > 1:
                        self._waiting[limits] -= 1
                    else:
                        del self._waiting[limits]
                if refused is not None:
                    return refused
                continue
            pending = self._leasing[limits] = loop.create_future()
            try:
                waiting = 1 + self._waiting.get(limits, 0)
                demand: list[int] = []
                for lim, key in zip(limits, keys, strict=True):
                    demand += [waiting if lim.kind == REQUESTS else 1, self._wants(key).extra(now)]
                out = await self._run("lease", (head, *demand))
            except BaseException:
                pending.set_result(None)  # the calls waiting try for themselves
                raise
            finally:
                del self._leasing[limits]
            if out[0] == 0:
                index, used, ttl = int(out[1]) - 1, float(out[2]), int(out[3])
                verdict = Verdict(refused=limits[index], used=used, retry_after_s=ttl / 1000)
                pending.set_result(verdict)
                return verdict
            for i, key in enumerate(keys):
                at = 1 + 4 * i
                granted, used = float(out[at]), float(out[at + 1])
                expires_at, ttl = int(out[at + 2]), int(out[at + 3])
                lease = self._leases.get(key)
                same = lease is not None and abs(lease.expires_at - expires_at) <= 5
                if lease is not None and same and lease.ends > now:
                    lease.left += granted
                    lease.used = used
                else:  # ``now`` is from before the request: the lease ends before the window
                    ends = now + ttl / 1000
                    lease = self._leases[key] = _Lease(granted, ends, expires_at, used, now)
                if lease.timer is None:
                    lease.timer = loop.call_at(now + LEASE_IDLE_S, self._idle, key)
            pending.set_result(None)

    def _lease_head(self, limits: tuple[Limit, ...]) -> tuple[Prepared, tuple[str, ...]]:
        keys = tuple(self.prefix + counter(lim.kind, lim.name) for lim in limits)
        args: list[Any] = [int(WINDOW_S * 1000), self.instance]
        for lim in limits:
            args += [lim.kind, repr(float(lim.limit)), LEASE_CAP[lim.kind], LEASE_RESERVE[lim.kind]]
        sha = self._scripts["lease"][0]
        if len(self._lease_heads) >= HEADS_KEPT:
            self._lease_heads.clear()
        made = self._lease_heads[limits] = (Prepared("EVALSHA", sha, len(keys), *keys, *args), keys)
        return made

    def _wants(self, key: str) -> _Demand:
        demand = self._demand.get(key)
        if demand is None:
            if len(self._demand) >= HEADS_KEPT:
                self._demand.clear()
            demand = self._demand[key] = _Demand()
        return demand

    def _idle(self, key: str) -> None:
        """A lease's timer: its window ended (nothing to give back: the units went with it), or
        no call took from it for ``LEASE_IDLE_S`` (give the rest back), or look again later."""
        lease = self._leases.get(key)
        if lease is None:
            return
        lease.timer = None
        now = asyncio.get_running_loop().time()
        if lease.ends <= now:
            del self._leases[key]
        elif now - lease.last >= LEASE_IDLE_S:
            self._give_back(key)
        else:
            lease.timer = asyncio.get_running_loop().call_at(
                lease.last + LEASE_IDLE_S, self._idle, key
            )

    def _give_back(self, key: str) -> None:
        lease = self._leases.pop(key)
        if lease.timer is not None:
            lease.timer.cancel()
        if lease.left <= 0 or self._conn is None:
            return
        sha = self._scripts["give_back"][0]
        command = ("EVALSHA", sha, 1, key, repr(float(lease.left)), lease.expires_at)
        self._conn.post(
            *command,
            on_error=lambda exc: log.warning(
                "limits_lease_not_returned", error=str(exc), counter=key
            ),
        )

    async def _pick(
        self, candidates: Sequence[tuple[str, float | None, float | None]], script: str = "pick"
    ) -> tuple[int, float]:
        keys: list[str] = []
        args: list[Any] = [int(WINDOW_S * 1000)]
        for name, rpm, tpm in candidates:
            keys += [self.prefix + counter(REQUESTS, name), self.prefix + counter(TOKENS, name)]
            args += [-1 if rpm is None else rpm, -1 if tpm is None else tpm]
        sha = self._scripts[script][0]
        index, wait = await self._run(script, ("EVALSHA", sha, len(keys), *keys, *args))
        return int(index) - 1, int(wait) / 1000

    async def _pick_least_used(
        self, candidates: Sequence[tuple[str, float | None, float | None]]
    ) -> tuple[int, float]:
        return await self._pick(candidates, "pick_least_used")

    def _finish_head(self, shape: tuple[tuple[str, ...], ...]) -> Prepared:
        held, tokens, spend = shape
        keys = [*held]
        keys += [self.prefix + counter(TOKENS, n) for n in tokens]
        keys += [self.prefix + counter(SPEND, n) for n in spend]
        args = [int(WINDOW_S * 1000), len(held), len(tokens)]
        if len(self._finish_heads) >= HEADS_KEPT:
            self._finish_heads.clear()
        sha = self._scripts["finish"][0]
        made = self._finish_heads[shape] = Prepared("EVALSHA", sha, len(keys), *keys, *args)
        return made

    def finish(
        self,
        request_id: str,
        held: Sequence[str] = (),
        tokens: Sequence[tuple[str, int]] = (),
        spend: Sequence[tuple[str, float, float]] = (),
    ) -> None:
        tokens = [(n, c) for n, c in tokens if c]
        if tokens and (self._leases or self._demand):  # charged to this process's lease first
            tokens = self._charge_leases(tokens)
        spend = [(n, usd, ttl) for n, usd, ttl in spend if usd]
        if not (held or tokens or spend) or self._conn is None:
            return
        shape = (tuple(held), tuple(n for n, _ in tokens), tuple(n for n, _, _ in spend))
        head = self._finish_heads.get(shape) or self._finish_head(shape)
        args: list[Any] = [c for _, c in tokens]
        for _, usd, ttl in spend:
            args += [repr(float(usd)), max(int(ttl * 1000), 1000)]
        command = (head, *args, request_id)
        delay = 0.0 if spend else FINISH_DELAY_S
        self._conn.post(*command, on_error=lambda exc: self._retry(command), delay=delay)

    def _charge_leases(self, tokens: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """Tokens taken from the leases still running; what is left goes to Redis."""
        now = asyncio.get_running_loop().time()
        rest = []
        for name, n in tokens:
            key = self.prefix + counter(TOKENS, name)
            self._wants(key).add(now, n)
            lease = self._leases.get(key)
            if lease is not None and lease.ends > now and lease.left > 0:
                take = min(n, lease.left)
                lease.left -= take
                n = math.ceil(n - take)
            if n:
                rest.append((name, n))
        return rest

    def _retry(self, command: tuple[Any, ...]) -> None:
        """A charge failed (an error reply, a lost connection): try again in the background."""
        task = asyncio.get_running_loop().create_task(self._finish(command))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish(self, command: tuple[Any, ...]) -> None:
        for attempt in range(3):  # a short blip should not lose a charge or leak a slot
            try:
                await self._run("finish", command)
                return
            except CountersUnavailable as exc:
                if attempt == 2:
                    self._finish_failures += 1
                    log.error(
                        "limits_charge_lost",
                        error=str(exc),
                        lost_total=self._finish_failures,
                        message="a finished call's tokens/spend were not counted in Redis "
                        "(parallel slots expire on their own)",
                    )
                    return
                await asyncio.sleep(0.2 * (attempt + 1))
            except Exception as exc:
                log.error("limits_charge_failed", error=f"{type(exc).__name__}: {exc}")
                return

    async def spent(self, name: str) -> float:
        if self._conn is None:
            return 0.0
        value = await self._conn.execute("GET", self.prefix + counter(SPEND, name))
        return float(value or 0.0)


def make_counters(url: str | None, *, prefix: str, on_failure: str) -> Counters:
    """``RedisCounters`` when a Redis URL is set, else ``LocalCounters``."""
    if url:
        return RedisCounters(url, prefix=prefix, on_failure=on_failure)
    counters = LocalCounters()
    counters.on_failure = on_failure
    return counters
