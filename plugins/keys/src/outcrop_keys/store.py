"""Every database statement the plugin runs (synchronous SQLAlchemy Core; the service calls
these in a worker thread, the CLI directly)."""

from __future__ import annotations

import operator
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .durations import next_reset, now
from .schema import keys, meta, spend_logs, teams, tombstones


def bump(conn: Connection) -> int:
    """The next change number (row-locks the counter until the transaction ends)."""
    row = conn.execute(
        meta.update()
        .where(meta.c.name == "seq")
        .values(value=meta.c.value + 1)
        .returning(meta.c.value)
    ).one()
    return int(row[0])


def current_seq(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(meta.c.value).where(meta.c.name == "seq")).scalar_one())


# -- keys and teams ------------------------------------------------------------------------------


def insert_key(engine: Engine, values: dict[str, Any]) -> None:
    with engine.begin() as conn:
        seq = bump(conn)
        conn.execute(keys.insert().values(**values, seq=seq, created_at=now(), updated_at=now()))


def update_key(engine: Engine, token: str, values: dict[str, Any]) -> bool:
    with engine.begin() as conn:
        seq = bump(conn)
        done = conn.execute(
            keys.update().where(keys.c.token == token).values(**values, seq=seq, updated_at=now())
        )
        return done.rowcount == 1


def replace_key_token(engine: Engine, old: str, new: str, values: dict[str, Any]) -> bool:
    """Regenerate: the row moves to the new hash, the old one is tombstoned (same transaction)."""
    with engine.begin() as conn:
        seq = bump(conn)
        done = conn.execute(
            keys.update()
            .where(keys.c.token == old)
            .values(**values, token=new, seq=seq, updated_at=now())
        )
        if done.rowcount != 1:
            return False
        conn.execute(tombstones.insert().values(kind="key", ref=old, seq=seq))
        return True


def delete_keys(engine: Engine, tokens: Sequence[str]) -> list[str]:
    with engine.begin() as conn:
        found = [
            r[0] for r in conn.execute(sa.select(keys.c.token).where(keys.c.token.in_(tokens)))
        ]
        if not found:
            return []
        seq = bump(conn)
        conn.execute(keys.delete().where(keys.c.token.in_(found)))
        conn.execute(tombstones.insert(), [{"kind": "key", "ref": t, "seq": seq} for t in found])
        return found


def get_key(engine: Engine, token: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(keys).where(keys.c.token == token)).first()
        return dict(row._mapping) if row else None


def tokens_for_aliases(engine: Engine, aliases: Sequence[str]) -> list[str]:
    with engine.connect() as conn:
        return [
            r[0] for r in conn.execute(sa.select(keys.c.token).where(keys.c.key_alias.in_(aliases)))
        ]


def list_keys(
    engine: Engine,
    *,
    team_id: str | None = None,
    key_alias: str | None = None,
    page: int = 1,
    size: int = 50,
) -> tuple[list[dict[str, Any]], int]:
    where = []
    if team_id:
        where.append(keys.c.team_id == team_id)
    if key_alias:
        where.append(keys.c.key_alias == key_alias)
    with engine.connect() as conn:
        total = conn.execute(
            sa.select(sa.func.count()).select_from(keys).where(*where)
        ).scalar_one()
        rows = conn.execute(
            sa.select(keys)
            .where(*where)
            .order_by(keys.c.created_at, keys.c.token)
            .limit(size)
            .offset((page - 1) * size)
        )
        return [dict(r._mapping) for r in rows], int(total)


def insert_team(engine: Engine, values: dict[str, Any]) -> None:
    with engine.begin() as conn:
        seq = bump(conn)
        conn.execute(teams.insert().values(**values, seq=seq, created_at=now(), updated_at=now()))


