"""A small job compares every orientation of its hashes at the threshold.

Revision ID: 0019
Revises: 0018
"""
from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    -- Set at submit by the job's size (neardup.hashspec.ALL_TURNS_UP_TO): its compare rows then
    -- also meet each image's sign hash in the 7 other orientations, a little within the threshold, which
    -- finds the copies whose canonical orientations went apart. Jobs made before compare as they did.
    ALTER TABLE job ADD COLUMN all_turns boolean NOT NULL DEFAULT false;
    """)


def downgrade() -> None:
    op.execute("ALTER TABLE job DROP COLUMN all_turns;")
