"""The stored hash form shared by hashing and comparing: kind, orientation alternatives, digest.

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    ALTER TABLE job
        ADD COLUMN hash_algo text NOT NULL DEFAULT 'phash'
            CHECK (hash_algo IN ('phash', 'dhash', 'ahash', 'whash')),
        ADD COLUMN hash_size integer NOT NULL DEFAULT 8 CHECK (hash_size >= 2),
        ADD COLUMN rotations boolean NOT NULL DEFAULT true;

    -- file.hash is the hash of the image in its canonical orientation (or as it is, when the job
    -- has rotations off). alt_hashes holds the hashes of the other orientations the canonical
    -- choice could have made when that choice was near a tie; comparing every stored hash of one
    -- image with every stored hash of another is then rotation-proof at about one hash's cost.
    ALTER TABLE file
        ADD COLUMN hash_kind text,
        ADD COLUMN alt_hashes bigint[],
        ADD COLUMN digest bytea;
    COMMENT ON COLUMN file.hash_kind IS
        'algorithm, size, library version and orientation mode: hashes of different kinds are never compared';
    COMMENT ON COLUMN file.digest IS 'content digest: byte-identical files share it';
    """)


def downgrade() -> None:
    op.execute("""
    ALTER TABLE file DROP COLUMN hash_kind, DROP COLUMN alt_hashes, DROP COLUMN digest;
    ALTER TABLE job DROP COLUMN hash_algo, DROP COLUMN hash_size, DROP COLUMN rotations;
    """)
