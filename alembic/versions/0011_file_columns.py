"""file.work_id without a foreign key (work rows and files are only ever deleted together), and
file.block dropped (compare blocks are id ranges now).

Revision ID: 0011
Revises: 0010
"""
from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    -- A file's work_id names the hash row that owns it. The key's check cost every inserted file a
    -- trigger call (a quarter of inserting a rescan's file rows), and its ON DELETE SET NULL made
    -- deleting a big job rewrite every file row it was about to delete. Work rows are deleted only
    -- with their job (ON DELETE CASCADE), which deletes the job's files in the same statement, so
    -- the link cannot dangle. file_work_idx stays: files_of_work reads through it.
    ALTER TABLE file DROP CONSTRAINT file_work_id_fkey;
    -- Left from the foundation's compare, which numbered every file into a block: nothing has
    -- written or read it since compare_block (0004).
    DROP INDEX file_block_idx;
    ALTER TABLE file DROP COLUMN block;
    """)


def downgrade() -> None:
    op.execute("""
    ALTER TABLE file ADD COLUMN block integer;
    CREATE INDEX file_block_idx ON file (job_id, block) INCLUDE (hash) WHERE block IS NOT NULL;
    ALTER TABLE file ADD CONSTRAINT file_work_id_fkey
        FOREIGN KEY (work_id) REFERENCES work (id) ON DELETE SET NULL;
    """)
