"""Spend (charts, tables, CSV), calls (the latest spend rows and their details) and models
(the configured deployments and their recent error rate)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.responses import Response

from outcrop import GatewayAPI, OutcropError
from outcrop_keys import tokens
from outcrop_keys.service import KeyService

from . import charts, queries
from .web import Ctx, Web, int_param

DEFAULT_DAYS = 30
MAX_DAYS = 3660
CALLS_PAGE = 50
MAX_CALLS_PAGE = 1000
ERROR_WINDOW = timedelta(hours=1)
#: Offered in the calls filter; any other code can be typed into the URL.
STATUS_CHOICES = ("ok", "error", "400", "401", "403", "404", "408", "429", "500", "502", "503")


def period(ctx: Ctx) -> tuple[date, date]:
    """``start``..``end`` (whole days, UTC, both included); the last 30 days by default."""
    today = datetime.now(UTC).date()
    end = _day(ctx.query.get("end"), "end") or today
    start = _day(ctx.query.get("start"), "start") or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise OutcropError("the period's start is after its end", 400)
    if (end - start).days > MAX_DAYS:
        raise OutcropError(f"the period is longer than {MAX_DAYS} days", 400)
    return start, end


def _day(raw: str | None, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise OutcropError(f"{name}: expected a date (YYYY-MM-DD), got {raw!r}", 400) from None


def _moment(raw: str | None, name: str) -> datetime | None:
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise OutcropError(f"{name}: expected a date and time, got {raw!r}", 400) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    first = datetime(start.year, start.month, start.day, tzinfo=UTC)
    return first, datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)


def every_day(report: queries.SpendReport, start: date, end: date) -> list[queries.SpendLine]:
    """The by-day lines with the days without calls filled in (a chart needs them)."""
    have = {line.label: line for line in report.by_day}
    out = []
    day = start
    while day <= end:
        out.append(have.get(day.isoformat()) or queries.SpendLine(day.isoformat(), day.isoformat()))
        day += timedelta(days=1)
    return out


def csv_cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula is quoted (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


class ReportPages:
    def __init__(self, web: Web, gateway: GatewayAPI, service: Callable[[], KeyService]) -> None:
        self.web = web
        self.gateway = gateway
        self.service = service

    @property
    def engine(self) -> Any:
        return self.service().engine

    # -- spend -------------------------------------------------------------------------------
    async def spend(self, ctx: Ctx) -> Response:
        start, end = period(ctx)
        report = await self.web.run(queries.spend_report, self.engine, *_bounds(start, end))
        days = every_day(report, start, end)
        chart = {
            "day": charts.columns([(d.label, d.spend) for d in days], label="Spend by day"),
            "model": charts.bars(
                [(m.label, m.spend) for m in report.by_model], label="Spend by model"
            ),
            "key": charts.bars([(k.label, k.spend) for k in report.by_key], label="Spend by key"),
            "team": charts.bars(
                [(t.label, t.spend) for t in report.by_team], label="Spend by team"
            ),
        }
        return self.web.render(
            ctx,
            "spend.html",
            report=report,
            days=days,
            chart=chart,
            start=start.isoformat(),
            end=end.isoformat(),
        )

    async def spend_csv(self, ctx: Ctx) -> Response:
        start, end = period(ctx)
        group = ctx.query.get("by", "day")
        if group not in queries.GROUPS:
            raise OutcropError(f"by: expected one of {', '.join(queries.GROUPS)}", 400)
        report = await self.web.run(queries.spend_report, self.engine, *_bounds(start, end))
        lines = every_day(report, start, end) if group == "day" else report.group(group)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            [group, "id", "spend_usd", "requests", "errors", "prompt_tokens", "completion_tokens"]
        )
        for line in lines:
            writer.writerow(
                [
                    csv_cell(line.label),
                    csv_cell(line.ref or ""),
                    f"{line.spend:.10f}",
                    line.requests,
                    line.errors,
                    line.prompt_tokens,
                    line.completion_tokens,
                ]
            )
        name = f"outcrop-spend-by-{group}-{start.isoformat()}-{end.isoformat()}.csv"
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )

    # -- calls -------------------------------------------------------------------------------
    async def _filters(self, ctx: Ctx) -> queries.CallFilters:
        q = ctx.query
        key = (q.get("key") or "").strip()
        api_key = None
        if key:
            if key.startswith(tokens.KEY_PREFIX) or len(key) == 64:
                api_key = tokens.token_ref(key)
            else:  # an alias
                api_key = await self.web.run(queries.key_by_alias, self.engine, key) or "-"
        status = (q.get("status") or "").strip()
        if status and status not in ("ok", "error") and not (status.isdigit() and len(status) == 3):
            raise OutcropError("status: expected ok, error or a status code", 400)
        return queries.CallFilters(
            api_key=api_key,
            model=(q.get("model") or "").strip() or None,
            status=status or None,
            start=_moment(q.get("start"), "start"),
            end=_moment(q.get("end"), "end"),
        )

    async def calls(self, ctx: Ctx) -> Response:
        filters = await self._filters(ctx)
        number = int_param(ctx.query.get("page"), 1)
        size = int_param(ctx.query.get("size"), CALLS_PAGE, 1, MAX_CALLS_PAGE)
        rows, page = await self.web.run(queries.calls, self.engine, filters, number, size)
        return self.render_calls(ctx, rows, page, await self._models())

    def render_calls(
        self, ctx: Ctx, rows: list[dict[str, Any]], page: queries.Page, models: list[str]
    ) -> Response:
        q = ctx.query
        keep = {n: q[n] for n in ("key", "model", "status", "start", "end", "size") if q.get(n)}
        return self.web.render(
            ctx,
            "calls.html",
            rows=rows,
            page=page,
            keep=keep,
            models=models,
            statuses=STATUS_CHOICES,
            f={n: q.get(n, "") for n in ("key", "model", "status", "start", "end")},
        )

    async def _models(self) -> list[str]:
        seen = await self.web.run(queries.seen_models, self.engine)
        return sorted(set(self.gateway.model_names()) | set(seen))

    async def call(self, ctx: Ctx) -> Response:
        raw = ctx.request.path_params["row_id"]
        row = await self.web.run(queries.call, self.engine, int(raw)) if raw.isdigit() else None
        if row is None:
            raise OutcropError("no such call", 404)
        return self.web.render(ctx, "call.html", row=row)

    # -- models ------------------------------------------------------------------------------
    async def models(self, ctx: Ctx) -> Response:
        since = datetime.now(UTC) - ERROR_WINDOW
        outcomes = await self.web.run(queries.deployment_outcomes, self.engine, since)
        return self.web.render(
            ctx, "models.html", deployments=self.deployments(outcomes), window_minutes=60
        )

    def deployments(self, outcomes: dict[str, tuple[int, int]]) -> list[dict[str, Any]]:
        gateway = self.gateway
        out = []
        for d in gateway.deployments():
            route = gateway.route(d)
            try:
                region = gateway.region(d.params, route.region)
            except OutcropError:
                region = None
            calls, errors = outcomes.get(d.id, (0, 0))
            out.append(
                {
                    "model_name": d.model_name,
                    "id": d.id,
                    "model": d.params.model,
                    "plugin": route.provider,
                    "region": region,
                    "weight": d.params.weight,
                    "cooldown": "cooling down" if gateway.cooling(d) else "ready",
                    "calls": calls,
                    "errors": errors,
                    "error_rate": errors / calls if calls else None,
                }
            )
        return out
