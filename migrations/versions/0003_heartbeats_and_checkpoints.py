"""heartbeats, attempts and bundle checkpoints, for crash-safe resumable training

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkpoints")),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("checkpoint_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_runs_checkpoint_id_checkpoints"),
            "checkpoints",
            ["checkpoint_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("runs") as batch:
        batch.alter_column("attempts", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint(batch.f("fk_runs_checkpoint_id_checkpoints"), type_="foreignkey")
        batch.drop_column("checkpoint_id")
        batch.drop_column("attempts")
        batch.drop_column("heartbeat_at")
    op.drop_table("checkpoints")
