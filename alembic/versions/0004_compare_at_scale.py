"""Compare at scale: the cluster phase, components of the pair graph, the groups it decides.

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    ALTER TABLE job DROP CONSTRAINT job_phase_check;
    ALTER TABLE job ADD CONSTRAINT job_phase_check
        CHECK (phase IN ('hash', 'compare', 'cluster', 'finalize', 'done'));

    -- Each compare block's hashes packed once, when the compare phase starts (big-endian int8s,
    -- in id order; alt_ids[k] owns alt_hashes[k]): a worker reads a block as one row instead of
    -- thousands. Random hashes do not compress, so no compression is tried. Dropped at finalize.
    CREATE TABLE compare_block (
        job_id     bigint NOT NULL REFERENCES job (id) ON DELETE CASCADE,
        block      integer NOT NULL,
        files      integer NOT NULL,
        ids        bytea NOT NULL,
        hashes     bytea NOT NULL,
        alt_ids    bytea,
        alt_hashes bytea,
        PRIMARY KEY (job_id, block)
    );
    ALTER TABLE compare_block ALTER COLUMN ids SET STORAGE EXTERNAL,
        ALTER COLUMN hashes SET STORAGE EXTERNAL, ALTER COLUMN alt_ids SET STORAGE EXTERNAL,
        ALTER COLUMN alt_hashes SET STORAGE EXTERNAL;

    -- The connected component of the pair graph a file belongs to (numbered from 1, largest
    -- first); cluster work rows cover a range of component numbers in block_a..block_b.
    ALTER TABLE file ADD COLUMN component integer;
    CREATE INDEX file_component_idx ON file (job_id, component) WHERE component IS NOT NULL;

    -- The groups the cluster phase decided, one row per group, written with the work row that
    -- decided them; finalize numbers them into dup_group.
    CREATE TABLE cluster_group (
        job_id    bigint NOT NULL REFERENCES job (id) ON DELETE CASCADE,
        keeper_id bigint NOT NULL,
        members   bigint[] NOT NULL CHECK (cardinality(members) >= 2),
        reason    text NOT NULL,
        PRIMARY KEY (job_id, keeper_id)
    );
    """)


def downgrade() -> None:
    op.execute("""
    DROP TABLE cluster_group, compare_block;
    DROP INDEX file_component_idx;
    ALTER TABLE file DROP COLUMN component;
    ALTER TABLE job DROP CONSTRAINT job_phase_check;
    ALTER TABLE job ADD CONSTRAINT job_phase_check
        CHECK (phase IN ('hash', 'compare', 'finalize', 'done'));
    """)
