"""Compare blocks packed by the workers that first need them, not all at the compare transition.

Revision ID: 0010
Revises: 0009
"""
from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    -- The transition only cuts the job's hashed files into id ranges (a block is the files of
    -- the job between first_id and last_id); packing 100,000 hashes took it a quarter of a
    -- second on one thread while every worker waited. ids/hashes stay NULL until a worker packs
    -- the block.
    ALTER TABLE compare_block ADD COLUMN first_id bigint, ADD COLUMN last_id bigint,
        ALTER COLUMN ids DROP NOT NULL, ALTER COLUMN hashes DROP NOT NULL;
    """)


def downgrade() -> None:
    op.execute("""
    UPDATE compare_block c SET ids = coalesce(p.ids, ''::bytea), hashes = coalesce(p.hashes, ''::bytea),
                               alt_ids = a.alt_ids, alt_hashes = a.alt_hashes
    FROM compare_block t
    CROSS JOIN LATERAL (
        SELECT string_agg(int8send(f.id), ''::bytea) AS ids, string_agg(int8send(f.hash), ''::bytea) AS hashes
        FROM file f WHERE f.job_id = t.job_id AND f.id BETWEEN t.first_id AND t.last_id
          AND f.status IN ('hashed', 'skipped') AND f.hash IS NOT NULL) p
    CROSS JOIN LATERAL (
        SELECT string_agg(int8send(f.id), ''::bytea) AS alt_ids, string_agg(int8send(x.h), ''::bytea) AS alt_hashes
        FROM file f CROSS JOIN LATERAL unnest(f.alt_hashes) AS x(h)
        WHERE f.job_id = t.job_id AND f.id BETWEEN t.first_id AND t.last_id
          AND f.status IN ('hashed', 'skipped') AND f.hash IS NOT NULL) a
    WHERE c.ids IS NULL AND c.job_id = t.job_id AND c.block = t.block;
    ALTER TABLE compare_block DROP COLUMN first_id, DROP COLUMN last_id,
        ALTER COLUMN ids SET NOT NULL, ALTER COLUMN hashes SET NOT NULL;
    """)
