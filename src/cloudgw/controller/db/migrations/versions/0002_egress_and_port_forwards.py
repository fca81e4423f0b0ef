"""egress and port forwards

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 22:20:27.454198
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "egress",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("network_id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("via_site_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["network_id"], ["networks.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["via_site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("site_id", "network_id", name="uq_egress_site_network"),
    )
    with op.batch_alter_table("egress", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_egress_network_id"), ["network_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_egress_site_id"), ["site_id"], unique=False)

    op.create_table(
        "forwards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("gateway_id", sa.Integer(), nullable=False),
        sa.Column("protocol", sa.String(length=3), nullable=False),
        sa.Column("public_port", sa.Integer(), nullable=False),
        sa.Column("target_ip", sa.String(length=15), nullable=False),
        sa.Column("target_port", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["gateway_id"], ["gateways.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("gateway_id", "protocol", "public_port", name="uq_forward_public_port"),
        sa.UniqueConstraint("name"),
    )
    with op.batch_alter_table("forwards", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_forwards_gateway_id"), ["gateway_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("forwards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_forwards_gateway_id"))

    op.drop_table("forwards")
    with op.batch_alter_table("egress", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_egress_site_id"))
        batch_op.drop_index(batch_op.f("ix_egress_network_id"))

    op.drop_table("egress")
