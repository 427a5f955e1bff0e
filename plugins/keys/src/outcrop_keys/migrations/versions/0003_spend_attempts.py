"""Spend rows record a call's upstream attempts when it made more than one (``attempts``).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outcrop_spend_logs") as batch:
        batch.add_column(sa.Column("attempts", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("outcrop_spend_logs") as batch:
        batch.drop_column("attempts")
