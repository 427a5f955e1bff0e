"""Keys, teams, spend logs, change counter.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    meta = op.create_table(
        "outcrop_meta",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(meta, [{"name": "seq", "value": 0}])
    op.create_table(
        "outcrop_teams",
        sa.Column("team_id", sa.String(64), primary_key=True),
        sa.Column("team_alias", sa.String(256)),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("max_budget", sa.Float),
        sa.Column("spend", sa.Float, nullable=False),
        sa.Column("budget_duration", sa.String(16)),
        sa.Column("budget_reset_at", _TS),
        sa.Column("tpm_limit", sa.BigInteger),
        sa.Column("rpm_limit", sa.BigInteger),
        sa.Column("max_parallel_requests", sa.Integer),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("blocked", sa.Boolean, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_outcrop_teams_seq", "outcrop_teams", ["seq"])
    op.create_table(
        "outcrop_keys",
        sa.Column("token", sa.String(64), primary_key=True),
        sa.Column("key_name", sa.String(32), nullable=False),
        sa.Column("key_alias", sa.String(256), unique=True),
        sa.Column("team_id", sa.String(64)),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("max_budget", sa.Float),
        sa.Column("spend", sa.Float, nullable=False),
        sa.Column("budget_duration", sa.String(16)),
        sa.Column("budget_reset_at", _TS),
        sa.Column("expires", _TS),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("rpm_limit", sa.BigInteger),
        sa.Column("tpm_limit", sa.BigInteger),
        sa.Column("max_parallel_requests", sa.Integer),
        sa.Column("allowed_routes", sa.JSON, nullable=False),
        sa.Column("admin", sa.Boolean, nullable=False),
        sa.Column("blocked", sa.Boolean, nullable=False),
        sa.Column("aws_access_key_id", sa.String(32), unique=True),
        sa.Column("aws_secret_encrypted", sa.String(256)),
        sa.Column("created_by", sa.String(64)),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_outcrop_keys_team_id", "outcrop_keys", ["team_id"])
    op.create_index("ix_outcrop_keys_seq", "outcrop_keys", ["seq"])
    op.create_table(
        "outcrop_tombstones",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("ref", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_outcrop_tombstones_seq", "outcrop_tombstones", ["seq"])
    op.create_table(
        "outcrop_spend_logs",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("start_time", _TS, nullable=False),
        sa.Column("end_time", _TS, nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.Column("api_key", sa.String(64)),
        sa.Column("key_alias", sa.String(256)),
        sa.Column("auth", sa.String(32)),
        sa.Column("team_id", sa.String(64)),
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
        sa.Column("messages", sa.JSON),
        sa.Column("response", sa.JSON),
    )
    for column in ("request_id", "start_time", "api_key", "team_id"):
        op.create_index(f"ix_outcrop_spend_logs_{column}", "outcrop_spend_logs", [column])


def downgrade() -> None:
    for table in (
        "outcrop_spend_logs",
        "outcrop_tombstones",
        "outcrop_keys",
        "outcrop_teams",
        "outcrop_meta",
    ):
        op.drop_table(table)
