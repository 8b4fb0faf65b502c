"""fail_work_files reads the files of its rows through file_work_idx, whatever the table's size.

Revision ID: 0014
Revises: 0013
"""
from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# A SQL function's statements are planned without its arguments' values. Joined to
# unnest(work_ids, errors), the files of the rows were found by a scan of the whole file table
# once it held a few million rows (13-120 ms a call with 3 million, and every monitor tick made
# one). As `work_id = ANY(work_ids)` they are index probes: under a millisecond.
BODY = """
    WITH failed AS (
        UPDATE file f SET status = 'failed', error = errors[array_position(work_ids, f.work_id)]
        WHERE f.work_id = ANY(work_ids) AND f.status = 'pending'
        RETURNING f.id, f.job_id, f.path, f.error
    ), locked AS (
        SELECT id FROM job WHERE id IN (SELECT job_id FROM failed) ORDER BY id FOR NO KEY UPDATE
    ), events AS (
        INSERT INTO event (job_id, kind, phase, data)
        SELECT l.id, 'file_failed', 'hash', jsonb_build_object('file', ff.id, 'path', ff.path, 'error', ff.error)
        FROM failed ff JOIN locked l ON l.id = ff.job_id
        ORDER BY ff.id
        RETURNING 1
    )
    SELECT count(*) FROM events
"""

OLD_BODY = BODY.replace(
    """UPDATE file f SET status = 'failed', error = errors[array_position(work_ids, f.work_id)]
        WHERE f.work_id = ANY(work_ids) AND f.status = 'pending'""",
    """UPDATE file f SET status = 'failed', error = v.error
        FROM unnest(work_ids, errors) AS v(work_id, error)
        WHERE f.work_id = v.work_id AND f.status = 'pending'""")


def _define(body: str) -> None:
    op.execute(f"""
    CREATE OR REPLACE FUNCTION fail_work_files(work_ids bigint[], errors text[]) RETURNS bigint
    LANGUAGE sql AS $${body}$$;
    """)


def upgrade() -> None:
    _define(BODY)


def downgrade() -> None:
    _define(OLD_BODY)
