"""Keeping the progress reads cheap after rows are made in bulk."""
from __future__ import annotations

import logging

import psycopg

from db.queries import q

log = logging.getLogger("neardup.db")

# Below this many new rows the views are cheap whatever the visibility map says.
SETTLE_ROWS = 10_000


def settle_work(url: str, rows: int) -> bool:
    """VACUUM the work table after `rows` new rows (outside any transaction, as VACUUM must be).

    Freshly inserted rows are not yet marked all-visible, so an index-only read of them visits
    the heap row by row (about 3x slower) until autovacuum comes by. Best effort: a database
    user that may not vacuum only loses that speed.
    """
    if rows < SETTLE_ROWS:
        return False
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(q("vacuum_work"))
        return True
    except psycopg.Error as e:
        log.warning("could not vacuum the work table after %s new rows: %s", rows, e)
        return False
