"""Platform objects: SDK tokens, the signing key, pipelines and executions.

Revision ID: 0002_platform_objects
Revises: 0001_engine_objects
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_platform_objects"
down_revision = "0001_engine_objects"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_table(
        "signing_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_signing_keys"),
    )
    op.create_table(
        "pipelines",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("origin", sa.String(32), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("build_logs", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_pipelines"),
    )
    op.create_table(
        "executions",
        sa.Column("id", sa.String(253), nullable=False),
        sa.Column("pipeline_name", sa.String(63), nullable=False),
        sa.Column("deployment_name", sa.String(63), nullable=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("end_date", _TIME, nullable=True),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_executions"),
        sa.ForeignKeyConstraint(
            ["pipeline_name"],
            ["pipelines.name"],
            name="fk_executions_pipeline_name_pipelines",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_executions_pipeline_name_created_at", "executions", ["pipeline_name", "created_at"]
    )
    op.create_index("ix_executions_status", "executions", ["status"])


def downgrade() -> None:
    op.drop_index("ix_executions_status", table_name="executions")
    op.drop_index("ix_executions_pipeline_name_created_at", table_name="executions")
    op.drop_table("executions")
    op.drop_table("pipelines")
    op.drop_table("signing_keys")
    op.drop_table("api_tokens")
