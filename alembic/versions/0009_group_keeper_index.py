"""An index under dup_group's keeper foreign key: deleting a job must not scan every group per file.

Revision ID: 0009
Revises: 0008
"""
from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    -- DELETE FROM job cascades to its files, and each deleted file looks up the groups it keeps
    -- (ON DELETE CASCADE on dup_group.keeper_id): without this index, one scan of dup_group per
    -- file, so an administrator's DELETE of a million-file job ran for hours.
    CREATE INDEX dup_group_keeper_idx ON dup_group (keeper_id);
    """)


def downgrade() -> None:
    op.execute("DROP INDEX dup_group_keeper_idx;")
