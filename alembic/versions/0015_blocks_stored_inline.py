"""Packed compare blocks go back to the default storage: compressed, inline when they fit.

Revision ID: 0015
Revises: 0014
"""
from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# 0013 stored them uncompressed, which saved 1-3 ms packing a 25,000-file block, but a small block
# (a few hundred files, a few KB) then no longer fit in its row: every fetch of it read the TOAST
# table as well. A job of 100,128 block-pair rows (`neardup bench compare --n 100000 --block-size
# 224`) compared in 17.5-19.7 s against 14.4-14.7 s before 0013, and in 14.4 s again with this.
COLUMNS = ("ids", "hashes", "alt_ids", "alt_hashes")


def _storage(kind: str) -> None:
    op.execute("ALTER TABLE compare_block " + ", ".join(f"ALTER COLUMN {c} SET STORAGE {kind}" for c in COLUMNS))


def upgrade() -> None:
    _storage("EXTENDED")


def downgrade() -> None:
    _storage("EXTERNAL")
