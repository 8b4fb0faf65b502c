"""Lookups that let a job reuse stored hashes: by path (unchanged files) and by content digest.

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    -- Off (`--rehash`): every file is decoded again; byte-identical files in the job still share one decode.
    ALTER TABLE job ADD COLUMN reuse boolean NOT NULL DEFAULT true;
    -- The kind the submitter expects (algorithm, size, library versions, orientation mode): a worker
    -- whose libraries would hash differently refuses the job's rows rather than mix two kinds.
    ALTER TABLE job ADD COLUMN hash_kind text;
    -- A rescan looks up each file's latest stored hash by path, newest first, however many jobs
    -- hold the path: md5, because a btree entry must fit a third of a page and paths need not.
    CREATE INDEX file_reuse_idx ON file (md5(path), id) WHERE hash IS NOT NULL;
    -- Byte-identical files: the first decoded copy serves the others, in this job or a later one.
    CREATE INDEX file_digest_idx ON file USING hash (digest) WHERE digest IS NOT NULL;
    """)


def downgrade() -> None:
    op.execute("DROP INDEX file_digest_idx; DROP INDEX file_reuse_idx; ALTER TABLE job DROP COLUMN reuse, DROP COLUMN hash_kind;")
