"""The lines low-latency workers write (pod logs and their calls' execution logs).

Revision ID: 0006_worker_logs
Revises: 0005_metrics
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_worker_logs"
down_revision = "0005_metrics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_logs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("deployment_name", sa.String(63), nullable=True),
        sa.Column("pod_id", sa.String(253), nullable=False),
        sa.Column("execution_id", sa.String(253), nullable=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stream", sa.String(6), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_worker_logs"),
    )
    op.create_index("ix_worker_logs_deployment_name_id", "worker_logs", ["deployment_name", "id"])
    op.create_index("ix_worker_logs_execution_id_id", "worker_logs", ["execution_id", "id"])


def downgrade() -> None:
    op.drop_table("worker_logs")
