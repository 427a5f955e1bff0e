"""One gateway's keys: the hooks the core calls per request (answered from the cache), the
spend buffer, and the background tasks that keep the cache fresh and write spend in batches."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import structlog
from sqlalchemy.engine import Engine

import outcrop
from outcrop import Admission, CallEvent, GatewayAPI, Limit, OutcropError, Principal, Verdict

from . import db, store, tokens
from .cache import OURS, Cache, KeyState, TeamState, allows
from .content import stored_body
from .durations import now
from .settings import Settings

log = structlog.get_logger("outcrop.keys")

_KINDS = ("virtual_key", "sigv4_key")


def ours(principal: Principal) -> bool:
    return principal.kind in _KINDS and principal.id is not None and principal.data is OURS


def _refused(message: str, code: str) -> OutcropError:
    return OutcropError(message, 403, code=code, aws_type="AccessDeniedException")


#: How long a spend counter without a budget period lives in Redis after its last charge (the
#: recorded spend in the database holds the line after that).
_SPEND_TTL_S = 7 * 86400.0
#: The key fields that need shared counters when several workers serve.
RATE_FIELDS = (
    "rpm_limit",
    "tpm_limit",
    "max_parallel_requests",
    "model_rpm_limit",
    "model_tpm_limit",
)


def _may_call(key: KeyState, team: TeamState | None, names: tuple[str, ...]) -> bool:
    """The key's and its team's ``models`` each allow one of ``names`` (docs/keys.md)."""
    return outcrop.model_allowed(key.models, names) and (
        team is None or outcrop.model_allowed(team.models, names)
    )


def _spent_now(spend: float, reset_at: datetime | None, moment: datetime) -> float:
    """Recorded spend, 0 once its budget period ended (before the reset is written)."""
    return 0.0 if reset_at is not None and reset_at <= moment else spend


def _period(reset_at: datetime | None, moment: datetime) -> tuple[str, float]:
    """A budget period's counter suffix and how long its counter must live."""
    if reset_at is None:
        return "0", _SPEND_TTL_S
    if reset_at <= moment:  # the period ended; its reset is not written yet: a fresh counter
        return f"{int(reset_at.timestamp())}-next", 300.0
    return str(int(reset_at.timestamp())), (reset_at - moment).total_seconds() + 60


@dataclass(slots=True)
class _Open:
    """What an admitted call with limits holds until it ends (released by after_call)."""

    held: tuple[str, ...]
    tokens: tuple[str, ...]
    spend: tuple[tuple[str, float], ...]


