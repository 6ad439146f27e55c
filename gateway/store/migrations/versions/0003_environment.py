"""Environment variables (the data store keeps its objects in storage, not here).

Revision ID: 0003_environment
Revises: 0002_platform_objects
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_environment"
down_revision = "0002_platform_objects"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "environment_variables",
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_environment_variables"),
    )


def downgrade() -> None:
    op.drop_table("environment_variables")
