"""Thumbnails kept with hashes, and a job's looser bound for pairs its thumbnails confirm.

Revision ID: 0018
Revises: 0017
"""
from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    -- The 32x32 grayscale thumbnail pHash reads, canonical orientation, 1 KiB (neardup.verify).
    -- NULL for hashes stored before it was kept, and imported ones: such a file is never verified.
    ALTER TABLE file ADD COLUMN thumb bytea;
    -- Pairs past the threshold but within verify_up_to bits are kept when their thumbnails
    -- correlate; they are the pair rows whose distance is over the threshold. A job made before
    -- (or with verify_up_to at its threshold) keeps only pairs within the threshold.
    ALTER TABLE job ADD COLUMN verify_up_to integer NOT NULL DEFAULT 0
        CHECK (verify_up_to BETWEEN 0 AND 64);
    """)


def downgrade() -> None:
    op.execute("""
    ALTER TABLE job DROP COLUMN verify_up_to;
    ALTER TABLE file DROP COLUMN thumb;
    """)
