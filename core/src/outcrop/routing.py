"""The router: which deployment of a ``model_name`` serves the next attempt.

Per worker and in memory (like LiteLLM without Redis). ``pick`` honours ``order`` (the lowest
available tier serves), cooldowns (a deployment past ``allowed_fails`` retryable failures in a
minute is skipped for ``cooldown_time`` seconds while its group has another) and the routing
strategy. With ``simple-shuffle``, no cooldown running and one tier, ``pick`` is what it always
was: a weighted random choice, with no bookkeeping at all.
"""

from __future__ import annotations

import random
import time
from collections.abc import Collection

from .balance import weighted_choice
from .config import Deployment, RouterSettings
from .wire import Usage

#: Seconds over which failures count towards ``allowed_fails`` (LiteLLM's minute).
FAIL_WINDOW_S = 60.0
#: Weight of the newest sample in a deployment's latency average (latency-based-routing).
LATENCY_ALPHA = 0.3


class Router:
    """Picks a deployment for a ``model_name`` and learns from each attempt's outcome."""

    def __init__(
        self, deployments: list[Deployment], settings: RouterSettings | None = None
    ) -> None:
        self.settings = settings = settings or RouterSettings()
        self._groups: dict[str, list[Deployment]] = {}
        for d in deployments:
            self._groups.setdefault(d.model_name, []).append(d)
        #: The deployments of the lowest ``order`` per name: who serves while none cools down.
        self._first: dict[str, list[Deployment]] = {
            name: _lowest_order(group) for name, group in self._groups.items()
        }
        #: The model_names where a deployment has an ``rpm``/``tpm`` cap: each attempt there
        #: takes a request on the shared counters first (``retry.claim``).
        self.capped = frozenset(
            name
            for name, group in self._groups.items()
            if any(d.params.rpm or d.params.tpm for d in group)
        )
        self.strategy = settings.routing_strategy
        #: Whether calls report their end (``finished``): least-busy and usage-based need it.
        self.tracking = self.strategy in ("least-busy", "usage-based-routing")
        self._simple = self.strategy == "simple-shuffle"
        self._cooldowns = not settings.disable_cooldowns
        self._cooling: dict[int, float] = {}  # deployment index -> monotonic end of cooldown
        self._fails: dict[int, list[float]] = {}  # index -> recent failure times
        self._busy: dict[str, int] = {}  # deployment id -> calls in flight
        self._latency: dict[int, float] = {}  # index -> average seconds to the answer
        self._usage: dict[str, tuple[int, int, int]] = {}  # id -> (minute, requests, tokens)
        args = settings.routing_strategy_args
        self._buffer = float(args.get("lowest_latency_buffer") or 0.0)
        self._fallbacks = _fallback_table(settings)

    # -- names ---------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return list(self._groups)

    def candidates(self, model_name: str) -> list[Deployment]:
        return self._groups.get(model_name, [])

    def fallbacks(self, model_name: str, kind: str = "fallbacks") -> list[str]:
        """The model_names to try after ``model_name`` failed (``kind``: ``fallbacks``,
        ``context_window_fallbacks`` or ``content_policy_fallbacks``)."""
        found = self._fallbacks[kind].get(model_name)
        if found is None and kind == "fallbacks":
            return [n for n in self.settings.default_fallbacks if n != model_name]
        return found or []

    def has_error_fallbacks(self, model_name: str) -> bool:
        """Whether a 400 of ``model_name`` may go to a context-window or content-policy
        fallback (its error body is then read before the answer is decided)."""
        return model_name in self._fallbacks["context_window_fallbacks"] or (
            model_name in self._fallbacks["content_policy_fallbacks"]
        )

    # -- picking -------------------------------------------------------------------------------
    def pick(self, model_name: str, exclude: Collection[int] = ()) -> Deployment | None:
        """A deployment of ``model_name`` (``None`` when it has none). ``exclude`` are indexes
        of deployments that already failed this call: another is preferred while there is one.
        """
        first = self._first.get(model_name)
        if first is None:
            return None
        if self._simple and not self._cooling and not exclude:
            return weighted_choice(first)
        group = self._groups[model_name]
        now = time.monotonic()
        if self._cooling:
            for index, until in list(self._cooling.items()):
                if until <= now:
                    del self._cooling[index]
        fresh = [d for d in group if d.index not in exclude]
        available = [d for d in fresh if d.index not in self._cooling]
        # every deployment cools down or failed already: the one the least recently
        # failed still beats refusing the call
        pool = _lowest_order(available or fresh or group)
        return self._choose(pool)

    def _choose(self, pool: list[Deployment]) -> Deployment:
        if self._simple or len(pool) == 1:
            return weighted_choice(pool)
        if self.strategy == "least-busy":
            least = min(self._busy.get(d.id, 0) for d in pool)
            return random.choice([d for d in pool if self._busy.get(d.id, 0) == least])
        if self.strategy == "latency-based-routing":
            untried = [d for d in pool if d.index not in self._latency]
            if untried:
                return random.choice(untried)
            best = min(self._latency[d.index] for d in pool)
            limit = best * (1 + self._buffer)
            return random.choice([d for d in pool if self._latency[d.index] <= limit])
        # usage-based-routing: the least tokens this minute among those under rpm/tpm
        minute = int(time.time() // 60)
        under = [d for d in pool if not self._at_limit(d, minute)] or pool
        return min(under, key=lambda d: (self._used(d.id, minute)[1], random.random()))

    def _used(self, deployment_id: str, minute: int) -> tuple[int, int]:
        seen = self._usage.get(deployment_id)
        if seen is None or seen[0] != minute:
            return 0, 0
        return seen[1], seen[2]

    def _at_limit(self, d: Deployment, minute: int) -> bool:
        requests, tokens = self._used(d.id, minute)
        rpm, tpm = d.params.rpm, d.params.tpm
        return (rpm is not None and requests >= rpm) or (tpm is not None and tokens >= tpm)

    # -- learning ------------------------------------------------------------------------------
    def started(self, d: Deployment) -> None:
        """An attempt on ``d`` starts (least-busy and usage-based count it)."""
        if self.strategy == "least-busy":
            self._busy[d.id] = self._busy.get(d.id, 0) + 1
        elif self.strategy == "usage-based-routing":
            minute = int(time.time() // 60)
            requests, tokens = self._used(d.id, minute)
            self._usage[d.id] = (minute, requests + 1, tokens)

    def finished(self, deployment_id: str, usage: Usage | None) -> None:
        """A call served by ``deployment_id`` ended (its tokens count for usage-based)."""
        if self.strategy == "least-busy":
            left = self._busy.get(deployment_id, 0) - 1
            if left > 0:
                self._busy[deployment_id] = left
            else:
                self._busy.pop(deployment_id, None)
        elif usage is not None:
            minute = int(time.time() // 60)
            requests, tokens = self._used(deployment_id, minute)
            self._usage[deployment_id] = (minute, requests, tokens + usage.total_tokens)

    def answered(self, d: Deployment, seconds: float) -> None:
        """``d`` answered after ``seconds`` (latency-based-routing learns from it)."""
        if self.strategy == "latency-based-routing":
            old = self._latency.get(d.index)
            self._latency[d.index] = (
                seconds if old is None else old + LATENCY_ALPHA * (seconds - old)
            )

    def failed(self, d: Deployment, seconds: float) -> None:
        """``d`` failed in a way worth retrying: past ``allowed_fails`` failures within a
        minute it cools down (when its group has another deployment to serve meanwhile)."""
        if self.strategy == "latency-based-routing":
            # a failure weighs like a slow answer, so a failing deployment loses its turn
            self.answered(d, max(seconds, 1.0) * 10)
        if not self._cooldowns or len(self._groups.get(d.model_name, ())) < 2:
            return
        now = time.monotonic()
        recent = [t for t in self._fails.get(d.index, ()) if now - t < FAIL_WINDOW_S]
        recent.append(now)
        cooldown = self.settings.cooldown_time
        if len(recent) > self.settings.allowed_fails and cooldown:
            self._cooling[d.index] = now + cooldown
            self._fails.pop(d.index, None)
        else:
            self._fails[d.index] = recent

    def cooling(self, d: Deployment) -> bool:
        """Whether ``d`` is cooling down right now."""
        until = self._cooling.get(d.index)
        return until is not None and until > time.monotonic()


def _lowest_order(group: list[Deployment]) -> list[Deployment]:
    orders = [d.params.order for d in group if d.params.order is not None]
    if not orders:
        return group
    low = min(orders)
    return [d for d in group if d.params.order == low]  # unordered ones serve after all


def _fallback_table(settings: RouterSettings) -> dict[str, dict[str, list[str]]]:
    table: dict[str, dict[str, list[str]]] = {}
    for kind in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
        merged: dict[str, list[str]] = {}
        for entry in getattr(settings, kind):
            for source, targets in entry.items():
                merged.setdefault(source, []).extend(t for t in targets if t != source)
        table[kind] = merged
    return table