def update_team(engine: Engine, team_id: str, values: dict[str, Any]) -> bool:
    with engine.begin() as conn:
        seq = bump(conn)
        done = conn.execute(
            teams.update()
            .where(teams.c.team_id == team_id)
            .values(**values, seq=seq, updated_at=now())
        )
        return done.rowcount == 1


def delete_teams(engine: Engine, team_ids: Sequence[str]) -> list[str]:
    """Deletes the teams and their keys (as LiteLLM does)."""
    with engine.begin() as conn:
        found = [
            r[0]
            for r in conn.execute(sa.select(teams.c.team_id).where(teams.c.team_id.in_(team_ids)))
        ]
        if not found:
            return []
        seq = bump(conn)
        owned = [
            r[0] for r in conn.execute(sa.select(keys.c.token).where(keys.c.team_id.in_(found)))
        ]
        conn.execute(keys.delete().where(keys.c.team_id.in_(found)))
        conn.execute(teams.delete().where(teams.c.team_id.in_(found)))
        conn.execute(
            tombstones.insert(),
            [{"kind": "team", "ref": t, "seq": seq} for t in found]
            + [{"kind": "key", "ref": t, "seq": seq} for t in owned],
        )
        return found


def get_team(engine: Engine, team_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(teams).where(teams.c.team_id == team_id)).first()
        return dict(row._mapping) if row else None


def list_teams(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            dict(r._mapping) for r in conn.execute(sa.select(teams).order_by(teams.c.created_at))
        ]


# -- what changed (cache refresh) ----------------------------------------------------------------


@dataclass
class Changes:
    seq: int
    keys: list[dict[str, Any]] = field(default_factory=list)
    teams: list[dict[str, Any]] = field(default_factory=list)
    deleted_keys: list[str] = field(default_factory=list)
    deleted_teams: list[str] = field(default_factory=list)


def changes_since(engine: Engine, seen: int) -> Changes:
    """Rows changed after change number ``seen`` (all rows when ``seen`` is -1)."""
    with engine.connect() as conn:
        seq = int(conn.execute(sa.select(meta.c.value).where(meta.c.name == "seq")).scalar_one())
        if seq == seen:
            return Changes(seq)
        out = Changes(seq)
        out.keys = [
            dict(r._mapping) for r in conn.execute(sa.select(keys).where(keys.c.seq > seen))
        ]
        out.teams = [
            dict(r._mapping) for r in conn.execute(sa.select(teams).where(teams.c.seq > seen))
        ]
        for kind, ref in conn.execute(
            sa.select(tombstones.c.kind, tombstones.c.ref).where(tombstones.c.seq > seen)
        ):
            (out.deleted_keys if kind == "key" else out.deleted_teams).append(ref)
        return out


# -- spend ---------------------------------------------------------------------------------------


#: A spend row's columns in the order ``SpendRows.encode`` puts them (``id`` is the database's;
#: ``recorded_at`` is added when the batch is written).
SPEND_COLUMNS = tuple(c.name for c in spend_logs.c if c.name not in ("id", "recorded_at"))
_API_KEY, _TEAM_ID, _SPEND = (SPEND_COLUMNS.index(n) for n in ("api_key", "team_id", "spend"))
_VALUES = operator.itemgetter(*SPEND_COLUMNS)
_NULLS = dict.fromkeys(SPEND_COLUMNS)


@dataclass
class SpendBatch:
    """Rows encoded for the driver (``SpendRows.encode``) and their cost per key and team."""

    rows: Sequence[tuple[Any, ...]]
    by_key: dict[str, float] = field(default_factory=dict)
    by_team: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: Sequence[tuple[Any, ...]]) -> SpendBatch:
        batch = cls(rows)
        for row in rows:
            cost = row[_SPEND]
            if cost:
                if row[_API_KEY]:
                    batch.by_key[row[_API_KEY]] = batch.by_key.get(row[_API_KEY], 0.0) + cost
                if row[_TEAM_ID]:
                    batch.by_team[row[_TEAM_ID]] = batch.by_team.get(row[_TEAM_ID], 0.0) + cost
        return batch


