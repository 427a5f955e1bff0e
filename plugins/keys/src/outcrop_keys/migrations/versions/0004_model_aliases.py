"""Model aliases: a key's ``aliases`` and a team's ``model_aliases`` (LiteLLM's).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outcrop_keys") as batch:
        batch.add_column(sa.Column("aliases", sa.JSON))
    with op.batch_alter_table("outcrop_teams") as batch:
        batch.add_column(sa.Column("model_aliases", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("outcrop_teams") as batch:
        batch.drop_column("model_aliases")
    with op.batch_alter_table("outcrop_keys") as batch:
        batch.drop_column("aliases")
