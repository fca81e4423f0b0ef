"""HA pairs: a gateway's priority and role, a site's HA timing

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 12:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ha", sa.JSON(), nullable=True))
    with op.batch_alter_table("gateways", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="100"))
        batch_op.add_column(sa.Column("role", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("role_epoch", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("role_reason", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("role_since", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("lease_until", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gateways", schema=None) as batch_op:
        for column in ("lease_until", "role_since", "role_reason", "role_epoch", "role", "priority"):
            batch_op.drop_column(column)
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_column("ha")
