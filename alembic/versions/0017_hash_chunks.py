"""Hashes are stored compare-ready as they are recorded: hash chunks, cut into compare blocks.

Revision ID: 0017
Revises: 0016
"""
from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# The compare transition used to cut the job's files into id ranges (an ordered scan of every
# hashed file: 26 ms at 100,000 files) and the first worker to need a block packed it from its
# files (40-50 ms a 25,000-file block, two per worker before its first row): 150-190 ms in all
# before the kernel started, while both cores stood idle, in a phase whose kernel work is 1.2 s
# on 2 cores. A chunk is packed where its hashes are written: the hash row that records them, or
# the submit that brings them (a rescan's reused hashes, imported ones); the transition then cuts
# the job's sequence of chunks into blocks by position, reading one row per chunk.
PACK = """
CREATE FUNCTION pack_hash_chunks(p_job bigint, p_chunk_files integer, p_work bigint DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE made bigint;
BEGIN
    -- The job's hashed files (of work row p_work only, when given) in id order, p_chunk_files to
    -- a chunk: ids and hashes as big-endian int8s; ties one int4 per file, a NULL (a hash stored
    -- before ties were) as 7: near every wall (neardup.orientation.EVERY_WALL); alt_ids one
    -- (int8 file id, int4 count) record per file with alternatives, alt_hashes those files'
    -- array_send() output back to back. Each aggregate orders its rows by id (a sorted group
    -- aggregate may take them in any order): the i-th id, hash and ties word are one file's, and
    -- files packed in id order keep it, so blocks cut by position are what migration 0017 says.
    -- Dynamic, so each call is planned for its own case: one plan for both, `p_work IS NULL OR
    -- work_id = p_work`, could not use the work_id index, and a hash row's finish would read
    -- every hashed file of its job.
    EXECUTE format($q$
        WITH made AS (
            INSERT INTO hash_chunk (job_id, files, ids, hashes, ties, alt_ids, alt_hashes)
            SELECT $1, count(*),
                   string_agg(int8send(f.id), ''::bytea ORDER BY f.id),
                   string_agg(int8send(f.hash), ''::bytea ORDER BY f.id),
                   string_agg(int4send(coalesce(f.ties, 7)), ''::bytea ORDER BY f.id),
                   string_agg(int8send(f.id) || int4send(cardinality(f.alt_hashes)), ''::bytea ORDER BY f.id)
                       FILTER (WHERE cardinality(f.alt_hashes) > 0),
                   string_agg(array_send(f.alt_hashes), ''::bytea ORDER BY f.id)
                       FILTER (WHERE cardinality(f.alt_hashes) > 0)
            FROM (
                SELECT f.id, f.hash, f.ties, f.alt_hashes,
                       (row_number() OVER (ORDER BY f.id) - 1) / $2 AS k
                FROM file f
                WHERE %s AND f.status IN ('hashed', 'skipped') AND f.hash IS NOT NULL
            ) f
            GROUP BY f.k
            ORDER BY f.k
            RETURNING 1
        )
        SELECT count(*) FROM made
    $q$, CASE WHEN p_work IS NULL THEN 'f.job_id = $1'
              -- job_id + 0: with statistics taken before the job's rows had a work_id, the
              -- planner read the job's status index and filtered 300,000 rows (119 ms a row).
              ELSE 'f.work_id = $3 AND f.job_id + 0 = $1' END)
    INTO made USING p_job, p_chunk_files, p_work;
    RETURN made;
END
$fn$;
"""


def upgrade() -> None:
    op.execute("""
    CREATE TABLE hash_chunk (
        job_id     bigint NOT NULL REFERENCES job(id) ON DELETE CASCADE,
        chunk      bigint GENERATED ALWAYS AS IDENTITY,
        files      integer NOT NULL CHECK (files > 0),
        ids        bytea NOT NULL,
        hashes     bytea NOT NULL,
        ties       bytea NOT NULL,
        alt_ids    bytea,
        alt_hashes bytea,
        PRIMARY KEY (job_id, chunk)
    );
    """ + PACK + """
    -- A block is now positions lo .. lo + files - 1 of the job's chunk sequence (chunks in chunk
    -- order, files in stored order): chunks first_chunk .. last_chunk, the first starting at
    -- position chunk_start.
    ALTER TABLE compare_block
        ADD COLUMN lo bigint, ADD COLUMN first_chunk bigint, ADD COLUMN last_chunk bigint,
        ADD COLUMN chunk_start bigint;
    -- Jobs in flight: their hashed files, packed in id order, 1,024 to a chunk...
    SELECT pack_hash_chunks(j.id, 1024) FROM job j WHERE j.status IN ('pending', 'running', 'cancelled');
    -- ...so a block already cut (an id range) is the same files at the same positions.
    WITH numbered AS (
        SELECT job_id, chunk, row_number() OVER (PARTITION BY job_id ORDER BY chunk) - 1 AS k
        FROM hash_chunk
    ), placed AS (
        SELECT b.job_id, b.block, b.files,
               (SELECT count(*) FROM file f WHERE f.job_id = b.job_id AND f.id < b.first_id
                  AND f.status IN ('hashed', 'skipped') AND f.hash IS NOT NULL) AS lo
        FROM compare_block b
    )
    UPDATE compare_block b
    SET lo = p.lo, chunk_start = p.lo / 1024 * 1024, first_chunk = f.chunk, last_chunk = l.chunk
    FROM placed p
    JOIN numbered f ON f.job_id = p.job_id AND f.k = p.lo / 1024
    JOIN numbered l ON l.job_id = p.job_id AND l.k = (p.lo + p.files - 1) / 1024
    WHERE b.job_id = p.job_id AND b.block = p.block;
    DELETE FROM compare_block WHERE lo IS NULL;
    ALTER TABLE compare_block
        ALTER COLUMN lo SET NOT NULL, ALTER COLUMN first_chunk SET NOT NULL,
        ALTER COLUMN last_chunk SET NOT NULL, ALTER COLUMN chunk_start SET NOT NULL,
        DROP COLUMN ids, DROP COLUMN hashes, DROP COLUMN alt_ids, DROP COLUMN alt_hashes,
        DROP COLUMN ties, DROP COLUMN first_id, DROP COLUMN last_id;
    """)


def downgrade() -> None:
    op.execute("""
    -- A block cut from chunks is a set of positions, not an id range: there is nothing to give
    -- back for a job in the middle of its compare phase.
    DO $$
    DECLARE stuck bigint;
    BEGIN
        SELECT b.job_id INTO stuck FROM compare_block b JOIN job j ON j.id = b.job_id
        WHERE j.status IN ('pending', 'running', 'cancelled') AND j.phase = 'compare' LIMIT 1;
        IF stuck IS NOT NULL THEN
            RAISE EXCEPTION 'job % is in its compare phase: let it finish, or delete it, before downgrading', stuck;
        END IF;
    END $$;
    DELETE FROM compare_block;
    ALTER TABLE compare_block
        DROP COLUMN lo, DROP COLUMN first_chunk, DROP COLUMN last_chunk, DROP COLUMN chunk_start,
        ADD COLUMN ids bytea, ADD COLUMN hashes bytea, ADD COLUMN alt_ids bytea, ADD COLUMN alt_hashes bytea,
        ADD COLUMN ties bytea, ADD COLUMN first_id bigint, ADD COLUMN last_id bigint;
    ALTER TABLE compare_block ALTER COLUMN ties SET STORAGE EXTERNAL;
    DROP FUNCTION pack_hash_chunks(bigint, integer, bigint);
    DROP TABLE hash_chunk;
    """)
