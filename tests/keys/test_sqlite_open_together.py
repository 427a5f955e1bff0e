"""Workers opening one new SQLite key store together (`outcrop serve --workers N` on a fresh
database) all start: the first connection, the revision check and the migration run under the
lock file, and a "database is locked" that SQLite returns without waiting is tried again."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from outcrop_keys import db, store


def _open_and_poll(path: str, start: float, results: Any) -> None:
    while time.time() < start:  # every process starts at the same moment
        pass
    try:
        engine = db.make_engine(f"sqlite:///{path}")
        db.upgrade(engine)
        store.changes_since(engine, -1)
        engine.dispose()
        results.put("ok")
    except Exception as exc:  # reported to the test, which shows it
        results.put(f"{type(exc).__name__}: {exc}")


def test_workers_opening_a_new_database_together_all_start(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    for round_ in range(3):
        path = str(tmp_path / f"keys-{round_}.db")
        results = ctx.Queue()
        start = time.time() + 1.5  # after the spawned interpreters imported the store
        procs = [ctx.Process(target=_open_and_poll, args=(path, start, results)) for _ in range(4)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert outcomes == ["ok"] * 4
        engine = db.make_engine(f"sqlite:///{path}")
        assert db.current(engine) == db.HEAD
        engine.dispose()


def _locked() -> sa.exc.OperationalError:
    return sa.exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked"))


def test_a_locked_database_is_tried_again_until_it_answers() -> None:
    calls: list[float] = []

    def step() -> None:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise _locked()

    db._retry_locked(step)
    assert len(calls) == 3


def test_other_errors_and_a_lock_that_outlasts_patience_are_raised() -> None:
    def broken() -> None:
        raise sa.exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError("disk I/O error"))

    with pytest.raises(sa.exc.OperationalError, match="disk I/O"):
        db._retry_locked(broken)

    def always_locked() -> None:
        raise _locked()

    began = time.monotonic()
    with pytest.raises(sa.exc.OperationalError, match="locked"):
        db._retry_locked(always_locked, patience=0.3)
    assert time.monotonic() - began < 5
