"""The read-only reports the page shows (SQLAlchemy Core on the keys plugin's tables; the
writes go through ``outcrop_keys.manage`` like the management API's)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from outcrop_keys.schema import keys, spend_logs, teams

#: What the calls table shows (the details page reads the whole row).
CALL_COLUMNS = (
    spend_logs.c.id,
    spend_logs.c.request_id,
    spend_logs.c.start_time,
    spend_logs.c.api_key,
    spend_logs.c.key_alias,
    spend_logs.c.team_id,
    spend_logs.c.model,
    spend_logs.c.deployment,
    spend_logs.c.status,
    spend_logs.c.stream,
    spend_logs.c.prompt_tokens,
    spend_logs.c.completion_tokens,
    spend_logs.c.total_tokens,
    spend_logs.c.spend,
    spend_logs.c.latency_ms,
    spend_logs.c.error,
)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: ``number`` is 1-based and clamped into ``1..pages``."""

    number: int
    size: int
    total: int

    @classmethod
    def of(cls, number: int, size: int, total: int) -> Page:
        pages = max(1, math.ceil(total / size))
        return cls(min(max(number, 1), pages), size, total)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def first(self) -> int:
        """The 1-based position of the page's first row (0 when there are none)."""
        return self.offset + 1 if self.total else 0

    @property
    def last(self) -> int:
        return min(self.offset + self.size, self.total)

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


@dataclass(frozen=True, slots=True)
class CallFilters:
    api_key: str | None = None  # a key's SHA-256 hex
    model: str | None = None
    status: str | None = None  # "ok", "error" or a status code
    start: datetime | None = None
    end: datetime | None = None

    def where(self) -> list[Any]:
        where: list[Any] = []
        if self.api_key:
            where.append(spend_logs.c.api_key == self.api_key)
        if self.model:
            where.append(spend_logs.c.model == self.model)
        if self.status == "ok":
            where.append(spend_logs.c.status < 400)
        elif self.status == "error":
            where.append(spend_logs.c.status >= 400)
        elif self.status:
            where.append(spend_logs.c.status == int(self.status))
        if self.start:
            where.append(spend_logs.c.start_time >= self.start)
        if self.end:
            where.append(spend_logs.c.start_time < self.end)
        return where


def calls(
    engine: Engine, filters: CallFilters, number: int, size: int
) -> tuple[list[dict[str, Any]], Page]:
    """The latest calls matching ``filters``, newest first, one page of them."""
    where = filters.where()
    with engine.connect() as conn:
        total = int(
            conn.execute(
                sa.select(sa.func.count()).select_from(spend_logs).where(*where)
            ).scalar_one()
        )
        page = Page.of(number, size, total)
        rows = conn.execute(
            sa.select(*CALL_COLUMNS)
            .where(*where)
            .order_by(spend_logs.c.start_time.desc(), spend_logs.c.id.desc())
            .limit(page.size)
            .offset(page.offset)
        )
        return [dict(r._mapping) for r in rows], page


def call(engine: Engine, row_id: int) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(spend_logs).where(spend_logs.c.id == row_id)).first()
        return dict(row._mapping) if row else None


def seen_models(engine: Engine, limit: int = 200) -> list[str]:
    with engine.connect() as conn:
        return [
            r[0]
            for r in conn.execute(
                sa.select(spend_logs.c.model).distinct().order_by(spend_logs.c.model).limit(limit)
            )
        ]


# -- spend ---------------------------------------------------------------------------------------


@dataclass
class SpendLine:
    label: str
    ref: str | None  # the key hash, team id or model: what a link filters on
    spend: float = 0.0
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class SpendReport:
    by_day: list[SpendLine] = field(default_factory=list)
    by_model: list[SpendLine] = field(default_factory=list)
    by_key: list[SpendLine] = field(default_factory=list)
    by_team: list[SpendLine] = field(default_factory=list)

    @property
    def total(self) -> SpendLine:
        out = SpendLine("total", None)
        for line in self.by_day:
            _add(
                out,
                line.spend,
                line.requests,
                line.errors,
                line.prompt_tokens,
                line.completion_tokens,
            )
        return out

    def group(self, name: str) -> list[SpendLine]:
        return {
            "day": self.by_day,
            "model": self.by_model,
            "key": self.by_key,
            "team": self.by_team,
        }[name]


