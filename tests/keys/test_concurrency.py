"""64 concurrent clients on one key with a budget, through two gateway instances sharing
PostgreSQL: nothing is admitted after the recorded spend reached the budget beyond the calls
already in flight, every call has exactly one spend row, and the key's spend is their sum."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from outcrop.testing.replies import ConverseReply
from outcrop_keys import db
from outcrop_keys.schema import keys, spend_logs

from .conftest import BEDROCK_ID, Admin, flushed, service_of

CLIENTS = 64
ONE_CALL = 10 * 3e-6 + 5 * 15e-6  # claude 3.5 sonnet, 10 in / 5 out tokens
BUDGET_CALLS = 40
MESSAGES = [{"role": "user", "content": [{"text": "Hello"}]}]


@pytest.fixture
def database_url(pg_url: str) -> str:
    return pg_url


def test_budget_across_two_instances(gateway_factory, make_config, bedrock_simulator, capsys):
    bedrock_simulator.reset()
    bedrock_simulator.reply(ConverseReply("Hello there", usage=(10, 5), delay=0.02))
    one, two = gateway_factory(make_config()), gateway_factory(make_config())
    created = Admin(one.url).generate(max_budget=ONE_CALL * (BUDGET_CALLS + 0.5))
    key = created["key"]
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client(index: int) -> None:
        base = (one if index % 2 else two).url
        with httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=30) as http:
            start.wait()
            while True:
                r = http.post(f"/bedrock/model/{BEDROCK_ID}/converse", json={"messages": MESSAGES})
                with lock:
                    statuses.append(r.status_code)
                if r.status_code != 200:
                    assert r.status_code == 429, r.text
                    assert r.headers["x-amzn-errortype"].startswith("ThrottlingException")
                    return

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    flushed(one)
    flushed(two)

    admitted = statuses.count(200)
    assert statuses.count(429) == CLIENTS
    assert admitted == len(bedrock_simulator.requests)  # every admitted call reached AWS once
    engine = db.make_engine(make_config()["general_settings"]["database_url"])
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    spend_logs.c.request_id,
                    spend_logs.c.status,
                    spend_logs.c.spend,
                    spend_logs.c.start_time,
                    spend_logs.c.end_time,
                    spend_logs.c.recorded_at,
                ).where(spend_logs.c.api_key == created["token"])
            ).all()
            recorded = conn.execute(
                sa.select(keys.c.spend).where(keys.c.token == created["token"])
            ).scalar_one()
    finally:
        engine.dispose()
    # exactly one row per call, and the key's spend is the sum of its rows
    assert len(rows) == len(statuses) and len({r.request_id for r in rows}) == len(rows)
    assert sorted(r.status for r in rows) == sorted(statuses)
    assert recorded == pytest.approx(sum(r.spend for r in rows))
    assert recorded == pytest.approx(admitted * ONE_CALL)

    # The budget was crossed when the row that took the recorded spend past it was written.
    # A call whose start (before its admission) is later than that, plus the time the writing
    # transaction takes to commit, was admitted after the crossing: there must be none.
    by_record = sorted(
        (r for r in rows if r.status == 200), key=lambda r: (r.recorded_at, r.end_time)
    )
    total, crossed_at = 0.0, None
    for r in by_record:
        total += r.spend
        if total >= ONE_CALL * (BUDGET_CALLS + 0.5):
            crossed_at = _aware(r.recorded_at)
            break
    assert crossed_at is not None
    commit = timedelta(seconds=0.1)
    late = [r for r in by_record if _aware(r.start_time) > crossed_at + commit]
    in_flight = [r for r in by_record if _aware(r.start_time) <= crossed_at + commit]
    overshoot = admitted - (BUDGET_CALLS + 1)
    with capsys.disabled():
        print(
            f"\n[budget across 2 instances] budget={BUDGET_CALLS + 0.5} calls, admitted={admitted}, "
            f"overshoot={overshoot} calls, admitted before the crossing was recorded="
            f"{len(in_flight)}, admitted after it={len(late)}"
        )
    assert late == []
    assert not service_of(one).buffer and not service_of(two).buffer


def _aware(value: datetime) -> datetime:
    from outcrop_keys.durations import aware

    return aware(value)  # type: ignore[return-value]