class KeyService:
    """Registered on one gateway's plugin manager (so several gateways in a process, as in
    tests, each have their own database and cache)."""

    def __init__(self, gateway: GatewayAPI, settings: Settings) -> None:
        self.gateway = gateway
        self.settings = settings
        self.engine: Engine | None = None
        self.cache = Cache()
        self.box = tokens.SecretBox(settings.salt_key) if settings.salt_key else None
        self._secrets: dict[str, str] = {}  # decrypted SigV4 secrets, by access key id
        #: Spend rows not yet written, encoded for the driver (``store.SpendRows``).
        self.buffer: deque[tuple[Any, ...]] = deque()
        self.spend: store.SpendRows | None = None
        self.pending: dict[str, float] = {}  # spend buffered but not yet written, by key/team
        self.dropped = 0
        self.written = 0
        self._wake = asyncio.Event()
        self._urgent = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._provider_models = {d.id: d.params.model for d in gateway.deployments()}
        self._last_drop_log = 0.0
        self.counters = gateway.counters
        self._open: dict[str, _Open] = {}  # request id -> what its limits hold
        self._all_callers = settings.spend_logs_for == "all"
        # A refresh and a spend write never interleave: a budget check sees a batch's spend
        # either as pending or as recorded, never as both (nor as neither).
        self._store_lock = asyncio.Lock()
        self.writing = False  # a batch is being written (its spend is still pending)

    # -- lifecycle -------------------------------------------------------------------------------
    @outcrop.hookimpl
    def outcrop_startup(self, gateway: GatewayAPI) -> None:
        if gateway is not self.gateway:
            return
        self.engine = self.open()
        self.spend = store.spend_rows(self.engine)
        self.cache.apply(store.changes_since(self.engine, -1))
        self._refuse_unshared_workers()
        loop = asyncio.get_running_loop()
        self._wake, self._urgent = asyncio.Event(), asyncio.Event()
        self._store_lock = asyncio.Lock()
        self._tasks = [loop.create_task(self._poll()), loop.create_task(self._flush_loop())]
        log.info(
            "keys_ready",
            database=db.describe(self.settings.database_url),
            keys=len(self.cache.keys),
            teams=len(self.cache.teams),
        )

    def _refuse_unshared_workers(self) -> None:
        """``--workers N`` without Redis would multiply every key's rate limit by N."""
        if self.gateway.workers == 1 or self.counters.shared:
            return
        owners = [
            f"key {k.key_alias or k.token[:12]}"
            for k in self.cache.keys.values()
            if any(getattr(k, n) is not None for n in RATE_FIELDS)
        ]
        owners += [
            f"team {t.team_id}"
            for t in self.cache.teams.values()
            if any(getattr(t, n) is not None for n in RATE_FIELDS[:3])
        ]
        if owners:
            raise outcrop.ConfigError(
                [
                    f"--workers {self.gateway.workers}: {', '.join(owners[:5])}"
                    f"{' and more' if len(owners) > 5 else ''} have rate limits, which need "
                    "shared counters with several workers: set general_settings.redis_url "
                    "(or REDIS_URL)"
                ]
            )

    def open(self) -> Engine:
        """Connect and migrate (or check the schema with ``--no-migrate``); refuses to start
        with a clear message when the database is unusable."""
        url = self.settings.database_url
        try:
            engine = db.make_engine(url)
            if self.settings.migrate:
                db.upgrade(engine)
            else:
                have, want = db.current(engine), db.HEAD
                if have != want:
                    raise outcrop.ConfigError(
                        [
                            f"database {db.describe(url)}: schema revision {have or 'none'}, this "
                            f"version needs {want}: run `outcrop db upgrade` (--no-migrate is set)"
                        ]
                    )
        except outcrop.ConfigError:
            raise
        except Exception as exc:
            raise outcrop.ConfigError(
                [
                    f"database {db.describe(url)}: cannot open or migrate: {type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}"
                ]
            ) from None
        return engine

    @outcrop.hookimpl
    def outcrop_shutdown(self, gateway: GatewayAPI) -> Any:
        if gateway is not self.gateway:
            return None
        return self._shutdown()

    async def _shutdown(self) -> None:
        self._stopping = True
        for task in self._tasks[:1]:  # the poller
            task.cancel()
        self._wake.set()
        self._urgent.set()
        try:  # the flusher writes what is left, then ends
            await asyncio.wait_for(
                asyncio.shield(self._tasks[1]), self.settings.shutdown_flush_timeout
            )
        except Exception as exc:
            log.error("spend_flush_at_shutdown_failed", error=f"{type(exc).__name__}: {exc}")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.buffer:
            log.error(
                "spend_rows_lost_at_shutdown",
                rows=len(self.buffer),
                message="the database was unreachable while stopping",
            )
        if self.engine is not None:
            self.engine.dispose()

    # -- who is calling --------------------------------------------------------------------------
    @outcrop.hookimpl
    def outcrop_authenticate(self, token: str) -> Principal | None:
        key = self.cache.keys.get(tokens.hash_key(token))
        if key is None:
            return None
        self._check_usable(key)
        return key.principal

    @outcrop.hookimpl
    def outcrop_sigv4_secret(self, access_key_id: str) -> tuple[str, Principal] | None:
        key = self.cache.by_access_key.get(access_key_id)
        if key is None or not key.aws_secret_encrypted:
            return None
        secret = self._secrets.get(access_key_id)
        if secret is None:
            if self.box is None:
                log.error(
                    "sigv4_secret_unreadable",
                    access_key_id=access_key_id,
                    message="no salt key is set: issued SigV4 secrets cannot be decrypted",
                )
                return None
            try:
                secret = self.box.open(access_key_id, key.aws_secret_encrypted)
            except Exception:
                log.error(
                    "sigv4_secret_unreadable",
                    access_key_id=access_key_id,
                    message="the salt key does not decrypt this secret (was it changed?)",
                )
                return None
            self._secrets[access_key_id] = secret
        return secret, key.sigv4_principal

    def admin_principal(self, token: str) -> Principal | None:
        """The key ``token`` (its SHA-256 hex) as a caller, when it still exists, is usable
        (not blocked or expired, its team not blocked) and has ``admin: true``; else ``None``.
        Answered from the cache (the admin page checks its sessions with it)."""
        key = self.cache.keys.get(token)
        if key is None or not key.admin:
            return None
        try:
            self._check_usable(key)
        except OutcropError:
            return None
        return key.principal

    def _check_usable(self, key: KeyState) -> None:
        if key.blocked:
            raise _refused("this key is blocked", "key_blocked")
        if key.expires is not None and key.expires <= now():
            raise _refused(f"this key expired at {key.expires.isoformat()}", "key_expired")
        team = self.cache.teams.get(key.team_id) if key.team_id else None
        if team is not None and team.blocked:
            raise _refused(f"team {key.team_id} is blocked", "team_blocked")

    # -- may this call go ahead ------------------------------------------------------------------
    @outcrop.hookimpl
    def outcrop_admit(self, admission: Admission) -> Any:
        principal = admission.principal
        if not ours(principal):
            return None
        key = self.cache.keys.get(principal.id)  # type: ignore[arg-type]
        if key is None:
            raise _refused("this key was deleted", "key_deleted")
        self._check_usable(key)
        if key.allowed_routes and not allows(key.allowed_routes, (admission.path,)):
            raise _refused(
                f"this key may not call {admission.path} (allowed_routes: "
                f"{', '.join(key.allowed_routes)})",
                "route_not_allowed",
            )
        team = self.cache.teams.get(key.team_id) if key.team_id else None
        names: tuple[str, ...] = ()
        if key.models or key.model_rpm_limit or key.model_tpm_limit or (team and team.models):
            model = admission.model
            names = self.gateway.access_names(admission.requested or model, model, admission.group)
        if (key.models or (team and team.models)) and not _may_call(key, team, names):
            allowed = ", ".join(key.models or (team.models if team else ()))
            raise _refused(
                f"this key may not use model {admission.model!r} (allowed: {allowed})",
                "model_not_allowed",
            )
        if not key.limited and (team is None or not team.limited):
            return None  # no limit, no budget: nothing to count
        return self._check_limits(key, team, names, admission)

    async def _check_limits(
        self,
        key: KeyState,
        team: TeamState | None,
        names: tuple[str, ...],
        admission: Admission,
    ) -> None:
        """One counters round trip (none without Redis) for every limit and budget of the key
        and its team; the database is never read here."""
        moment = now()
        limits: list[Limit] = []
        spend: list[tuple[str, float]] = []
        owners: list[tuple[str, str, Any, str]] = [(f"key:{key.token}", "this key", key, key.token)]
        if team is not None and team.limited:
            ref = "team:" + team.team_id
            owners.append((ref, f"team {team.team_id}", team, ref))
        for ref, label, owner, pending in owners:
            if owner.rpm_limit is not None:
                limits.append(Limit(Limit.REQUESTS, ref, owner.rpm_limit, f"{label}'s rpm_limit"))
            if owner.tpm_limit is not None:
                limits.append(Limit(Limit.TOKENS, ref, owner.tpm_limit, f"{label}'s tpm_limit"))
            if owner.max_parallel_requests is not None:
                limits.append(
                    Limit(
                        Limit.PARALLEL,
                        ref,
                        owner.max_parallel_requests,
                        f"{label}'s max_parallel_requests",
                    )
                )
            if owner.max_budget is not None:
                recorded = _spent_now(owner.spend, owner.budget_reset_at, moment)
                recorded += self.pending.get(pending, 0.0)
                if recorded >= owner.max_budget:  # known here: no round trip
                    raise Verdict(
                        refused=Limit(Limit.SPEND, ref, owner.max_budget, label), used=recorded
                    ).error()
                suffix, ttl = _period(owner.budget_reset_at, moment)
                name = f"{ref}:{suffix}"
                limits.append(Limit(Limit.SPEND, name, owner.max_budget, label, ttl))
                spend.append((name, ttl))
        for field, kind in (("model_rpm_limit", Limit.REQUESTS), ("model_tpm_limit", Limit.TOKENS)):
            per_model = getattr(key, field)
            model = next((n for n in names if per_model and n in per_model), None)
            if model is not None:
                limits.append(
                    Limit(
                        kind,
                        f"key:{key.token}:model:{model}",
                        per_model[model],
                        f"this key's {field} for {model}",
                    )
                )
        if not limits:
            return
        verdict = await self.counters.admit(limits, admission.request_id)
        if verdict.refused is not None:
            raise verdict.error()
        admission.headers.update(verdict.headers)
        token_names = tuple(lim.name for lim in limits if lim.kind == Limit.TOKENS)
        if verdict.held or token_names or spend:
            self._open[admission.request_id] = _Open(verdict.held, token_names, tuple(spend))

    @outcrop.hookimpl
    def outcrop_allowed_models(
        self, principal: Principal, models: list[str], requested: str | None
    ) -> list[str] | None:
        if not ours(principal):
            return None
        key = self.cache.keys.get(principal.id)  # type: ignore[arg-type]
        if key is None:
            return []
        team = self.cache.teams.get(key.team_id) if key.team_id else None
        names = self.gateway.access_names
        return [m for m in models if _may_call(key, team, names(requested or m, m))]

    # -- spend -----------------------------------------------------------------------------------
    @outcrop.hookimpl
    def outcrop_report_gauges(self, report: Callable[[str, str, float], None]) -> None:
        report("spend_buffer_rows", "spend rows buffered, not yet written", len(self.buffer))

    @outcrop.hookimpl
    def outcrop_after_call(self, event: CallEvent) -> None:
        principal = event.principal
        if principal is None or self.spend is None:  # refused before we knew who it was
            return
        if principal.data is not OURS and not self._all_callers:
            return  # the master key and configured key pairs: no spend row unless asked for
        if self._open:
            held = self._open.pop(event.request_id, None)
            if held is not None:
                self._release(event, held)
        if len(self.buffer) >= self.settings.spend_buffer_rows:
            self.dropped += 1
            moment = time.monotonic()
            if moment - self._last_drop_log >= 1.0:
                self._last_drop_log = moment
                log.error(
                    "spend_buffer_full",
                    dropped_total=self.dropped,
                    buffered=len(self.buffer),
                    request_id=event.request_id,
                    message="the database is not keeping up or unreachable: spend rows "
                    "are being dropped",
                )
            return
        row = self._row(event, principal)
        self.buffer.append(self.spend.encode(row))  # per call: the writer thread only writes
        cost = row["spend"]
        key = self.cache.keys.get(row["api_key"]) if row["api_key"] else None
        if cost and row["api_key"]:
            self.pending[row["api_key"]] = self.pending.get(row["api_key"], 0.0) + cost
        if cost and row["team_id"]:
            team_ref = "team:" + row["team_id"]
            self.pending[team_ref] = self.pending.get(team_ref, 0.0) + cost
        if key is not None and (key.max_budget is not None or key.team_id):
            self._urgent.set()  # budgets read recorded spend: record it now
        self._wake.set()

    def _release(self, event: CallEvent, held: _Open) -> None:
        """The call ended: free its parallel slots, charge its tokens and cost to the counters."""
        usage = event.usage
        used = usage.prompt_tokens + usage.completion_tokens if usage else 0
        cost = float(event.cost or 0.0)
        self.counters.finish(
            event.request_id,
            held.held,
            [(name, used) for name in held.tokens] if used else (),
            [(name, cost, ttl) for name, ttl in held.spend] if cost else (),
        )

    def refuse_unshared_limits(self, body: bytes) -> None:
        """Several workers without shared counters would multiply every rate limit: refuse to
        set one (``--workers N`` without Redis). A malformed body is left to the operation."""
        if self.gateway.workers == 1 or self.counters.shared:
            return
        try:
            fields = msgspec.json.decode(body or b"{}")
        except msgspec.DecodeError:
            return
        named = [n for n in RATE_FIELDS if isinstance(fields, dict) and fields.get(n) is not None]
        if named:
            raise OutcropError(
                f"{', '.join(named)}: this gateway runs {self.gateway.workers} workers without "
                "shared counters, so the limit would multiply by the number of workers; set "
                "general_settings.redis_url (or REDIS_URL)",
                400,
                code="limits_need_redis",
            )

    def _row(self, event: CallEvent, principal: Principal) -> dict[str, Any]:
        end = datetime.now(UTC)
        usage = event.usage
        details = usage.prompt_tokens_details if usage else None
        virtual = ours(principal)
        return {
            "request_id": event.request_id,
            "start_time": end - timedelta(seconds=event.latency_s),
            "end_time": end,
            "api_key": principal.id if virtual else None,
            "key_alias": principal.alias if virtual else None,
            "auth": principal.kind,
            "team_id": principal.team_id if virtual else None,
            "model": (event.model or "")[:512],
            "deployment": event.deployment,
            "provider_model": self._provider_models.get(event.deployment or "", event.model),
            "surface": event.surface,
            "path": event.route[:1024],
            "status": event.status,
            "stream": event.stream,
            "prompt_tokens": usage.prompt_tokens if usage else None,
            "completion_tokens": usage.completion_tokens if usage else None,
            "total_tokens": usage.total_tokens if usage else None,
            # reported by the upstream or null: never invented
            "cache_read_tokens": details.cached_tokens if details else None,
            "cache_write_tokens": details.cache_creation_tokens if details else None,
            "spend": float(event.cost or 0.0),
            "latency_ms": round(event.latency_s * 1000, 3),
            "client_ip": event.client_ip,
            "user_agent": (event.user_agent or "")[:512] or None,
            "error": (event.error or "")[:1024] or None,
            "attempts": [
                {
                    "deployment": a.deployment,
                    "status": a.status,
                    "latency_ms": round(a.latency_s * 1000, 3),
                    "error": a.error,
                    "region": a.region,
                }
                for a in event.attempts
            ]
            or None,
            "messages": stored_body(event.request_body) if self.settings.store_prompts else None,
            "response": stored_body(event.response_body) if self.settings.store_prompts else None,
        }

    async def _flush_loop(self) -> None:
        backoff = 0.0
        failures_while_stopping = 0
        while True:
            await self._wake.wait()
            if self._stopping and not self.buffer:
                return
            if backoff:
                await asyncio.sleep(backoff)
            elif not self._urgent.is_set() and not self._stopping:
                try:  # batch up, unless a budgeted key is waiting
                    await asyncio.wait_for(self._urgent.wait(), self.settings.flush_interval)
                except TimeoutError:
                    pass
            self._wake.clear()
            self._urgent.clear()
            try:
                # The rows buffered now; those that arrive while they are written wait for the
                # next round (draining until empty wrote a batch of a few rows per write under
                # load: a thread hop, a transaction and a cache refresh every few calls).
                todo = len(self.buffer)
                while todo > 0 and self.buffer:
                    todo -= await self._flush_once(todo)
                backoff = 0.0
            except Exception as exc:  # rows stay buffered; written when the database is back
                backoff = min(max(backoff * 2, 0.25), 5.0)
                log.warning(
                    "spend_flush_failed",
                    error=f"{type(exc).__name__}: {exc}",
                    buffered=len(self.buffer),
                    retry_in_s=backoff,
                )
                self._wake.set()  # retry after the backoff, new rows or not
                if self._stopping:
                    failures_while_stopping += 1
                    if failures_while_stopping >= 3:
                        return
            if self._stopping:
                self._wake.set()

    async def _flush_once(self, most: int) -> int:
        """Write the oldest rows (at most ``most`` and ``flush_batch_rows``); how many."""
        assert self.engine is not None
        size = min(len(self.buffer), most, self.settings.flush_batch_rows)
        batch = store.SpendBatch.of(list(itertools.islice(self.buffer, size)))
        async with self._store_lock:
            self.writing = True
            try:
                write = asyncio.ensure_future(
                    asyncio.to_thread(store.write_spend, self.engine, batch)
                )
                try:
                    await asyncio.shield(write)
                except asyncio.CancelledError:  # the thread commits anyway: keep the buffer true
                    await write
                    self._written(batch)
                    raise
                try:  # our own totals, now recorded
                    changes = await asyncio.to_thread(
                        store.changes_since, self.engine, self.cache.seq
                    )
                except BaseException:  # written all the same; the cache catches up at the next poll
                    self._written(batch)
                    raise
                # one step on the loop: the cache gains the batch's spend as pending loses it
                self.cache.apply(changes)
                self._written(batch)
            finally:
                self.writing = False
        return size

    def _written(self, batch: store.SpendBatch) -> None:
        for _ in batch.rows:
            self.buffer.popleft()
        refs = [*batch.by_key.items(), *(("team:" + t, c) for t, c in batch.by_team.items())]
        for ref, cost in refs:
            left = self.pending.get(ref, 0.0) - cost
            if left <= 1e-12:
                self.pending.pop(ref, None)
            else:
                self.pending[ref] = left
        self.written += len(batch.rows)

    # -- cache freshness -------------------------------------------------------------------------
    async def refresh(self) -> None:
        assert self.engine is not None
        async with self._store_lock:  # not between a spend write and its bookkeeping
            changes = await asyncio.to_thread(store.changes_since, self.engine, self.cache.seq)
            self.cache.apply(changes)

    async def _poll(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.settings.poll_interval)
            try:
                due = self.cache.next_reset
                if due is not None and due <= now():
                    await asyncio.to_thread(store.reset_budgets, self.engine)
                await self.refresh()
                if failing:
                    log.info("database_reachable_again")
                failing = False
            except Exception as exc:  # keep serving from the cache
                if not failing:
                    log.warning(
                        "database_unreachable",
                        error=f"{type(exc).__name__}: {exc}",
                        message="serving keys from the cache; spend rows are buffered",
                    )
                failing = True

    def stats(self) -> dict[str, Any]:
        return {
            "buffered_rows": len(self.buffer),
            "dropped_rows": self.dropped,
            "written_rows": self.written,
            "keys": len(self.cache.keys),
            "teams": len(self.cache.teams),
            "change_seq": self.cache.seq,
            "limits_shared": self.counters.shared,
            "limit_checks_skipped": self.counters.skipped,
        }
