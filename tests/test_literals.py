"""Text forms handed to PostgreSQL: what the server reads back is what was meant."""
from __future__ import annotations

import psycopg

from db.literals import bigint_array, copy_lines


def test_copy_lines_round_trip_tabs_newlines_backslashes_nulls_and_arrays(database_url: str) -> None:
    records = [(1, "tab\there", [3, 2, -1]), (2, "line\nbreak \\ back\rslash", []), (3, None, [2**63 - 1])]
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE t (id bigint, note text, ids bigint[])")
        with cur.copy("COPY t FROM STDIN") as copy:
            copy.write(copy_lines(records))
        cur.execute("SELECT id, note, ids FROM t ORDER BY id")
        assert cur.fetchall() == [(r[0], r[1], list(r[2])) for r in records]


def test_a_bigint_array_literal_is_read_as_the_same_ids(database_url: str) -> None:
    ids = [5, -7, 2**62]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT %s::bigint[]", (bigint_array(ids),)).fetchone()[0] == ids
        assert conn.execute("SELECT %s::bigint[]", (bigint_array([]),)).fetchone()[0] == []
