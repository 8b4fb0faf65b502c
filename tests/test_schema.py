"""The migrated schema itself: what every table needs whatever code runs against it."""
from __future__ import annotations

import psycopg

from db.repository import JobOptions, NewFile, Repository
from test_finalize import through_cluster

# Foreign keys with no index whose leading columns are the key's: deleting a referenced row then
# scans the whole referencing table once per row deleted.
UNINDEXED_FOREIGN_KEYS = """
SELECT c.conrelid::regclass::text, c.conname
FROM pg_constraint c
WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
  AND NOT EXISTS (
      SELECT 1 FROM pg_index i
      WHERE i.indrelid = c.conrelid
        AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
        AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] <@ c.conkey)
ORDER BY 1, 2
"""


def test_every_foreign_key_has_an_index_that_leads_with_its_columns(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        assert conn.execute(UNINDEXED_FOREIGN_KEYS).fetchall() == []


def test_deleting_a_completed_job_leaves_nothing_of_it(repo: Repository) -> None:
    job = repo.submit(["/x"], [NewFile(f"/x/{i:02d}.jpg", 1, 0.0) for i in range(6)], JobOptions())
    through_cluster(repo, job, [(0, 1), (2, 3)], [(4, 1, 2)])
    with repo.pool.connection() as conn:
        conn.execute("DELETE FROM job WHERE id = %s", (job,))
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND column_name = 'job_id' AND table_name NOT LIKE '%%progress%%'").fetchall()]
        left = {t: conn.execute(f'SELECT count(*) FROM "{t}" WHERE job_id = %s', (job,)).fetchone()[0]
                for t in tables}
    assert tables and all(n == 0 for n in left.values()), left


def test_with_one_job_deleted_every_file_left_names_a_work_row_of_its_own_job(repo: Repository) -> None:
    # file.work_id has no foreign key (migration 0011): the job cascade must keep it from dangling.
    jobs = [repo.submit(["/x"], [NewFile(f"/x/{i:02d}.jpg", 1, 0.0) for i in range(6)], JobOptions())
            for _ in range(2)]
    through_cluster(repo, jobs[0], [(0, 1), (2, 3)], [(4, 1, 2)])
    with repo.pool.connection() as conn:
        conn.execute("DELETE FROM job WHERE id = %s", (jobs[0],))
        files, dangling = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE w.id IS NULL OR w.job_id <> f.job_id) "
            "FROM file f LEFT JOIN work w ON w.id = f.work_id WHERE f.work_id IS NOT NULL").fetchone()
    assert files == 6 and dangling == 0
