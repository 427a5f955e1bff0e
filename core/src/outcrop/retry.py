"""The one retry loop: every upstream call of the chat route, embeddings and the pass-through
goes through ``send_routed`` (``Gateway.send_routed``).

Retried: what may succeed the next time (429, 408, 500, 502, 503, 504, a connection error, a
timeout), on another deployment of the same ``model_name`` while there is one (at once), else
on the same one after a wait (``Retry-After`` when AWS sent it, else exponential backoff with
jitter, never less than ``retry_after``). Never retried: any other 4xx (it would fail again)
and anything once the answer's first byte went to the client (the loop ends when response
headers arrive). When the attempts of a ``model_name`` are spent, its ``fallbacks`` are tried;
a 400 saying the prompt is too long goes to ``context_window_fallbacks``, a content-filter
refusal to ``content_policy_fallbacks``. No attempt starts past the call's deadline
(``router_settings.timeout``).

The first attempt costs nothing extra: the loop proper starts only after a failure.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import re
import time
from collections.abc import Awaitable, Callable, Collection, Iterator, Sequence
from typing import TYPE_CHECKING

from .errors import OutcropError
from .logs import get_logger
from .types import Attempt
from .upstream import MAX_ERROR_BODY, UpstreamResponse

if TYPE_CHECKING:
    from .config import Deployment
    from .gateway import Gateway
    from .lifecycle import CallLifecycle
    from .routing import Router

log = get_logger("outcrop.retry")

#: Builds, signs and sends one attempt on a deployment (``None``: the call's raw target).
Attempter = Callable[["Deployment | None"], Awaitable[UpstreamResponse]]

#: Statuses worth another attempt: throttling, AWS-side failures and timeouts.
RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})
#: Error codes of the gateway's own upstream failures worth another attempt.
RETRYABLE_CODES = frozenset({"timeout", "upstream_unreachable"})
#: Exponential backoff: first wait, cap (seconds).
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 8.0

_CONTEXT_WINDOW = re.compile(
    r"too long|too many (input )?tokens|context (length|window)|maximum (context|input)|"
    r"input length|exceeds? the (model'?s? )?max",
    re.IGNORECASE,
)
_CONTENT_POLICY = re.compile(
    r"content (filter|policy|moderation)|guardrail|blocked by|responsible ai|unsafe content",
    re.IGNORECASE,
)


def error_class(status: int, error: str | None) -> str | None:
    """LiteLLM's name of a retryable failure's class (``retry_policy``, ``allowed_fails_policy``);
    ``None`` for a connection failure (no class of its own: ``num_retries`` applies)."""
    if status == 429:
        return "RateLimitError"
    if error == "timeout" or status in (408, 504):
        return "TimeoutError"
    if error == "upstream_unreachable":
        return None
    return "InternalServerError" if status >= 500 else None


def retryable(exc: OutcropError) -> bool:
    """Whether the gateway's own upstream failure (no answer from AWS) may be retried."""
    return exc.code in RETRYABLE_CODES


