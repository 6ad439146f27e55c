"""Join the two feature migrations made side by side (deployments; environment and data store).

Revision ID: 0004_merge_features
Revises: 0003_deployments, 0003_environment
Create Date: 2026-11-28
"""

from __future__ import annotations

revision = "0004_merge_features"
down_revision = ("0003_deployments", "0003_environment")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
