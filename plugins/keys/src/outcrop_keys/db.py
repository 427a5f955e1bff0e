"""Which database, how to connect to it, and migrations (Alembic, applied from the package)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .migrations import HEAD

MIGRATIONS = str(Path(__file__).parent / "migrations")
VERSION_TABLE = "outcrop_alembic_version"
DEFAULT_SQLITE_NAME = "outcrop.db"


def database_url(settings_url: str | None, config_source: str | None) -> str:
    """``general_settings.database_url``, else ``DATABASE_URL``, else ``outcrop.db`` beside the
    config file (or in the working directory)."""
    url = settings_url or os.environ.get("DATABASE_URL") or ""
    if url:
        return url
    folder = Path(config_source).resolve().parent if config_source else Path.cwd()
    return f"sqlite:///{folder / DEFAULT_SQLITE_NAME}"


def describe(url: str) -> str:
    """The URL without its password, for logs and errors."""
    try:
        return sa.make_url(_driver_url(url)).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(unparseable database URL)"


def _driver_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def is_postgres(url: str) -> bool:
    return _driver_url(url).startswith("postgresql+")


def make_engine(url: str) -> Engine:
    """An engine for ``sqlite:///path`` (WAL, waits for a busy writer) or ``postgresql://``."""
    driver_url = _driver_url(url)
    if driver_url.startswith("sqlite"):
        path = sa.make_url(driver_url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            driver_url, connect_args={"timeout": 30}, pool_size=8, max_overflow=8
        )

        @sa.event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _record: Any) -> None:
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if not driver_url.startswith("postgresql+"):
        raise ValueError(
            f"unsupported database URL {describe(url)!r}: "
            "expected sqlite:///path or postgresql://user@host/db"
        )
    return sa.create_engine(
        driver_url,
        pool_size=8,
        max_overflow=8,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 5},
    )


def _alembic(connection: sa.Connection | None) -> Any:
    from alembic.config import Config as AlembicConfig  # imported only to migrate: start-up cost

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", MIGRATIONS)
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision among the migration scripts (``HEAD`` names it without loading them)."""
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(_alembic(None)).get_current_head())


def current(engine: Engine) -> str | None:
    """The database's revision (``None`` before the first migration)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(VERSION_TABLE):
            return None
        return conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` in one transaction; instances or workers starting
    together migrate once (PostgreSQL advisory lock; a lock file beside a SQLite database).

    With SQLite the whole of it runs under the lock file, the first connection (which turns WAL
    on) and the revision check included: workers opening a new database together otherwise race
    on the journal-mode change and the first write, and SQLite answers some of those races with
    an immediate "database is locked" instead of waiting (seen with ``--workers 2``)."""
    with _sqlite_lock(engine):
        _retry_locked(lambda: _upgrade(engine, revision))


def _upgrade(engine: Engine, revision: str) -> None:
    if revision == "head" and current(engine) == HEAD:
        return
    from alembic import command

    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7324110501)"))
        command.upgrade(_alembic(conn), revision)


def _retry_locked(step: Callable[[], None], patience: float = 30.0) -> None:
    """Run ``step``; while SQLite says "database is locked" without having waited (another
    process's reader or writer outside the lock file), run it again for up to ``patience``
    seconds. A migration is one transaction, so a failed attempt left nothing behind."""
    deadline = time.monotonic() + patience
    pause = 0.05
    while True:
        try:
            step()
            return
        except sa.exc.OperationalError as exc:
            if "database is locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


@contextlib.contextmanager
def _sqlite_lock(engine: Engine) -> Iterator[None]:
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        yield
        return
    with open(path + ".migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    with engine.begin() as conn:
        command.downgrade(_alembic(conn), revision)
