"""Deployments: endpoints and periodic (CRON) deployments of pipelines.

Revision ID: 0003_deployments
Revises: 0002_platform_objects
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_deployments"
down_revision = "0002_platform_objects"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("pipeline_name", sa.String(63), nullable=False),
        sa.Column("execution_rule", sa.String(16), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("endpoint_url_path", sa.String(63), nullable=True),
        sa.Column("endpoint_token", sa.String(256), nullable=True),
        sa.Column("endpoint_token_hash", sa.String(64), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("is_enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_deployments"),
        sa.ForeignKeyConstraint(
            ["pipeline_name"],
            ["pipelines.name"],
            name="fk_deployments_pipeline_name_pipelines",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("endpoint_url_path", name="uq_deployments_endpoint_url_path"),
    )
    op.create_index("ix_deployments_pipeline_name", "deployments", ["pipeline_name"])


def downgrade() -> None:
    op.drop_index("ix_deployments_pipeline_name", table_name="deployments")
    op.drop_table("deployments")