async def send_routed(
    gateway: Gateway,
    attempt: Attempter,
    *,
    model_name: str | None,
    deployment: Deployment | None,
    life: CallLifecycle | None = None,
    fallbacks: bool = True,
    track: bool = True,
    tags: Sequence[str] | None = None,
) -> tuple[UpstreamResponse, Deployment | None]:
    """Send a call's upstream request, retrying and failing over as configured.

    ``model_name`` is the group ``deployment`` was picked from (``None`` for a raw model
    string: retries go to the same target). ``fallbacks=False`` keeps the call within that
    group. Returns the answer that ends the call (a success, or the last failure for the
    caller to answer with) and the deployment that gave it; a gateway-side failure of the
    last attempt raises. Each attempt of a call that made several is in ``life.attempts``
    (a call sending several requests, embeddings, adds each one's there). ``track=False``: the
    router's per-call counts (least-busy, usage) come from another request of the same call.
    ``tags`` (the request's, with tag routing on) limit every later pick as they did the first.
    """
    router = gateway.router
    if deployment is not None:
        if router.usage_based and model_name is not None:  # else: exactly this deployment
            deployment = await by_usage(gateway, deployment, life, tags)
        elif deployment.model_name in router.capped:
            deployment = await claim(gateway, deployment, (), life, tags)
    if deployment is not None and router.tracking and life is not None and track:
        router.started(deployment)  # until the call ends (``life`` tells the router)
        life.routed = deployment.id
    started = time.perf_counter()
    try:
        response = await attempt(deployment)
    except OutcropError as exc:
        if not retryable(exc):
            raise
        return await _retry(
            gateway, attempt, model_name, deployment, life, fallbacks, exc, started, track, tags
        )
    status = response.status
    if status < 300:
        if deployment is not None and router.strategy == "latency-based-routing":
            router.answered(deployment, response.waited)
        return response, deployment
    if status in RETRYABLE or (
        status == 400 and fallbacks and model_name and router.has_error_fallbacks(model_name)
    ):
        return await _retry(
            gateway,
            attempt,
            model_name,
            deployment,
            life,
            fallbacks,
            response,
            started,
            track,
            tags,
        )
    return response, deployment


async def claim(
    gateway: Gateway,
    deployment: Deployment,
    tried: Collection[int],
    life: CallLifecycle | None,
    tags: Sequence[str] | None = None,
) -> Deployment:
    """Take a request on ``deployment``'s ``rpm``/``tpm`` caps, or, when it is at one, on another
    deployment of its ``model_name`` that is not (not tried yet, not cooling down): one counters
    round trip (``gateway.counters``, shared through Redis when configured). The one that took
    it serves the attempt; with none left the call gets 429 with ``Retry-After``."""
    router = gateway.router
    group = router.candidates(deployment.model_name)
    if router.tag_routed(deployment.model_name):
        group = router.tagged(group, tags)
    others = [
        d
        for d in group
        if d.index != deployment.index and d.index not in tried and not router.cooling(d)
    ]
    random.shuffle(others)
    others.sort(key=lambda d: d.params.order if d.params.order is not None else 1 << 30)
    order = [deployment, *others]
    index, wait = await gateway.counters.pick(
        [(f"deployment:{d.id}", d.params.rpm, d.params.tpm) for d in order]
    )
    if index < 0:
        seconds = max(round(wait), 1)
        raise OutcropError(
            f"every deployment of model {deployment.model_name!r} is at its rpm/tpm cap; "
            f"retry in {seconds}s",
            429,
            code="rate_limit_exceeded",
            aws_type="ThrottlingException",
            headers={"retry-after": str(seconds)},
        )
    return _claimed(router, deployment, order[index], life)


async def by_usage(
    gateway: Gateway,
    deployment: Deployment,
    life: CallLifecycle | None,
    tags: Sequence[str] | None = None,
) -> Deployment:
    """usage-based-routing: of the deployments ``deployment``'s group would choose among, the
    one with the fewest tokens (then requests) this window on the counters (shared through
    Redis when configured, so every gateway process sees the same usage) takes the request,
    under its ``rpm``/``tpm``; when all are at a cap, another of the group (``claim``)."""
    router = gateway.router
    pool = router.pool(deployment.model_name, (), tags) or [deployment]
    pool = random.sample(pool, len(pool))  # equals are served in turn
    index, _ = await gateway.counters.pick_least_used(
        [(f"deployment:{d.id}", d.params.rpm, d.params.tpm) for d in pool]
    )
    if index < 0:
        return await claim(gateway, deployment, [d.index for d in pool], life, tags)
    return _claimed(router, deployment, pool[index], life)


def _claimed(
    router: Router, deployment: Deployment, chosen: Deployment, life: CallLifecycle | None
) -> Deployment:
    """``chosen`` took the attempt's request on the counters: its tokens are charged there."""
    if life is not None:
        charged = chosen.params.tpm or router.usage_based
        life.charge_to = f"deployment:{chosen.id}" if charged else None
        if chosen is not deployment:
            _moved(chosen, life)
    return chosen


