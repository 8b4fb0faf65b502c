"""Compare blocks packed in one scan of their files; groups' keepers without a foreign key.

Revision ID: 0012
Revises: 0011
"""
from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    -- compare_block.alt_ids now holds one (int8 file id, int4 count) record per file that has
    -- alternatives, and alt_hashes those files' array_send() output, back to back: one scan of the
    -- block's files packs it, where the per-hash layout needed a second scan through unnest
    -- (24 ms a 25,000-file block, against 11). Blocks packed before are unpacked, so that the
    -- workers of a job in flight pack them again in the new layout.
    UPDATE compare_block SET ids = NULL, hashes = NULL, alt_ids = NULL, alt_hashes = NULL;
    -- A group's keeper is one of its job's files, and files are deleted only with their job,
    -- which deletes its groups in the same statement: the key's per-row check was 45 % of
    -- inserting a job's groups (12 of 26 ms for 1,347 groups). The index under the key (0009)
    -- only served its cascade; nothing else reads groups by keeper.
    ALTER TABLE dup_group DROP CONSTRAINT dup_group_keeper_id_fkey;
    DROP INDEX dup_group_keeper_idx;
    """)


def downgrade() -> None:
    op.execute("""
    UPDATE compare_block SET ids = NULL, hashes = NULL, alt_ids = NULL, alt_hashes = NULL;
    CREATE INDEX dup_group_keeper_idx ON dup_group (keeper_id);
    ALTER TABLE dup_group ADD CONSTRAINT dup_group_keeper_id_fkey
        FOREIGN KEY (keeper_id) REFERENCES file(id) ON DELETE CASCADE;
    """)
