"""Engine objects: workflows, workflow templates, cron workflows and step logs.

Revision ID: 0001_engine_objects
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_engine_objects"
down_revision = None
branch_labels = None
depends_on = None


def _named_object(name: str, *extra: sa.Column[object]) -> None:
    op.create_table(
        name,
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("uid", sa.String(36), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        *extra,
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=f"pk_{name}"),
        sa.UniqueConstraint("uid", name=f"uq_{name}_uid"),
    )


def upgrade() -> None:
    op.create_table(
        "workflows",
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("uid", sa.String(36), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("status", sa.JSON(), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_workflows"),
        sa.UniqueConstraint("uid", name="uq_workflows_uid"),
    )
    op.create_index("ix_workflows_phase", "workflows", ["phase"])
    op.create_index("ix_workflows_created_at", "workflows", ["created_at"])
    _named_object("workflow_templates")
    _named_object(
        "cron_workflows", sa.Column("last_scheduled_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_table(
        "step_logs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workflow_name", sa.String(253), nullable=False),
        sa.Column("node_id", sa.String(253), nullable=False),
        sa.Column("pod_name", sa.String(253), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stream", sa.String(6), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_step_logs"),
    )
    op.create_index("ix_step_logs_workflow_name_id", "step_logs", ["workflow_name", "id"])


def downgrade() -> None:
    op.drop_index("ix_step_logs_workflow_name_id", table_name="step_logs")
    op.drop_table("step_logs")
    op.drop_table("cron_workflows")
    op.drop_table("workflow_templates")
    op.drop_index("ix_workflows_created_at", table_name="workflows")
    op.drop_index("ix_workflows_phase", table_name="workflows")
    op.drop_table("workflows")
