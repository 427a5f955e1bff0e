"""The router: which deployment of a ``model_name`` serves the next attempt.

Per worker and in memory (like LiteLLM without Redis). ``pick`` honours ``order`` (the lowest
available tier serves), cooldowns (a deployment past ``allowed_fails`` retryable failures in a
minute is skipped for ``cooldown_time`` seconds while its group has another) and the routing
strategy. With ``simple-shuffle``, no cooldown running and one tier, ``pick`` is what it always
was: a weighted random choice, with no bookkeeping at all.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .balance import choose, cumulative_weights, weighted_choice
from .config import Deployment, RouterSettings, tag_filtering
from .lifecycle import current_call
from .wire import Usage

if TYPE_CHECKING:
    from .types import Principal

#: Seconds over which failures count towards ``allowed_fails`` (LiteLLM's minute).
FAIL_WINDOW_S = 60.0
#: The tag of deployments serving requests without tags (or with tags nobody has).
DEFAULT_TAG = "default"
#: LiteLLM's header for request tags (comma-separated).
TAGS_HEADER = "x-litellm-tags"
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
        self.capped = {name for name, group in self._groups.items() if _capped(group)}
        #: The running sums of the weights of each name's first tier (simple-shuffle's choice).
        self._cumulative = {name: cumulative_weights(first) for name, first in self._first.items()}
        aliases = settings.aliases()
        for alias, target in aliases.items():  # an alias shares its model_name's deployments
            if target.model in self._groups:
                self._groups[alias] = self._groups[target.model]
                self._first[alias] = self._first[target.model]
                self._cumulative[alias] = self._cumulative[target.model]
                if target.model in self.capped:
                    self.capped.add(alias)
        #: alias -> the model_name it names (``model_group_alias``).
        self._aliases = {alias: target.model for alias, target in aliases.items()}
        #: The model_names and aliases (groups added later, for wildcards, are not).
        self._names = list(self._groups)
        self.configured = frozenset(self._names)
        #: What ``GET /v1/models`` lists: all of those but hidden aliases.
        self.listed = [n for n in self._names if not (n in aliases and aliases[n].hidden)]
        #: The names whose deployments tag routing chooses among (``config.tag_filtering``).
        self._tag_names = {n for n, group in self._groups.items() if self._tag_routed(group)}
        self._tags = bool(self._tag_names)
        self._match_any = settings.tag_filtering_match_any
        #: Whether a deployment has ``tag_regex`` (then the caller's User-Agent is looked at).
        self._regex = any(d.params.tag_regex for d in deployments)
        self._patterns: dict[str, re.Pattern[str]] = {}
        self.strategy = settings.routing_strategy
        #: Whether calls report their end (``finished``): least-busy counts calls in flight.
        self.tracking = self.strategy == "least-busy"
        #: usage-based-routing: each attempt takes its request on the shared counters, on the
        #: least used deployment (``retry.by_usage``); tokens are charged when the call ends.
        self.usage_based = self.strategy == "usage-based-routing"
        self._simple = self.strategy == "simple-shuffle"
        self._cooldowns = not settings.disable_cooldowns
        self._cooling: dict[int, float] = {}  # deployment index -> monotonic end of cooldown
        #: (index, error class counted apart or None) -> recent failure times
        self._fails: dict[tuple[int, str | None], list[float]] = {}
        self._busy: dict[str, int] = {}  # deployment id -> calls in flight
        self._latency: dict[int, float] = {}  # index -> average seconds to the answer
        args = settings.routing_strategy_args
        self._buffer = float(args.get("lowest_latency_buffer") or 0.0)
        self._fallbacks = _fallback_table(settings)
        policy = settings.retry_policy
        self._retry_limits = policy.limits() if policy is not None else {}
        self._group_retry_limits = {
            name: {**self._retry_limits, **p.limits()}
            for name, p in settings.model_group_retry_policy.items()
        }
        fails = settings.allowed_fails_policy
        #: Error class -> failures a deployment may have in a minute before its cooldown.
        self._allowed_fails = fails.limits() if fails is not None else {}

    # -- names ---------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return list(self._names)

    def alias_target(self, name: str) -> str | None:
        """The ``model_name`` the ``model_group_alias`` ``name`` names (``None``: no alias)."""
        return self._aliases.get(name)

    def add_group(self, name: str, deployments: list[Deployment]) -> None:
        """Route ``name`` to ``deployments`` (the derived deployments of a wildcard)."""
        self._groups[name] = deployments
        self._first[name] = first = _lowest_order(deployments)
        self._cumulative[name] = cumulative_weights(first)
        if _capped(deployments):
            self.capped.add(name)
        if self._tag_routed(deployments):
            self._tag_names.add(name)
            self._tags = True
            self._regex = self._regex or any(d.params.tag_regex for d in deployments)

    def drop_group(self, name: str) -> None:
        """Forget a group ``add_group`` added, and what was learnt about its deployments."""
        for d in self._groups.pop(name, ()):
            self._cooling.pop(d.index, None)
            self._latency.pop(d.index, None)
            for cls in (None, *self._allowed_fails):
                self._fails.pop((d.index, cls), None)
        self._first.pop(name, None)
        self._cumulative.pop(name, None)
        self.capped.discard(name)
        self._tag_names.discard(name)
        self._tags = bool(self._tag_names)

    def candidates(self, model_name: str) -> list[Deployment]:
        return self._groups.get(model_name, [])

    def fallbacks(self, model_name: str, kind: str = "fallbacks") -> list[str]:
        """The model_names to try after ``model_name`` failed (``kind``: ``fallbacks``,
        ``context_window_fallbacks`` or ``content_policy_fallbacks``)."""
        model_name = self._aliases.get(model_name, model_name)
        found = self._fallbacks[kind].get(model_name)
        if found is None and kind == "fallbacks":
            return [n for n in self.settings.default_fallbacks if n != model_name]
        return found or []

    def retry_limits(self, model_name: str | None) -> dict[str, int]:
        """Error class -> retries (``retry_policy``, ``model_group_retry_policy``) for calls of
        ``model_name``; a class not in it shares ``num_retries``."""
        if model_name is None:
            return self._retry_limits
        model_name = self._aliases.get(model_name, model_name)
        return self._group_retry_limits.get(model_name, self._retry_limits)

    def has_error_fallbacks(self, model_name: str) -> bool:
        """Whether a 400 of ``model_name`` may go to a context-window or content-policy
        fallback (its error body is then read before the answer is decided)."""
        model_name = self._aliases.get(model_name, model_name)
        return model_name in self._fallbacks["context_window_fallbacks"] or (
            model_name in self._fallbacks["content_policy_fallbacks"]
        )

    # -- picking -------------------------------------------------------------------------------
    def pick(
        self, model_name: str, exclude: Collection[int] = (), tags: Sequence[str] | None = None
    ) -> Deployment | None:
        """A deployment of ``model_name`` (``None`` when it has none). ``exclude`` are indexes
        of deployments that already failed this call: another is preferred while there is one.
        With tag routing on, only deployments ``tags`` select serve (``None`` when none does).
        """
        first = self._first.get(model_name)
        if first is None:
            return None
        if self._simple and not self._cooling and not exclude and not self._tags:
            return choose(first, self._cumulative.get(model_name))
        pool = self.pool(model_name, exclude, tags)
        return self._choose(pool) if pool else None

    def pool(
        self, model_name: str, exclude: Collection[int] = (), tags: Sequence[str] | None = None
    ) -> list[Deployment]:
        """The deployments of ``model_name`` a strategy chooses among: those ``tags`` select,
        of the lowest ``order`` among those not cooling down and not in ``exclude``."""
        group = self._groups.get(model_name, [])
        if self._tags and model_name in self._tag_names:
            group = self.tagged(group, tags)
            if not group:
                return []
        now = time.monotonic()
        if self._cooling:
            for index, until in list(self._cooling.items()):
                if until <= now:
                    del self._cooling[index]
        fresh = [d for d in group if d.index not in exclude]
        available = [d for d in fresh if d.index not in self._cooling]
        # every deployment cools down or failed already: the one the least recently
        # failed still beats refusing the call
        return _lowest_order(available or fresh or group)

    def tagged(self, group: list[Deployment], tags: Sequence[str] | None) -> list[Deployment]:
        """LiteLLM's tag routing among ``group`` (empty: nothing serves the request).

        A request's tag ``!x`` excludes the deployments tagged ``x`` and ``&x`` keeps only
        those tagged ``x``; its other tags (and, for deployments with ``tag_regex``, its
        ``User-Agent: ...`` line) choose: the deployments that match (any of the tags, or all
        with ``tag_filtering_match_any: false``), else those tagged ``default``; none when no
        deployment is tagged ``default``, or when a deployment of the group carries one of the
        tags but the ``!``/``&`` tags or match-all left it out. A request that only excludes or
        requires gets what is left of the ``default`` deployments (else of all), or of those
        it requires; one without tags the ``default`` deployments, else all of them."""
        required, positive, excluded = _split_tags(tags or ())
        user_agent = _user_agent() if self._regex else None
        allowed = [d for d in group if excluded.isdisjoint(d.params.tags)] if excluded else group
        if required:
            allowed = [d for d in allowed if required.issubset(d.params.tags)]
        by_agent = (
            user_agent is not None and not required and any(d.params.tag_regex for d in allowed)
        )
        if not positive and not by_agent:
            if required:
                return allowed
            defaults = [d for d in group if DEFAULT_TAG in d.params.tags] or group
            if excluded:
                return [d for d in defaults if excluded.isdisjoint(d.params.tags)]
            return defaults
        if by_agent:
            matched = [d for d in allowed if self._matches(d, positive, user_agent)]
        elif self._match_any:
            matched = [d for d in allowed if not positive.isdisjoint(d.params.tags)]
        else:
            matched = [d for d in allowed if positive.issubset(d.params.tags)]
        if matched:
            return matched
        if any(not positive.isdisjoint(d.params.tags) for d in group):
            return []  # a tag this name knows, that no deployment serves with the others
        return [d for d in allowed if DEFAULT_TAG in d.params.tags]

    def _matches(self, d: Deployment, tags: frozenset[str], user_agent: str | None) -> bool:
        own = d.params.tags
        if own and tags:
            if self._match_any and not tags.isdisjoint(own):
                return True
            if not self._match_any and tags.issubset(own):
                return True
        if not d.params.tag_regex or user_agent is None or (own and not self._match_any):
            return False  # with match-all, a deployment's regex never overrides its tags
        line = f"User-Agent: {user_agent}"
        return any(self._pattern(p).search(line) for p in d.params.tag_regex)

    def _pattern(self, pattern: str) -> re.Pattern[str]:
        found = self._patterns.get(pattern)
        if found is None:
            found = self._patterns[pattern] = re.compile(pattern)  # checked at load time
        return found

    def tag_routed(self, model_name: str) -> bool:
        """Whether tag routing chooses among the deployments of ``model_name``."""
        return model_name in self._tag_names

    def _tag_routed(self, group: list[Deployment]) -> bool:
        if not any(d.params.tags or d.params.tag_regex for d in group):
            return False
        return tag_filtering(group, self.settings.enable_tag_filtering)

    @property
    def tag_routing(self) -> bool:
        """Whether tag routing chooses among the deployments of some name."""
        return self._tags

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
        # usage-based-routing: the counters choose (``retry.by_usage``); this is a first guess
        return weighted_choice(pool)

    # -- learning ------------------------------------------------------------------------------
    def started(self, d: Deployment) -> None:
        """An attempt on ``d`` starts (least-busy counts it until ``finished``)."""
        self._busy[d.id] = self._busy.get(d.id, 0) + 1

    def finished(self, deployment_id: str, usage: Usage | None) -> None:
        """A call served by ``deployment_id`` ended (least-busy)."""
        left = self._busy.get(deployment_id, 0) - 1
        if left > 0:
            self._busy[deployment_id] = left
        else:
            self._busy.pop(deployment_id, None)

    def answered(self, d: Deployment, seconds: float) -> None:
        """``d`` answered after ``seconds`` (latency-based-routing learns from it)."""
        if self.strategy == "latency-based-routing":
            old = self._latency.get(d.index)
            self._latency[d.index] = (
                seconds if old is None else old + LATENCY_ALPHA * (seconds - old)
            )

    def failed(self, d: Deployment, seconds: float, error_class: str | None = None) -> None:
        """``d`` failed in a way worth retrying: past ``allowed_fails`` failures within a
        minute it cools down (when its group has another deployment to serve meanwhile).
        With ``allowed_fails_policy`` setting ``error_class``'s, failures of that class are
        counted apart against it."""
        if self.strategy == "latency-based-routing":
            # a failure weighs like a slow answer, so a failing deployment loses its turn
            self.answered(d, max(seconds, 1.0) * 10)
        if not self._cooldowns or len(self._groups.get(d.model_name, ())) < 2:
            return
        allowed = self._allowed_fails.get(error_class) if error_class else None
        key: tuple[int, str | None] = (d.index, error_class if allowed is not None else None)
        now = time.monotonic()
        recent = [t for t in self._fails.get(key, ()) if now - t < FAIL_WINDOW_S]
        recent.append(now)
        cooldown = self.settings.cooldown_time
        limit = self.settings.allowed_fails if allowed is None else allowed
        if len(recent) > limit and cooldown:
            self._cooling[d.index] = now + cooldown
            for cls in (None, *self._allowed_fails):
                self._fails.pop((d.index, cls), None)
        else:
            self._fails[key] = recent

    def cooling(self, d: Deployment) -> bool:
        """Whether ``d`` is cooling down right now."""
        until = self._cooling.get(d.index)
        return until is not None and until > time.monotonic()


def _capped(group: list[Deployment]) -> bool:
    return any(d.params.rpm or d.params.tpm for d in group)


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


_MARKS = ("&", "!")
_NONE: frozenset[str] = frozenset()


def _split_tags(tags: Sequence[str]) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """``(required, chosen, excluded)``: LiteLLM's ``&x``, plain and ``!x`` request tags."""
    if not any(t[:1] in _MARKS for t in tags):  # plain tags (nearly always)
        return _NONE, frozenset(tags), _NONE
    required = frozenset(t[1:] for t in tags if t.startswith("&") and len(t) > 1)
    excluded = frozenset(t[1:] for t in tags if t.startswith("!") and len(t) > 1)
    chosen = frozenset(t for t in tags if not t.startswith(("&", "!")))
    return required, chosen, excluded


def _user_agent() -> str | None:
    """The running HTTP call's User-Agent (``tag_regex`` matches it), ``None`` without one."""
    life = current_call.get()
    return (life.user_agent or None) if life is not None else None


def request_tags(
    provider_params: dict[str, Any],
    metadata: Mapping[str, Any] | None,
    headers: Mapping[str, str],
    principal: Principal | None = None,
) -> tuple[str, ...] | None:
    """A request's tags (LiteLLM's places: the body's ``tags``, ``metadata.tags``, the
    ``x-litellm-tags`` header), then the caller's own (``principal.tags``: a virtual key's,
    which every call of the key carries), ``None`` when there are none. ``tags`` is taken out
    of ``provider_params``: it is for the gateway, never for the provider."""
    found: list[str] = []
    for value in (provider_params.pop("tags", None), (metadata or {}).get("tags")):
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, list):
            found.extend(str(v) for v in value)
    header = headers.get(TAGS_HEADER)
    if header:
        found.extend(t.strip() for t in header.split(",") if t.strip())
    if principal is not None:
        found.extend(principal.tags)
    return tuple(dict.fromkeys(found)) or None
