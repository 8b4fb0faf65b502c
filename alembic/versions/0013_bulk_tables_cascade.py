"""Bulk-written tables lose their per-row key check on job; a job's deletion still takes them.

Revision ID: 0013
Revises: 0012
"""
from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# Tables written thousands of rows at a time. A foreign key checks every inserted row with its own
# lookup of the job: 8 of the 19 ms that inserting a 100,000-image job's 1,347 groups took, and
# 100,000 lookups when a scan submits its files. Their rows are only ever written in a transaction
# that holds a row of the same job (the submit that creates it, or the claim of a work row, whose
# own key still holds), so the check proves nothing the writes do not. What the keys also gave,
# deleting a job's rows with the job, a statement trigger keeps.
BULK = ("file", "pair", "dup_group", "cluster_group", "file_component")


def upgrade() -> None:
    drops = "\n".join(f"ALTER TABLE {t} DROP CONSTRAINT {t}_job_id_fkey;" for t in BULK)
    deletes = "\n".join(f"    DELETE FROM {t} WHERE job_id IN (SELECT id FROM gone);" for t in BULK)
    op.execute(f"""
    {drops}
    CREATE FUNCTION delete_job_rows() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
    {deletes}
        RETURN NULL;
    END $$;
    CREATE TRIGGER job_deleted AFTER DELETE ON job
        REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION delete_job_rows();
    -- Packed blocks are mostly random hashes: compressing them on write and decompressing on
    -- every read bought nothing.
    ALTER TABLE compare_block ALTER COLUMN ids SET STORAGE EXTERNAL,
        ALTER COLUMN hashes SET STORAGE EXTERNAL, ALTER COLUMN alt_ids SET STORAGE EXTERNAL,
        ALTER COLUMN alt_hashes SET STORAGE EXTERNAL;
    """)


def downgrade() -> None:
    adds = "\n".join(
        f"ALTER TABLE {t} ADD CONSTRAINT {t}_job_id_fkey FOREIGN KEY (job_id) REFERENCES job(id) ON DELETE CASCADE;"
        for t in BULK)
    op.execute(f"""
    DROP TRIGGER job_deleted ON job;
    DROP FUNCTION delete_job_rows();
    {adds}
    ALTER TABLE compare_block ALTER COLUMN ids SET STORAGE EXTENDED,
        ALTER COLUMN hashes SET STORAGE EXTENDED, ALTER COLUMN alt_ids SET STORAGE EXTENDED,
        ALTER COLUMN alt_hashes SET STORAGE EXTENDED;
    """)
