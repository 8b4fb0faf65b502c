"""fail_work_files reads the files of its rows through file_work_idx, whatever the table's size.

Revision ID: 0014
Revises: 0013
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# A SQL function's statements are planned without its arguments' values. Joined to
# unnest(work_ids, errors), the files of the rows were found by a scan of the whole file table
# once it held a few million rows (13-120 ms a call with 3 million, and every monitor tick made
# one). As `work_id = ANY(work_ids)` they are index probes: under a millisecond. Only that
# statement changes; the rest of the function is 0003's, read from there.
JOINED = """UPDATE file f SET status = 'failed', error = v.error
        FROM unnest(work_ids, errors) AS v(work_id, error)
        WHERE f.work_id = v.work_id AND f.status = 'pending'"""
PROBED = """UPDATE file f SET status = 'failed', error = errors[array_position(work_ids, f.work_id)]
        WHERE f.work_id = ANY(work_ids) AND f.status = 'pending'"""


def _original() -> str:
    """0003's CREATE FUNCTION fail_work_files statement, as 0003 ran it."""
    path = Path(__file__).with_name("0003_progress_events.py")
    spec = importlib.util.spec_from_file_location("neardup_rev_0003", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    start = module.SCHEMA.index("CREATE FUNCTION fail_work_files")
    end = module.SCHEMA.index("$$;", start) + len("$$;")
    statement = module.SCHEMA[start:end]
    if JOINED not in statement:
        raise RuntimeError("0003's fail_work_files is not the one this revision rewrites")
    return statement.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def upgrade() -> None:
    op.execute(_original().replace(JOINED, PROBED))


def downgrade() -> None:
    op.execute(_original())
