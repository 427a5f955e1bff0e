"""The page's reports on a real database (SQLite and PostgreSQL): the calls list pages through
every matching row exactly once, newest first, and its filters and the spend report agree with
the rows written."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from outcrop_admin import queries
from outcrop_admin.queries import CallFilters
from outcrop_keys import db, store

START = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = db.make_engine(database_url)
    db.upgrade(engine)
    yield engine
    engine.dispose()


def row(i: int) -> dict[str, Any]:
    """Call ``i``: one a minute from START, keys k0..k2, every 7th failed, model a or b."""
    moment = START + timedelta(minutes=i)
    return {
        "request_id": f"req-{i}",
        "start_time": moment,
        "end_time": moment + timedelta(milliseconds=40),
        "api_key": f"{i % 3:064d}",
        "key_alias": None,
        "auth": "virtual_key",
        "team_id": "t" if i % 3 == 0 else None,
        "model": "a" if i % 2 else "b",
        "deployment": "a#0" if i % 2 else "b#1",
        "provider_model": "m",
        "surface": "chat",
        "path": "/v1/chat/completions",
        "status": 502 if i % 7 == 0 else 200,
        "stream": False,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "cache_read_tokens": None,
        "cache_write_tokens": None,
        "spend": 0.0 if i % 7 == 0 else 0.01,
        "latency_ms": 40.0,
        "client_ip": "127.0.0.1",
        "user_agent": "test",
        "error": "boom" if i % 7 == 0 else None,
        "messages": None,
        "response": None,
    }


N = 2 * 24 * 60 + 17  # two days and a bit, one call a minute


@pytest.fixture
def rows(engine: Engine) -> list[dict[str, Any]]:
    made = [row(i) for i in range(N)]
    for at in range(0, N, 1000):
        store.write_spend(engine, made[at : at + 1000])
    return made


def ids_of(engine: Engine, filters: CallFilters, size: int) -> list[str]:
    seen: list[str] = []
    number = 1
    while True:
        found, page = queries.calls(engine, filters, number, size)
        assert page.total >= len(seen) and len(found) == page.last - page.first + 1
        seen += [r["request_id"] for r in found]
        if not page.has_next:
            return seen
        number += 1


def test_calls_pages_through_every_row_once_newest_first(engine: Engine, rows: Any) -> None:
    newest_first = [f"req-{i}" for i in reversed(range(N))]
    assert ids_of(engine, CallFilters(), 1000) == newest_first
    assert ids_of(engine, CallFilters(), 97) == newest_first
    found, page = queries.calls(engine, CallFilters(), 10**6, 50)  # past the end: the last page
    assert (
        page.number == page.pages and [r["request_id"] for r in found] == newest_first[-(N % 50) :]
    )


@pytest.mark.parametrize(
    ("filters", "keep"),
    [
        (CallFilters(status="error"), lambda i: i % 7 == 0),
        (CallFilters(status="ok"), lambda i: i % 7 != 0),
        (CallFilters(status="502"), lambda i: i % 7 == 0),
        (CallFilters(model="a"), lambda i: i % 2 == 1),
        (CallFilters(api_key=f"{1:064d}"), lambda i: i % 3 == 1),
        (
            CallFilters(start=START + timedelta(hours=1), end=START + timedelta(hours=2)),
            lambda i: 60 <= i < 120,
        ),
        (
            CallFilters(model="b", status="error", api_key=f"{0:064d}"),
            lambda i: i % 2 == 0 and i % 7 == 0 and i % 3 == 0,
        ),
    ],
)
def test_call_filters(engine: Engine, rows: Any, filters: CallFilters, keep: Any) -> None:
    assert ids_of(engine, filters, 500) == [f"req-{i}" for i in reversed(range(N)) if keep(i)]


def test_spend_report_matches_the_rows(engine: Engine, rows: list[dict[str, Any]]) -> None:
    report = queries.spend_report(engine, START, START + timedelta(days=1))
    first_day = [r for r in rows if r["start_time"] < START + timedelta(days=1)]
    assert [d.label for d in report.by_day] == ["2026-03-01"]
    total = report.total
    assert total.requests == len(first_day) == 24 * 60
    assert total.errors == sum(1 for r in first_day if r["status"] >= 400)
    assert total.spend == pytest.approx(sum(r["spend"] for r in first_day))
    assert {m.label: m.requests for m in report.by_model} == {"a": 720, "b": 720}
    assert sorted(k.requests for k in report.by_key) == [480, 480, 480]
    assert {k.label for k in report.by_key} == {"(deleted key)"}  # no such keys in the table
    assert {t.label: t.requests for t in report.by_team} == {"t": 480, "(no team)": 960}
    everything = queries.spend_report(engine, None, None)
    assert [d.label for d in everything.by_day] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert everything.total.requests == N


def test_deployment_outcomes(engine: Engine, rows: Any) -> None:
    since = START + timedelta(minutes=N - 70)  # the last 70 calls
    outcomes = queries.deployment_outcomes(engine, since)
    last = range(N - 70, N)
    assert outcomes == {
        "a#0": (sum(1 for i in last if i % 2), sum(1 for i in last if i % 2 and i % 7 == 0)),
        "b#1": (
            sum(1 for i in last if not i % 2),
            sum(1 for i in last if not i % 2 and i % 7 == 0),
        ),
    }
