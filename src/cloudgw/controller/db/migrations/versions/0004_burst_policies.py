"""burst policies

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 10:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "burst_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("network_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["network_id"], ["networks.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    with op.batch_alter_table("burst_policies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_burst_policies_network_id"), ["network_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_burst_policies_site_id"), ["site_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("burst_policies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_burst_policies_site_id"))
        batch_op.drop_index(batch_op.f("ix_burst_policies_network_id"))
    op.drop_table("burst_policies")
