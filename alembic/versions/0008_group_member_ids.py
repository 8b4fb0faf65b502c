"""A group lists its members itself: finalizing must not rewrite every grouped file and its indexes.

Revision ID: 0008
Revises: 0007
"""
from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    -- Marking members by UPDATE file SET group_no rewrote each grouped file with an entry in every
    -- index of file: most of a finalize row's time. The group row carries its member ids instead.
    ALTER TABLE dup_group ADD COLUMN member_ids bigint[];
    UPDATE dup_group g SET member_ids = m.ids
    FROM (SELECT job_id, group_no, array_agg(id ORDER BY id) AS ids
          FROM file WHERE group_no IS NOT NULL GROUP BY job_id, group_no) m
    WHERE m.job_id = g.job_id AND m.group_no = g.group_no;
    UPDATE dup_group SET member_ids = ARRAY[keeper_id] WHERE member_ids IS NULL;
    ALTER TABLE dup_group ALTER COLUMN member_ids SET NOT NULL;
    ALTER TABLE file DROP COLUMN group_no;
    """)


def downgrade() -> None:
    op.execute("""
    ALTER TABLE file ADD COLUMN group_no bigint;
    UPDATE file f SET group_no = g.group_no
    FROM dup_group g CROSS JOIN LATERAL unnest(g.member_ids) AS x(id)
    WHERE f.id = x.id;
    ALTER TABLE dup_group DROP COLUMN member_ids;
    """)
