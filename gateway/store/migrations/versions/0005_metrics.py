"""Metrics recorded by executions, and samples of what executions used (resource metrics).

Revision ID: 0005_metrics
Revises: 0004_merge_features
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_metrics"
down_revision = "0004_merge_features"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "metric_values",
        sa.Column(
            "execution_id",
            sa.String(253),
            sa.ForeignKey(
                "executions.id",
                ondelete="CASCADE",
                name="fk_metric_values_execution_id_executions",
            ),
            nullable=False,
        ),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("execution_id", "name", name="pk_metric_values"),
    )
    op.create_table(
        "metric_list_batches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column(
            "execution_id",
            sa.String(253),
            sa.ForeignKey(
                "executions.id",
                ondelete="CASCADE",
                name="fk_metric_list_batches_execution_id_executions",
            ),
            nullable=False,
        ),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_metric_list_batches"),
    )
    op.create_index(
        "ix_metric_list_batches_execution_id_name_id",
        "metric_list_batches",
        ["execution_id", "name", "id"],
    )
    op.create_table(
        "resource_samples",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("worker", sa.String(253), nullable=False),
        sa.Column("taken_at", _TIME, nullable=False),
        sa.Column("cpu_usage", sa.Float(), nullable=False),
        sa.Column("ram_usage", sa.Float(), nullable=False),
        sa.Column("disk_usage", sa.Float(), nullable=False),
        sa.Column("network_input", sa.Float(), nullable=False),
        sa.Column("network_output", sa.Float(), nullable=False),
        sa.Column("total_ram", sa.BigInteger(), nullable=False),
        sa.Column("total_disk", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_resource_samples"),
    )
    op.create_index("ix_resource_samples_taken_at", "resource_samples", ["taken_at"])


def downgrade() -> None:
    op.drop_index("ix_resource_samples_taken_at", "resource_samples")
    op.drop_table("resource_samples")
    op.drop_index("ix_metric_list_batches_execution_id_name_id", "metric_list_batches")
    op.drop_table("metric_list_batches")
    op.drop_table("metric_values")
