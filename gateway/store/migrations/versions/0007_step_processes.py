"""Step processes recorded while they run, and a Workflow's template spec kept apart from status.

The embedded engine records each step's process group, so that an engine started after a crash
kills what the previous one left running. A Workflow's `storedWorkflowTemplateSpec` never changes
after submission: keeping it in its own column keeps it out of every status write.

Revision ID: 0007_step_processes
Revises: 0006_worker_logs
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_step_processes"
down_revision = "0006_worker_logs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "step_processes",
        sa.Column("workflow_name", sa.String(253), nullable=False),
        sa.Column("node_id", sa.String(253), nullable=False),
        sa.Column("workflow_uid", sa.String(36), nullable=False),
        sa.Column("pgid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workflow_name", "node_id", name="pk_step_processes"),
    )
    with op.batch_alter_table("workflows") as batch:
        batch.add_column(sa.Column("template_spec", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workflows") as batch:
        batch.drop_column("template_spec")
    op.drop_table("step_processes")
