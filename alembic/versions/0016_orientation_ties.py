"""Each file's orientation ties: the walls it is near and the wall each alternative crossed.

Revision ID: 0016
Revises: 0015
"""
from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    -- ties: neardup.orientation.pack_ties. NULL for hashes stored before it: such a file counts as
    -- near every wall, and its alternatives meet every canonical hash, as they did.
    ALTER TABLE file ADD COLUMN ties integer;
    -- One int4 per file of the block, in the order of ids. Not compressed: trying to compress
    -- them cost 3 ms a 25,000-file block (15.9 against 12.5 ms to pack it), for 100 KB.
    ALTER TABLE compare_block ADD COLUMN ties bytea;
    ALTER TABLE compare_block ALTER COLUMN ties SET STORAGE EXTERNAL;
    """)


def downgrade() -> None:
    op.execute("ALTER TABLE compare_block DROP COLUMN ties; ALTER TABLE file DROP COLUMN ties;")
