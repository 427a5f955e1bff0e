"""The management API (LiteLLM's paths and bodies): keys, teams, spend. Master key or a key
with ``admin: true``; errors are OpenAI-shaped JSON like every OpenAI-side route."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import msgspec
import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from outcrop import ClientDisconnected, OutcropError, Principal, read_body

from . import manage, store, tokens
from .manage import ManageError
from .service import KeyService, ours

log = structlog.get_logger("outcrop.keys")
_JSON = "application/json"
Handler = Callable[[Request, Principal, bytes], Awaitable[Any]]
MAX_BODY = 1024 * 1024  # management bodies are small: a larger one is refused, not buffered


def _json(data: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(data), status_code=status, media_type=_JSON)


def _error(exc: OutcropError) -> Response:
    return Response(exc.openai_body(), status_code=exc.status, media_type=_JSON)


#: The operations whose body may set a rate limit.
_SETS_LIMITS = (manage.generate_key, manage.update_key, manage.new_team, manage.update_team)


class ManagementApi:
    def __init__(self, service: KeyService) -> None:
        self.service = service

    @property
    def engine(self) -> Any:
        if self.service.engine is None:
            raise OutcropError("the key store is not open yet", 503)
        return self.service.engine

    def routes(self) -> list[BaseRoute]:
        post, get = ["POST"], ["GET"]
        table: list[tuple[str, Handler, list[str], bool]] = [
            ("/key/generate", self.key_generate, post, True),
            ("/key/update", self.key_update, post, True),
            ("/key/delete", self.key_delete, post, True),
            ("/key/regenerate", self.key_regenerate, post, True),
            ("/key/{key}/regenerate", self.key_regenerate, post, True),
            ("/key/info", self.key_info, get, False),
            ("/key/list", self.key_list, get, True),
            ("/key/block", partial(self.key_block, blocked=True), post, True),
            ("/key/unblock", partial(self.key_block, blocked=False), post, True),
            ("/team/new", self.team_new, post, True),
            ("/team/update", self.team_update, post, True),
            ("/team/delete", self.team_delete, post, True),
            ("/team/info", self.team_info, get, True),
            ("/team/list", self.team_list, get, True),
            ("/spend/logs", self.spend_logs, get, True),
            ("/global/spend/report", self.spend_report, get, True),
            ("/key/health", self.health, get, True),
        ]
        return [
            Route(path, self._endpoint(fn, admin), methods=methods)
            for path, fn, methods, admin in table
        ]

    def _endpoint(self, fn: Handler, admin: bool) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                principal = self.service.gateway.authenticate(request.headers)
                if admin and not principal.admin:
                    raise OutcropError(
                        "the management API needs the master key or a key with admin: true",
                        403,
                        code="not_admin",
                    )
                body = await read_body(
                    request.receive,
                    limit=MAX_BODY,
                    headers=request.scope["headers"],
                    timeout=self.service.gateway.settings.body_timeout,
                )
                return _json(await fn(request, principal, body))
            except ClientDisconnected:
                return Response(status_code=499)  # nobody is left to read an answer
            except ManageError as exc:
                return _error(OutcropError(exc.message, exc.status))
            except OutcropError as exc:
                return _error(exc)
            except Exception as exc:  # the database went away mid-request, a bug: answer anyway
                log.exception("management_failed", path=request.url.path)
                return _error(OutcropError(f"the key store failed: {type(exc).__name__}", 503))

        return endpoint

    async def _write(self, op: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if op in _SETS_LIMITS and isinstance(args[0], bytes):
            self.service.refuse_unshared_limits(args[0])
        result = await asyncio.to_thread(op, self.engine, *args, **kwargs)
        await self.service.refresh()  # this instance uses the change at once; others within a poll
        return result

    # -- keys ------------------------------------------------------------------------------------
    async def key_generate(self, request: Request, principal: Principal, body: bytes) -> Any:
        return await self._write(
            manage.generate_key,
            body,
            salt_key=self.service.settings.salt_key,
            created_by=principal.id or principal.kind,
        )

    async def key_update(self, request: Request, principal: Principal, body: bytes) -> Any:
        return await self._write(manage.update_key, body)

    async def key_delete(self, request: Request, principal: Principal, body: bytes) -> Any:
        return await self._write(manage.delete_keys, body)

    async def key_regenerate(self, request: Request, principal: Principal, body: bytes) -> Any:
        payload: bytes | dict[str, Any] = body
        if "key" in request.path_params:
            payload = {**manage.json_object(body), "key": request.path_params["key"]}
        return await self._write(
            manage.regenerate_key, payload, salt_key=self.service.settings.salt_key
        )

    async def key_info(self, request: Request, principal: Principal, body: bytes) -> Any:
        key = request.query_params.get("key")
        if key is None:  # a key may always look at itself
            if not ours(principal):
                raise ManageError("key: required query parameter (the key or its hash)")
            key = principal.id or ""
        elif not principal.admin and tokens.token_ref(key) != principal.id:
            raise OutcropError(
                "only the master key or an admin key may look at other keys", 403, code="not_admin"
            )
        info = await asyncio.to_thread(manage.key_info, self.engine, key)
        info["info"]["spend"] += self.service.pending.get(info["key"], 0.0)
        return info

    async def key_list(self, request: Request, principal: Principal, body: bytes) -> Any:
        q = request.query_params
        page, size = _int(q, "page", 1, 1, 10**9), _int(q, "size", 50, 1, 1000)
        full = q.get("return_full_object", "false").lower() == "true"
        return await asyncio.to_thread(
            manage.list_keys,
            self.engine,
            team_id=q.get("team_id"),
            key_alias=q.get("key_alias"),
            page=page,
            size=size,
            full=full,
        )

    async def key_block(
        self, request: Request, principal: Principal, body: bytes, *, blocked: bool
    ) -> Any:
        raw = manage.json_object(body)
        return await self._write(manage.set_blocked, raw.get("key"), blocked)

    # -- teams -----------------------------------------------------------------------------------
    async def team_new(self, request: Request, principal: Principal, body: bytes) -> Any:
        return await self._write(manage.new_team, body)

    async def team_update(self, request: Request, principal: Principal, body: bytes) -> Any:
        return await self._write(manage.update_team, body)

    async def team_delete(self, request: Request, principal: Principal, body: bytes) -> Any:
        return await self._write(manage.delete_teams, body)

    async def team_info(self, request: Request, principal: Principal, body: bytes) -> Any:
        team_id = request.query_params.get("team_id")
        if not team_id:
            raise ManageError("team_id: required query parameter")
        return await asyncio.to_thread(manage.team_info, self.engine, team_id)

    async def team_list(self, request: Request, principal: Principal, body: bytes) -> Any:
        return await asyncio.to_thread(manage.list_teams, self.engine)

    # -- spend -----------------------------------------------------------------------------------
    async def spend_logs(self, request: Request, principal: Principal, body: bytes) -> Any:
        q = request.query_params
        key = q.get("api_key")
        rows, total = await asyncio.to_thread(
            store.spend_logs_query,
            self.engine,
            api_key=tokens.token_ref(key) if key else None,
            team_id=q.get("team_id"),
            model=q.get("model"),
            request_id=q.get("request_id"),
            start=_date(q, "start_date"),
            end=_date(q, "end_date", end=True),
            page=_int(q, "page", 1, 1, 10**9),
            size=_int(q, "page_size", 100, 1, 1000),
        )
        if "page" not in q and "page_size" not in q:
            return rows  # LiteLLM's plain list
        return {
            "data": rows,
            "total": total,
            "page": _int(q, "page", 1, 1, 10**9),
            "page_size": _int(q, "page_size", 100, 1, 1000),
        }

    async def spend_report(self, request: Request, principal: Principal, body: bytes) -> Any:
        q = request.query_params
        group_by = q.get("group_by", "team")
        if group_by not in ("team", "api_key", "model"):
            raise ManageError("group_by: expected team, api_key or model")
        rows = await asyncio.to_thread(
            store.spend_report,
            self.engine,
            group_by=group_by,
            start=_date(q, "start_date"),
            end=_date(q, "end_date", end=True),
        )
        return _report(rows, group_by)

    async def health(self, request: Request, principal: Principal, body: bytes) -> Any:
        return self.service.stats()


def _report(rows: list[tuple[Any, ...]], group_by: str) -> list[dict[str, Any]]:
    """LiteLLM's shape: one entry per day, each group with its total and per-model breakdown."""
    field = {"team": "teams", "api_key": "api_keys", "model": "models"}[group_by]
    name = {"team": "team_name", "api_key": "api_key", "model": "model"}[group_by]
    days: dict[str, dict[str, dict[str, Any]]] = {}
    for day, group, model, spend, total_tokens, requests in rows:
        groups = days.setdefault(str(day), {})
        entry = groups.setdefault(str(group), {name: group, "total_spend": 0.0, "metadata": []})
        entry["total_spend"] += float(spend or 0.0)
        entry["metadata"].append(
            {
                "model": model,
                "spend": float(spend or 0.0),
                "total_tokens": int(total_tokens or 0),
                "requests": int(requests),
            }
        )
    return [
        {"group_by_day": day, field: list(groups.values())} for day, groups in sorted(days.items())
    ]


def _int(q: Any, name: str, default: int, low: int, high: int) -> int:
    raw = q.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ManageError(f"{name}: expected an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ManageError(f"{name}: must be between {low} and {high}")
    return value


def _date(q: Any, name: str, *, end: bool = False) -> datetime | None:
    """``YYYY-MM-DD`` (an end date includes its whole day) or an ISO date-time."""
    raw = q.get(name)
    if not raw:
        return None
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) if end else moment
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ManageError(f"{name}: expected YYYY-MM-DD or an ISO date-time, got {raw!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
