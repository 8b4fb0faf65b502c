"""Finalize works in rows (one per range of components): a group's number is its first member's id.

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    -- Each finalize row numbers its own groups with no count of the others, so a number is a file
    -- id, and file ids are bigint.
    ALTER TABLE dup_group ALTER COLUMN group_no TYPE bigint;
    ALTER TABLE file ALTER COLUMN group_no TYPE bigint;
    """)


def downgrade() -> None:
    op.execute("""
    ALTER TABLE file ALTER COLUMN group_no TYPE integer;
    ALTER TABLE dup_group ALTER COLUMN group_no TYPE integer;
    """)
