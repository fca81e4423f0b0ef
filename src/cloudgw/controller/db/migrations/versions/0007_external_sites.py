"""external sites (a stock WireGuard router, no agent) and their routed prefixes

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 13:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=10), nullable=False, server_default="cloudgw"))
        batch_op.add_column(sa.Column("routed", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("routed_via", sa.String(length=15), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_column("routed_via")
        batch_op.drop_column("routed")
        batch_op.drop_column("kind")
