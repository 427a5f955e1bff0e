"""The tables (SQLAlchemy Core). Changes go through a new Alembic revision in ``migrations/``."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

#: One row, ``seq``: bumped by every change to keys, teams or spend totals, so each instance
#: reloads only what changed (``seq`` columns below) by polling one integer.
meta = sa.Table(
    "outcrop_meta",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

teams = sa.Table(
    "outcrop_teams",
    metadata,
    sa.Column("team_id", sa.String(64), primary_key=True),
    sa.Column("team_alias", sa.String(256)),
    sa.Column("models", sa.JSON, nullable=False),
    sa.Column("max_budget", sa.Float),
    sa.Column("spend", sa.Float, nullable=False, default=0.0),
    sa.Column("budget_duration", sa.String(16)),
    sa.Column("budget_reset_at", sa.DateTime(timezone=True)),
    sa.Column("tpm_limit", sa.BigInteger),
    sa.Column("rpm_limit", sa.BigInteger),
    sa.Column("max_parallel_requests", sa.Integer),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("blocked", sa.Boolean, nullable=False, default=False),
    sa.Column("model_aliases", sa.JSON),  # {name the caller sends: name served}
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False, index=True),
)

keys = sa.Table(
    "outcrop_keys",
    metadata,
    sa.Column("token", sa.String(64), primary_key=True),  # SHA-256 hex of the key
    sa.Column("key_name", sa.String(32), nullable=False),  # "sk-...abcd": enough to recognise it
    sa.Column("key_alias", sa.String(256), unique=True),
    sa.Column("team_id", sa.String(64), index=True),
    sa.Column("models", sa.JSON, nullable=False),
    sa.Column("max_budget", sa.Float),
    sa.Column("spend", sa.Float, nullable=False, default=0.0),
    sa.Column("budget_duration", sa.String(16)),
    sa.Column("budget_reset_at", sa.DateTime(timezone=True)),
    sa.Column("expires", sa.DateTime(timezone=True)),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("rpm_limit", sa.BigInteger),
    sa.Column("tpm_limit", sa.BigInteger),
    sa.Column("max_parallel_requests", sa.Integer),
    sa.Column("model_rpm_limit", sa.JSON),  # {model name: requests per minute}
    sa.Column("model_tpm_limit", sa.JSON),  # {model name: tokens per minute}
    sa.Column("allowed_routes", sa.JSON, nullable=False),
    sa.Column("aliases", sa.JSON),  # {name the caller sends: name served}
    sa.Column("admin", sa.Boolean, nullable=False, default=False),
    sa.Column("blocked", sa.Boolean, nullable=False, default=False),
    sa.Column("aws_access_key_id", sa.String(32), unique=True),
    sa.Column("aws_secret_encrypted", sa.String(256)),  # AES-GCM, never plaintext
    sa.Column("created_by", sa.String(64)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False, index=True),
)

#: Deleted keys and teams, so other instances drop them from their caches.
tombstones = sa.Table(
    "outcrop_tombstones",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("kind", sa.String(8), nullable=False),  # "key" | "team"
    sa.Column("ref", sa.String(64), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False, index=True),
)

spend_logs = sa.Table(
    "outcrop_spend_logs",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("request_id", sa.String(128), nullable=False, index=True),
    sa.Column("start_time", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),  # written to the store
    sa.Column("api_key", sa.String(64), index=True),  # the key's SHA-256 hex
    sa.Column("key_alias", sa.String(256)),
    sa.Column("auth", sa.String(32)),  # master_key | virtual_key | sigv4_key | sigv4 | open
    sa.Column("team_id", sa.String(64), index=True),
    sa.Column("model", sa.String(512), nullable=False),
    sa.Column("deployment", sa.String(256)),
    sa.Column("provider_model", sa.String(512)),
    sa.Column("surface", sa.String(32), nullable=False),
    sa.Column("path", sa.String(1024), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("stream", sa.Boolean, nullable=False),
    sa.Column("prompt_tokens", sa.BigInteger),
    sa.Column("completion_tokens", sa.BigInteger),
    sa.Column("total_tokens", sa.BigInteger),
    sa.Column("cache_read_tokens", sa.BigInteger),
    sa.Column("cache_write_tokens", sa.BigInteger),
    sa.Column("spend", sa.Float, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("client_ip", sa.String(64)),
    sa.Column("user_agent", sa.String(512)),
    sa.Column("error", sa.String(1024)),
    # none_as_null: an absent value is SQL NULL, written without a JSON encoding per row (the
    # three took a third of a spend batch's write)
    #: [{deployment, status, latency_ms, error, region}] when the router made several attempts
    sa.Column("attempts", sa.JSON(none_as_null=True)),
    sa.Column("messages", sa.JSON(none_as_null=True)),  # only with store_prompts_in_spend_logs
    sa.Column("response", sa.JSON(none_as_null=True)),
)