class SpendRows:
    """Spend rows as the database driver takes them: plain tuples, each value already converted
    by the column type's own SQLAlchemy bind processor (so the stored values are the ones an ORM
    insert would store), written with one driver call per batch (``executemany``; ``COPY`` on
    PostgreSQL). SQLAlchemy's per-row parameter handling cost ~30 us a row in the writer thread,
    GIL held: a 1,000-row batch stalled the event loop for milliseconds (issue 17's p99)."""

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        self.copy = dialect.name == "postgresql"
        by_name = {
            c.name: c.type.dialect_impl(dialect).bind_processor(dialect) for c in spend_logs.c
        }
        #: (position, processor) for the columns whose values the driver cannot take as they are
        self._convert = [
            (i, by_name[name]) for i, name in enumerate(SPEND_COLUMNS) if by_name[name] is not None
        ]
        self._when = by_name["recorded_at"] or (lambda moment: moment)
        columns = ", ".join((*SPEND_COLUMNS, "recorded_at"))
        if self.copy:
            self.sql = f"COPY {spend_logs.name} ({columns}) FROM STDIN"
        else:
            mark = "?" if dialect.paramstyle == "qmark" else "%s"
            marks = ", ".join([mark] * (len(SPEND_COLUMNS) + 1))
            self.sql = f"INSERT INTO {spend_logs.name} ({columns}) VALUES ({marks})"

    def encode(self, row: dict[str, Any]) -> tuple[Any, ...]:
        """One row (a dict with every ``SPEND_COLUMNS`` name) as the driver's tuple."""
        values = list(_VALUES(row))
        for i, process in self._convert:
            if values[i] is not None:
                values[i] = process(values[i])
        return tuple(values)

    def insert(self, conn: Connection, rows: Sequence[tuple[Any, ...]], moment: datetime) -> None:
        when = self._when(moment)
        if self.copy:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            with cursor.copy(self.sql) as copy:
                for i, row in enumerate(rows, 1):
                    copy.write_row((*row, when))
                    if i % COPY_SLICE_ROWS == 0:
                        time.sleep(0)  # lets the event loop's thread take the GIL
            return
        conn.exec_driver_sql(self.sql, [(*row, when) for row in rows])


#: Rows written between two GIL releases on PostgreSQL (``COPY`` formats rows holding the GIL;
#: a waiting event loop would otherwise get it back only after the 5 ms switch interval).
COPY_SLICE_ROWS = 64


def write_spend(engine: Engine, rows: Sequence[dict[str, Any]] | SpendBatch) -> None:
    """One transaction: the rows, and their cost added to each key and team. The service passes
    a batch it encoded on the event loop; rows as dicts are encoded here (tools, tests)."""
    encoder = spend_rows(engine)
    if isinstance(rows, SpendBatch):
        batch = rows
    else:  # a column left out is NULL
        batch = SpendBatch.of([encoder.encode({**_NULLS, **row}) for row in rows])
    with engine.begin() as conn:
        if batch.by_key or batch.by_team:
            seq = bump(conn)
            for token, cost in sorted(batch.by_key.items()):  # one lock order: no deadlocks
                conn.execute(
                    keys.update()
                    .where(keys.c.token == token)
                    .values(spend=keys.c.spend + cost, seq=seq)
                )
            for team_id, cost in sorted(batch.by_team.items()):
                conn.execute(
                    teams.update()
                    .where(teams.c.team_id == team_id)
                    .values(spend=teams.c.spend + cost, seq=seq)
                )
        # last statement before the commit: when the spend became visible
        encoder.insert(conn, batch.rows, now())


_ENCODERS: weakref.WeakKeyDictionary[Engine, SpendRows] = weakref.WeakKeyDictionary()