GROUPS = ("day", "model", "key", "team")


def _add(
    line: SpendLine, spend: Any, requests: Any, errors: Any, prompt: Any, completion: Any
) -> None:
    line.spend += float(spend or 0.0)
    line.requests += int(requests or 0)
    line.errors += int(errors or 0)
    line.prompt_tokens += int(prompt or 0)
    line.completion_tokens += int(completion or 0)


def spend_report(engine: Engine, start: datetime | None, end: datetime | None) -> SpendReport:
    """Spend over ``[start, end)`` by day, model, key and team, from one grouped query."""
    day = sa.func.date(spend_logs.c.start_time)
    where = CallFilters(start=start, end=end).where()
    stmt = (
        sa.select(
            day,
            spend_logs.c.model,
            spend_logs.c.api_key,
            spend_logs.c.team_id,
            sa.func.sum(spend_logs.c.spend),
            sa.func.count(),
            sa.func.sum(sa.case((spend_logs.c.status >= 400, 1), else_=0)),
            sa.func.sum(spend_logs.c.prompt_tokens),
            sa.func.sum(spend_logs.c.completion_tokens),
        )
        .where(*where)
        .group_by(day, spend_logs.c.model, spend_logs.c.api_key, spend_logs.c.team_id)
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
        key_names = _key_names(conn, {r[2] for r in rows if r[2]})
        team_names = _team_names(conn, {r[3] for r in rows if r[3]})
    groups: list[dict[Any, SpendLine]] = [{}, {}, {}, {}]
    for d, model, api_key, team_id, spend, requests, errors, prompt, completion in rows:
        refs = (str(d), model, api_key, team_id)
        labels = (
            str(d),
            model,
            key_names.get(api_key, "(deleted key)") if api_key else "(no virtual key)",
            team_names.get(team_id, team_id) if team_id else "(no team)",
        )
        for group, ref, label in zip(groups, refs, labels, strict=True):
            line = group.get(ref)
            if line is None:
                line = group[ref] = SpendLine(label, ref)
            _add(line, spend, requests, errors, prompt, completion)
    by_spend = [
        sorted(g.values(), key=lambda line: (-line.spend, -line.requests, line.label))
        for g in groups[1:]
    ]
    return SpendReport(sorted(groups[0].values(), key=lambda line: line.label), *by_spend)


def _key_names(conn: sa.Connection, tokens: Iterable[str]) -> dict[str, str]:
    found = conn.execute(
        sa.select(keys.c.token, keys.c.key_alias, keys.c.key_name).where(
            keys.c.token.in_(list(tokens))
        )
    )
    return {t: alias or name for t, alias, name in found}


def _team_names(conn: sa.Connection, team_ids: Iterable[str]) -> dict[str, str]:
    found = conn.execute(
        sa.select(teams.c.team_id, teams.c.team_alias).where(teams.c.team_id.in_(list(team_ids)))
    )
    return {t: alias or t for t, alias in found}


def team_names(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(teams.c.team_id, teams.c.team_alias).order_by(teams.c.team_id)
        )
        return {t: alias or t for t, alias in found}


# -- models --------------------------------------------------------------------------------------


def deployment_outcomes(engine: Engine, since: datetime) -> dict[str, tuple[int, int]]:
    """``deployment: (calls, errors)`` since ``since``."""
    stmt = (
        sa.select(
            spend_logs.c.deployment,
            sa.func.count(),
            sa.func.sum(sa.case((spend_logs.c.status >= 400, 1), else_=0)),
        )
        .where(spend_logs.c.start_time >= since, spend_logs.c.deployment.is_not(None))
        .group_by(spend_logs.c.deployment)
    )
    with engine.connect() as conn:
        return {d: (int(n), int(e or 0)) for d, n, e in conn.execute(stmt)}


def key_counts(engine: Engine) -> dict[str, int]:
    """How many keys each team has."""
    stmt = (
        sa.select(keys.c.team_id, sa.func.count())
        .where(keys.c.team_id.is_not(None))
        .group_by(keys.c.team_id)
    )
    with engine.connect() as conn:
        return {t: int(n) for t, n in conn.execute(stmt)}


def key_by_alias(engine: Engine, alias: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(sa.select(keys.c.token).where(keys.c.key_alias == alias)).scalar()
