"""Indexes for a replica catching up: audit rows by revision, gateways by document revision

A replica that finds another's writes reads the audit rows after its revision and the gateways whose
document changed since; without these indexes both were a scan of the whole table (the audit log
grows with every write until pruned; 10,000 gateways at scale), most of a catch-up at 10,000 pools.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 04:30:00
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_revision", "audit", ["revision"])
    op.create_index("ix_gateways_doc_revision", "gateways", ["doc_revision"])


def downgrade() -> None:
    op.drop_index("ix_gateways_doc_revision", table_name="gateways")
    op.drop_index("ix_audit_revision", table_name="audit")
