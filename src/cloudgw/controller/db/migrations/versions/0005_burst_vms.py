"""burst VMs, decisions and the loop's state

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 10:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "burst_vms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("policy", sa.String(length=63), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("network_id", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(length=15), nullable=False),
        sa.Column("instance", sa.String(length=128), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("launched_at", sa.Float(), nullable=False),
        sa.Column("drain_until", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["network_id"], ["networks.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("network_id", "ip", name="uq_burst_vm_address"),
    )
    with op.batch_alter_table("burst_vms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_burst_vms_policy"), ["policy"], unique=False)
        batch_op.create_index(batch_op.f("ix_burst_vms_site_id"), ["site_id"], unique=False)
    op.create_table(
        "burst_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("policy", sa.String(length=63), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("demand", sa.Float(), nullable=True),
        sa.Column("vms", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("change", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("burst_decisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_burst_decisions_policy"), ["policy"], unique=False)
    op.create_table(
        "burst_state",
        sa.Column("policy", sa.String(length=63), nullable=False),
        sa.Column("memory", sa.JSON(), nullable=False),
        sa.Column("demand", sa.Float(), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("checked_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("policy"),
    )


def downgrade() -> None:
    op.drop_table("burst_state")
    with op.batch_alter_table("burst_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_burst_decisions_policy"))
    op.drop_table("burst_decisions")
    with op.batch_alter_table("burst_vms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_burst_vms_site_id"))
        batch_op.drop_index(batch_op.f("ix_burst_vms_policy"))
    op.drop_table("burst_vms")
