"""cloud providers: a site's cloud identity, the endpoints its cloud lists, the reconciler's status

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cloud", sa.Text(), nullable=False, server_default=""))
    op.create_table(
        "cloud_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("network_id", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(length=15), nullable=False),
        sa.Column("mac", sa.String(length=17), nullable=True),
        sa.ForeignKeyConstraint(["network_id"], ["networks.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("site_id", "network_id", "ip", name="uq_cloud_endpoint"),
    )
    with op.batch_alter_table("cloud_endpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cloud_endpoints_network_id"), ["network_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cloud_endpoints_site_id"), ["site_id"], unique=False)
    op.create_table(
        "provider_status",
        sa.Column("site", sa.String(length=63), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("cloud", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("owned", sa.JSON(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("site"),
    )


def downgrade() -> None:
    op.drop_table("provider_status")
    with op.batch_alter_table("cloud_endpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cloud_endpoints_site_id"))
        batch_op.drop_index(batch_op.f("ix_cloud_endpoints_network_id"))
    op.drop_table("cloud_endpoints")
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_column("cloud")
