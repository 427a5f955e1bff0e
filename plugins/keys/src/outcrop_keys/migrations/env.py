"""Alembic environment: the connection comes from ``outcrop_keys.db.migrate`` (never a URL
read from a file), so ``outcrop db upgrade`` and start-up migrate the same database."""

from __future__ import annotations

from alembic import context

from outcrop_keys.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection, target_metadata=metadata, version_table="outcrop_alembic_version"
)
with context.begin_transaction():
    context.run_migrations()