def spend_rows(engine: Engine) -> SpendRows:
    """The engine's encoder (made once per engine)."""
    encoder = _ENCODERS.get(engine)
    if encoder is None:
        encoder = _ENCODERS[engine] = SpendRows(engine)
    return encoder


def reset_budgets(engine: Engine) -> int:
    """Zero the spend of keys and teams whose ``budget_reset_at`` passed and set the next reset.
    Idempotent across instances: each row is reset by whichever instance gets there first."""
    moment = now()
    changed = 0
    with engine.begin() as conn:
        for table, pk in ((keys, keys.c.token), (teams, teams.c.team_id)):
            due = conn.execute(
                sa.select(pk, table.c.budget_duration, table.c.budget_reset_at).where(
                    table.c.budget_reset_at <= moment
                )
            ).all()
            if not due:
                continue
            seq = bump(conn)
            for ref, duration, reset_at in due:
                conn.execute(
                    table.update()
                    .where(pk == ref, table.c.budget_reset_at == reset_at)
                    .values(spend=0.0, budget_reset_at=next_reset(duration, moment), seq=seq)
                )
                changed += 1
    return changed


def spend_logs_query(
    engine: Engine,
    *,
    api_key: str | None,
    team_id: str | None,
    model: str | None,
    request_id: str | None,
    start: datetime | None,
    end: datetime | None,
    page: int,
    size: int,
) -> tuple[list[dict[str, Any]], int]:
    where = _spend_filters(
        api_key=api_key, team_id=team_id, model=model, request_id=request_id, start=start, end=end
    )
    with engine.connect() as conn:
        total = conn.execute(
            sa.select(sa.func.count()).select_from(spend_logs).where(*where)
        ).scalar_one()
        rows = conn.execute(
            sa.select(spend_logs)
            .where(*where)
            .order_by(spend_logs.c.start_time.desc(), spend_logs.c.id.desc())
            .limit(size)
            .offset((page - 1) * size)
        )
        return [dict(r._mapping) for r in rows], int(total)


def _spend_filters(**f: Any) -> list[Any]:
    where = []
    if f["api_key"]:
        where.append(spend_logs.c.api_key == f["api_key"])
    if f["team_id"]:
        where.append(spend_logs.c.team_id == f["team_id"])
    if f["model"]:
        where.append(spend_logs.c.model == f["model"])
    if f.get("request_id"):
        where.append(spend_logs.c.request_id == f["request_id"])
    if f["start"]:
        where.append(spend_logs.c.start_time >= f["start"])
    if f["end"]:
        where.append(spend_logs.c.start_time < f["end"])
    return where


def spend_report(
    engine: Engine, *, group_by: str, start: datetime | None, end: datetime | None
) -> list[tuple[Any, ...]]:
    """(day, group, model, spend, total_tokens, requests) rows, grouped by day, then by key,
    team or model."""
    column = {
        "api_key": spend_logs.c.api_key,
        "team": spend_logs.c.team_id,
        "model": spend_logs.c.model,
    }[group_by]
    day = sa.func.date(spend_logs.c.start_time)
    where = _spend_filters(api_key=None, team_id=None, model=None, start=start, end=end)
    stmt = (
        sa.select(
            day,
            column,
            spend_logs.c.model,
            sa.func.sum(spend_logs.c.spend),
            sa.func.sum(spend_logs.c.total_tokens),
            sa.func.count(),
        )
        .where(*where)
        .group_by(day, column, spend_logs.c.model)
        .order_by(day, column)
    )
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(stmt)]


def spend_totals(engine: Engine, tokens: Iterable[str]) -> dict[str, float]:
    """Sum of spend rows per key (the test's and the operator's cross-check)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(spend_logs.c.api_key, sa.func.sum(spend_logs.c.spend))
            .where(spend_logs.c.api_key.in_(list(tokens)))
            .group_by(spend_logs.c.api_key)
        )
        return {r[0]: float(r[1] or 0.0) for r in rows}
