"""Spend rows written through the driver (``store.SpendRows``: executemany on SQLite, COPY on
PostgreSQL) read back exactly as rows inserted through SQLAlchemy's own insert: every column
type, NULLs, text COPY must escape (tabs, newlines, backslashes, quotes), more rows than one
GIL slice, and the batch's cost per key and team."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from outcrop_keys import db, store
from outcrop_keys.schema import spend_logs

START = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def row(i: int, prefix: str) -> dict[str, Any]:
    odd = i % 2 == 1
    return {
        "request_id": f"{prefix}-{i}",
        "start_time": START + timedelta(seconds=i, microseconds=i),
        "end_time": START + timedelta(seconds=i + 1),
        "api_key": "k" * 64 if i % 3 else None,
        "key_alias": "tab\there, new\nline, back\\slash, 'quote' \"dq\" ünïcode" if odd else None,
        "auth": "virtual_key",
        "team_id": "team-a" if i % 4 == 0 else None,
        "model": "claude",
        "deployment": "claude#0",
        "provider_model": "bedrock/anthropic.claude",
        "surface": "chat",
        "path": "/v1/chat/completions",
        "status": 200 if odd else 429,
        "stream": odd,
        "prompt_tokens": 10 + i,
        "completion_tokens": None if i % 5 == 0 else 5,
        "total_tokens": 15 + i,
        "cache_read_tokens": None,
        "cache_write_tokens": 3 if odd else None,
        "spend": 0.0 if i % 7 == 0 else 1e-6 * (i + 1),
        "latency_ms": 12.345 + i,
        "client_ip": "127.0.0.1",
        "user_agent": None,
        "error": None if odd else 'upstream said:\t"no"\n\\ done',
        "attempts": [{"deployment": "a", "status": 500, "error": "x\ty"}] if i % 3 == 0 else None,
        "messages": {"messages": [{"role": "user", "content": "hi\n"}]} if i % 6 == 0 else None,
        "response": None,
    }


def read(engine: sa.Engine, prefix: str) -> list[dict[str, Any]]:
    columns = [c for c in spend_logs.c if c.name not in ("id", "recorded_at")]
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(*columns)
            .where(spend_logs.c.request_id.like(prefix + "-%"))
            .order_by(spend_logs.c.start_time)
        )
        return [dict(r._mapping) for r in found]


def test_driver_rows_read_back_as_sqlalchemy_rows(database_url: str) -> None:
    engine = db.make_engine(database_url)
    try:
        db.upgrade(engine)
        n = store.COPY_SLICE_ROWS * 3 + 5
        ours = [row(i, "ours") for i in range(n)]
        theirs = [row(i, "theirs") for i in range(n)]
        store.write_spend(engine, ours)
        with engine.begin() as conn:  # the reference: SQLAlchemy's own insert of the same rows
            conn.execute(spend_logs.insert(), [{**r, "recorded_at": START} for r in theirs])
        got, want = read(engine, "ours"), read(engine, "theirs")
        assert len(got) == n
        for mine, reference in zip(got, want, strict=True):
            assert mine | {"request_id": None} == reference | {"request_id": None}
        assert got[1]["key_alias"] == ours[1]["key_alias"]  # escaped text comes back as sent
        assert got[0]["attempts"] == ours[0]["attempts"]
        with engine.connect() as conn:
            recorded = conn.execute(
                sa.select(sa.func.count()).where(
                    spend_logs.c.request_id.like("ours-%"), spend_logs.c.recorded_at.is_not(None)
                )
            ).scalar_one()
        assert recorded == n
    finally:
        engine.dispose()


def test_a_batch_carries_its_cost_per_key_and_team(database_url: str) -> None:
    engine = db.make_engine(database_url)
    try:
        encoder = store.spend_rows(engine)
        assert store.spend_rows(engine) is encoder  # made once per engine
        rows = [row(i, "cost") for i in range(40)]
        batch = store.SpendBatch.of([encoder.encode(r) for r in rows])
        by_key: dict[str, float] = {}
        by_team: dict[str, float] = {}
        for r in rows:
            if r["spend"] and r["api_key"]:
                by_key[r["api_key"]] = by_key.get(r["api_key"], 0.0) + r["spend"]
            if r["spend"] and r["team_id"]:
                by_team[r["team_id"]] = by_team.get(r["team_id"], 0.0) + r["spend"]
        assert batch.by_key == by_key and batch.by_team == by_team
        assert len(batch.rows) == 40
    finally:
        engine.dispose()