async def _retry(
    gateway: Gateway,
    attempt: Attempter,
    name: str | None,
    deployment: Deployment | None,
    life: CallLifecycle | None,
    fallbacks: bool,
    outcome: UpstreamResponse | OutcropError,
    started: float,
    track: bool = True,
    tags: Sequence[str] | None = None,
) -> tuple[UpstreamResponse, Deployment | None]:
    router = gateway.router
    settings = router.settings
    general = gateway.config.general_settings
    budget = settings.timeout or general.request_timeout or general.read_timeout
    deadline = (life.started if life is not None else started) + budget
    attempts: list[Attempt] = []
    if life is not None:
        if life.attempts is None:
            life.attempts = attempts
        else:  # another request of the same call retried too
            attempts = life.attempts
    request_id = life.request_id if life is not None else None
    tried: set[int] = set()
    retries = _retries(settings.num_retries, deployment)
    limits = router.retry_limits(name)
    used: dict[str, int] = {}  # error class -> its retries so far (those with a limit)
    original = name
    lists: dict[str, Iterator[str]] = {}  # kind -> the original name's fallbacks left
    fallbacks_left = settings.max_fallbacks
    counted = router.tracking and life is not None and track
    same = 0  # attempts repeated on the same deployment so far (the backoff's exponent)
    while True:
        latency = time.perf_counter() - started
        kind, status, error, wait = await _outcome(outcome)
        region = _region(deployment, life)
        attempts.append(
            Attempt(deployment.id if deployment else None, status, latency, error, region)
        )
        log.warning(
            "upstream_attempt_failed",
            request_id=request_id,
            attempt=len(attempts),
            deployment=deployment.id if deployment else None,
            region=region,
            status=status,
            error=error,
            latency_ms=round(latency * 1000, 1),
        )
        cls = error_class(status, error) if kind == "retry" else None
        if deployment is not None:
            tried.add(deployment.index)
            if kind == "retry":
                router.failed(deployment, latency, cls)
            if counted:
                router.finished(deployment.id, None)
        following: Deployment | None = None
        delay = 0.0
        go = False
        limited = cls if cls is not None and cls in limits else None  # retry_policy's
        if kind == "retry" and (
            retries > 0 if limited is None else used.get(limited, 0) < limits[limited]
        ):
            if limited is None:
                retries -= 1
            else:
                used[limited] = used.get(limited, 0) + 1
            go = True
            other = router.pick(name, tried, tags) if name else None
            if other is not None and other.index not in tried:
                following = other  # another deployment: at once
            else:
                following = deployment  # the same target: wait before asking again
                same += 1
                delay = _backoff(same, wait, settings.retry_after)
        if not go and kind is not None and fallbacks and original and fallbacks_left > 0:
            table = "fallbacks" if kind == "retry" else kind
            names = lists.setdefault(table, iter(router.fallbacks(original, table)))
            for fallback in names:
                following = router.pick(fallback, tags=tags)
                if following is not None:
                    go, name, same = True, fallback, 0
                    fallbacks_left -= 1
                    retries = _retries(settings.num_retries, following)
                    limits, used = router.retry_limits(name), {}
                    break
        if not go or time.perf_counter() + delay > deadline:
            return _give_up(outcome, deployment, life, counted)
        if isinstance(outcome, UpstreamResponse):
            outcome.close()
        if delay:
            await asyncio.sleep(delay)
        deployment = following
        if deployment is not None and (
            router.usage_based or deployment.model_name in router.capped
        ):
            deployment = await claim(gateway, deployment, tried, life, tags)
        if deployment is not None and counted:
            router.started(deployment)
            life.routed = deployment.id  # type: ignore[union-attr]
        started = time.perf_counter()
        try:
            outcome = await attempt(deployment)
        except OutcropError as exc:
            if not retryable(exc):
                _note(attempts, deployment, exc.status, started, exc.code, life)
                _moved(deployment, life)
                raise
            outcome = exc
            continue
        status = outcome.status
        if status < 300 or not (
            status in RETRYABLE
            or (status == 400 and fallbacks and router.has_error_fallbacks(name or ""))
        ):
            _note(attempts, deployment, status, started, _aws_error(outcome), life)
            if deployment is not None and status < 300:
                router.answered(deployment, outcome.waited)
            _moved(deployment, life)
            return outcome, deployment


