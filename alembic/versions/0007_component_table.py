"""Components in a table of their own: labelling a file must not rewrite it and its eight indexes.

Revision ID: 0007
Revises: 0006
"""
from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    -- Which component of the pair graph a file is in. An UPDATE of file.component rewrote each row
    -- with an entry in every index of file (about 40 us a file); a narrow insert-only table is a
    -- tenth of that, and the cluster and finalize rows read it by range of components.
    CREATE TABLE file_component (
        job_id    bigint NOT NULL REFERENCES job (id) ON DELETE CASCADE,
        component integer NOT NULL,
        file_id   bigint NOT NULL,
        PRIMARY KEY (job_id, component, file_id)
    );
    INSERT INTO file_component (job_id, component, file_id)
    SELECT job_id, component, id FROM file WHERE component IS NOT NULL;
    DROP INDEX file_component_idx;
    ALTER TABLE file DROP COLUMN component;
    """)


def downgrade() -> None:
    op.execute("""
    ALTER TABLE file ADD COLUMN component integer;
    UPDATE file f SET component = c.component FROM file_component c WHERE f.id = c.file_id;
    CREATE INDEX file_component_idx ON file (job_id, component) WHERE component IS NOT NULL;
    DROP TABLE file_component;
    """)