async def _outcome(
    outcome: UpstreamResponse | OutcropError,
) -> tuple[str | None, int, str | None, float | None]:
    """``(kind, status, error, Retry-After seconds)``; ``kind`` is ``retry``,
    ``context_window_fallbacks``, ``content_policy_fallbacks`` or ``None`` (give up)."""
    if isinstance(outcome, OutcropError):
        return "retry", outcome.status, outcome.code or "error", None
    status = outcome.status
    error = _aws_error(outcome)
    if status in RETRYABLE:
        return "retry", status, error, _retry_after(outcome.headers.get("retry-after"))
    # a 400 of a model_name with error fallbacks: its body says whether one applies
    body = await outcome.read_up_to(MAX_ERROR_BODY)
    outcome.unread(body)
    text = body.decode("utf-8", "replace")
    kind: str | None = None
    if _CONTEXT_WINDOW.search(text):
        kind = "context_window_fallbacks"
    elif _CONTENT_POLICY.search(text):
        kind = "content_policy_fallbacks"
    return kind, status, error, None


def _aws_error(response: UpstreamResponse) -> str | None:
    if response.status < 300:
        return None
    found = response.headers.get("x-amzn-errortype")
    return found.split(":")[0] if found else str(response.status)


def _retries(default: int, deployment: Deployment | None) -> int:
    if deployment is not None and deployment.params.num_retries is not None:
        return deployment.params.num_retries
    return default


def _backoff(n: int, retry_after: float | None, least: float) -> float:
    """Seconds before the ``n``-th repeat on one target: AWS's ``Retry-After`` when given,
    else exponential with jitter; never less than ``least`` (``retry_after``)."""
    if retry_after is not None:
        return max(retry_after, least)
    wait: float = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0 ** (n - 1))
    return max(least, wait * random.uniform(0.5, 1.0))


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), ``None`` when absent or bad."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(seconds, 0.0) if seconds == seconds else None  # NaN is not a wait


def _region(deployment: Deployment | None, life: CallLifecycle | None) -> str | None:
    if deployment is not None and deployment.params.aws_region_name:
        return deployment.params.aws_region_name
    return life.region if life is not None else None


def _note(
    attempts: list[Attempt],
    deployment: Deployment | None,
    status: int,
    started: float,
    error: str | None,
    life: CallLifecycle | None,
) -> None:
    latency = time.perf_counter() - started
    region = _region(deployment, life)
    attempts.append(Attempt(deployment.id if deployment else None, status, latency, error, region))
    log.info(
        "upstream_attempt",
        request_id=life.request_id if life is not None else None,
        attempt=len(attempts),
        deployment=deployment.id if deployment else None,
        region=region,
        status=status,
        error=error,
        latency_ms=round(latency * 1000, 1),
    )


def _moved(deployment: Deployment | None, life: CallLifecycle | None) -> None:
    """The call is now served by ``deployment``: its event says so."""
    if life is not None and deployment is not None:
        life.deployment = deployment.id
        if deployment.params.aws_region_name:
            life.region = deployment.params.aws_region_name


def _give_up(
    outcome: UpstreamResponse | OutcropError,
    deployment: Deployment | None,
    life: CallLifecycle | None,
    counted: bool,
) -> tuple[UpstreamResponse, Deployment | None]:
    _moved(deployment, life)
    if life is not None and counted:
        life.routed = None  # the router heard of this attempt's end already
    if isinstance(outcome, OutcropError):
        raise outcome
    return outcome, deployment
