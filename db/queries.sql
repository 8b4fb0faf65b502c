-- Every SQL statement neardup runs, by name. Only the db package (the repository layer) names them.
-- Parameters use psycopg's %(name)s style.

-- name: broker_schema_exists
SELECT to_regclass('dramatiq.queue') IS NOT NULL AND to_regclass('public.job') IS NOT NULL;

-- name: insert_job
INSERT INTO job (roots, threshold, block_size, fanout, max_attempts, lease_s)
VALUES (%(roots)s, %(threshold)s, %(block_size)s, %(fanout)s, %(max_attempts)s, %(lease_s)s)
RETURNING id;

-- name: insert_job_phase
INSERT INTO job_phase (job_id, phase, ordinal, weight, started_at)
VALUES (%(job_id)s, %(phase)s, %(ordinal)s::smallint, %(weight)s,
        CASE WHEN %(ordinal)s::smallint = 0 THEN now() END);

-- name: create_walk
-- What the walk found, staged for one INSERT into file: each file row is written once, with its
-- reused hashes and its settled row already in it (an UPDATE after would write every row and
-- its eight index entries again).
CREATE TEMP TABLE walk (path text NOT NULL, path_raw bytea, size bigint NOT NULL,
                        mtime double precision NOT NULL, error text) ON COMMIT DROP;

-- name: copy_walk
COPY walk (path, path_raw, size, mtime, error) FROM STDIN;

-- name: insert_walked_files
-- A file the walk could not read arrives failed, with its reason: nothing found is lost. A file
-- whose path, size and modification time match the latest file of that path an earlier job hashed
-- with this kind takes its hashes and arrives skipped: rescanning an unchanged tree decodes
-- nothing. One index probe per file (file_reuse_idx), however many jobs have seen the path. The
-- settled files (failed or skipped) share one finished hash row, so every file is some row's unit
-- and the views need read nothing else. kind NULL: no reuse (`--rehash`).
WITH looked AS MATERIALIZED (
    SELECT w.path, w.path_raw, w.size, w.mtime, w.error,
           o.hash, o.alt_hashes, o.ties, o.hash_kind, o.digest, o.width, o.height, o.thumb,
           CASE WHEN w.error IS NOT NULL THEN 'failed'
                WHEN o.hash IS NOT NULL THEN 'skipped' ELSE 'pending' END AS status
    FROM walk w
    LEFT JOIN LATERAL (
        SELECT o.hash, o.alt_hashes, o.ties, o.hash_kind, o.digest, o.width, o.height, o.thumb, o.size, o.mtime,
               o.path_raw
        FROM file o
        WHERE md5(o.path) = md5(w.path) AND o.path = w.path AND o.hash IS NOT NULL
          AND o.hash_kind = %(kind)s
        ORDER BY md5(o.path) DESC, o.id DESC
        LIMIT 1
    ) o ON w.error IS NULL AND o.size = w.size AND o.mtime = w.mtime
           AND o.path_raw IS NOT DISTINCT FROM w.path_raw
), settled AS (
    INSERT INTO work (job_id, phase, status, units, failed_units, skipped_units)
    SELECT %(job_id)s, 'hash', 'done', count(*),
           count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE status = 'skipped')
    FROM looked WHERE status <> 'pending' HAVING count(*) > 0
    RETURNING id
)
INSERT INTO file (job_id, path, path_raw, size, mtime, status, error, hash, alt_hashes, ties,
                  hash_kind, digest, width, height, thumb, work_id)
SELECT %(job_id)s, l.path, l.path_raw, l.size, l.mtime, l.status, l.error, l.hash, l.alt_hashes,
       l.ties, l.hash_kind, l.digest, l.width, l.height, l.thumb,
       CASE WHEN l.status <> 'pending' THEN (SELECT id FROM settled) END
FROM looked l;

-- name: plan_for_lookups
-- For insert_walked_files: the newest entry of a path nearly always matches, so a backward index
-- scan stops at once (O(1) however many scans saw the path), but the planner, counting every
-- entry of the path, prefers a bitmap scan that reads them all; and a JIT compile costs more than
-- the statement. Both for this transaction only: plan_default gives the bitmap scans back; JIT
-- stays off for the submit's other short statements.
SELECT set_config('enable_bitmapscan', 'off', true), set_config('jit', 'off', true);

-- name: plan_default
SELECT set_config('enable_bitmapscan', 'on', true);

-- name: settled_work
SELECT id FROM work WHERE job_id = %(job_id)s AND phase = 'hash' AND status = 'done';

-- name: make_hash_work
-- Cut the job's files into batches; each batch is one hash work row. Files of one size share a
-- batch (up to batch_size of them), so byte-identical files meet in one worker, which decodes
-- them once: a batch starts where its first size group starts. Rows of the biggest files come
-- first (rows are claimed in id order): the phase then ends on small files, and its workers finish
-- together rather than one of them decoding the largest photos alone.
WITH ranked AS (
    SELECT id, size,
           (rank() OVER (ORDER BY size) - 1) AS group_start,
           (row_number() OVER (PARTITION BY size ORDER BY id) - 1) AS in_group
    FROM file
    -- coalesce: as `work_id IS NULL` the planner also read file_work_idx for every file of every
    -- job without a row (imported ones), 260 ms with 3 million of them, where this job's few
    -- thousand files are all it needs.
    WHERE job_id = %(job_id)s AND coalesce(work_id, 0) = 0 AND status = 'pending'
), batches AS (
    SELECT id, (group_start + in_group / %(batch_size)s * %(batch_size)s) / %(batch_size)s AS seq
    FROM ranked
), made AS (
    INSERT INTO work (job_id, phase, units, block_a)
    SELECT %(job_id)s, 'hash', count(*), seq FROM batches GROUP BY seq ORDER BY seq DESC
    RETURNING id, block_a AS seq
)
UPDATE file f SET work_id = made.id
FROM batches JOIN made USING (seq)
WHERE f.id = batches.id;

-- name: count_job_files
SELECT count(*) FROM file WHERE job_id = %(job_id)s;

-- name: claim_work
-- Several rows per round trip: claims are cheap only when batched.
WITH next AS (
    SELECT id FROM work
    WHERE job_id = %(job_id)s AND phase = %(phase)s AND status = 'pending'
    ORDER BY id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE work w
SET status = 'running',
    attempts = w.attempts + 1,
    claim = %(claim)s,
    lease_until = now() + make_interval(secs => %(lease_s)s)
FROM next
WHERE w.id = next.id
RETURNING w.id, w.job_id, w.phase, w.units, w.block_a, w.block_b, w.attempts;

-- name: mark_job_running
UPDATE job SET status = 'running', started_at = coalesce(started_at, now())
WHERE id = %(job_id)s AND status = 'pending'
RETURNING id;

-- name: job_settings
-- sign_hashes: pHash with rotations, whose bits move with the image (orientation.dihedral_hashes).
-- verify_up_to: only sign hashes tell the orientation two thumbnails are compared in.
-- all_turns: likewise, only sign hashes can be turned (orientation.dihedral_hashes).
SELECT id, status, phase, threshold, block_size, fanout, max_attempts, lease_s, sign_hashes,
       CASE WHEN sign_hashes THEN greatest(threshold, verify_up_to) ELSE threshold END,
       sign_hashes AND all_turns
FROM (SELECT *, hash_algo = 'phash' AND rotations AND hash_size = 8 AS sign_hashes FROM job
      WHERE id = %(job_id)s) j;

-- name: files_of_work
SELECT id, path, path_raw FROM file
WHERE work_id = %(work_id)s AND status = 'pending'
ORDER BY id;

-- name: finish_work
-- Conditional on the claim: a worker whose lease expired and whose row was claimed again by
-- another must not finish it twice.
UPDATE work SET status = 'done', finished_at = now(), lease_until = NULL
WHERE id = %(work_id)s AND claim = %(claim)s AND status = 'running'
RETURNING id;

-- name: record_hashes
-- alternatives arrive as bigint[] literals in a text[]: unnest would flatten a ragged 2-D array.
UPDATE file f
SET status = v.status, hash = v.hash, alt_hashes = v.alts::bigint[], ties = v.ties,
    hash_kind = %(kind)s, digest = v.digest, width = v.width, height = v.height, error = v.error,
    thumb = v.thumb
FROM unnest(%(ids)s::bigint[], %(statuses)s::text[], %(hashes)s::bigint[], %(alts)s::text[],
            %(ties)s::int[], %(digests)s::bytea[], %(widths)s::int[], %(heights)s::int[],
            %(errors)s::text[], %(thumbs)s::bytea[])
     AS v(id, status, hash, alts, ties, digest, width, height, error, thumb)
WHERE f.id = v.id AND f.status = 'pending';

-- name: release_work
-- The handler raised: give the row back, or fail it once it has used its attempts (its files
-- failed with it, each with its event). A cancelled job's row is cancelled instead.
WITH released AS (
    UPDATE work w
    SET status = CASE WHEN j.status = 'cancelled' THEN 'cancelled'
                      WHEN w.attempts >= j.max_attempts THEN 'failed' ELSE 'pending' END,
        error = %(error)s,
        claim = NULL,
        lease_until = NULL,
        finished_at = CASE WHEN j.status <> 'cancelled' AND w.attempts >= j.max_attempts THEN now() END
    FROM job j
    WHERE w.id = %(work_id)s AND w.claim = %(claim)s AND w.status = 'running' AND j.id = w.job_id
    RETURNING w.id, w.job_id, w.phase, w.status, w.error
), files AS (
    SELECT fail_work_files(array_agg(id), array_agg(error)) FROM released
    WHERE status = 'failed' AND phase = 'hash' HAVING count(*) > 0
)
SELECT r.id, r.status FROM released r LEFT JOIN files ON true;

-- name: reclaim_expired
-- Rows whose worker died come back to pending, or fail after max_attempts (their files with them,
-- each with its file_failed event). A cancelled job's abandoned rows become cancelled.
-- scripts/requeue-stale.sh runs this same statement.
WITH expired AS (
    UPDATE work w
    SET status = CASE WHEN j.status = 'cancelled' THEN 'cancelled'
                      WHEN w.attempts >= j.max_attempts THEN 'failed' ELSE 'pending' END,
        error = 'lease expired (worker lost) on attempt ' || w.attempts,
        claim = NULL,
        lease_until = NULL,
        finished_at = CASE WHEN j.status <> 'cancelled' AND w.attempts >= j.max_attempts THEN now() END
    FROM job j
    WHERE w.status = 'running' AND w.lease_until < now() AND j.id = w.job_id
    RETURNING w.id, w.job_id, w.phase, w.status, w.error
), files AS (
    SELECT fail_work_files(array_agg(id), array_agg(error)) FROM expired
    WHERE status = 'failed' AND phase = 'hash' HAVING count(*) > 0
)
SELECT DISTINCT e.job_id FROM expired e LEFT JOIN files ON true;

-- name: active_jobs
SELECT id, phase FROM job WHERE status IN ('pending', 'running') ORDER BY id;

-- name: phase_remaining
SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
       count(*) FILTER (WHERE status = 'running') AS running,
       count(*) FILTER (WHERE status = 'failed') AS failed
FROM work
WHERE job_id = %(job_id)s AND phase = %(phase)s AND status IN ('pending', 'running', 'failed');

-- name: advance_phase
-- The one transition guard: succeeds for exactly one caller.
UPDATE job SET phase = %(to_phase)s, kicked_at = now()
WHERE id = %(job_id)s AND phase = %(from_phase)s AND status IN ('pending', 'running')
RETURNING id;

-- name: finish_job_phase
UPDATE job_phase SET finished_at = now()
WHERE job_id = %(job_id)s AND phase = %(phase)s AND finished_at IS NULL;

-- name: start_job_phase
UPDATE job_phase SET started_at = now()
WHERE job_id = %(job_id)s AND phase = %(phase)s AND started_at IS NULL;

-- name: make_finalize_work
-- One row per cluster row's range of components, carrying the same number of files, so the phase
-- moves as its rows finish. No groups, no rows: the monitor completes the job at once.
INSERT INTO work (job_id, phase, units, block_a, block_b)
SELECT job_id, 'finalize', units, block_a, block_b FROM work
WHERE job_id = %(job_id)s AND phase = 'cluster' AND block_a IS NOT NULL
ORDER BY block_a;

-- name: failed_work
SELECT phase, block_a, block_b, error FROM work
WHERE job_id = %(job_id)s AND phase = %(phase)s AND status = 'failed'
ORDER BY id LIMIT 1;

-- name: kick_due
-- Tickets are re-sent for a phase whose pending rows nobody is working on, at most once per interval.
UPDATE job SET kicked_at = now()
WHERE id = %(job_id)s AND status IN ('pending', 'running')
  AND (kicked_at IS NULL OR kicked_at < now() - make_interval(secs => %(interval_s)s))
RETURNING phase, fanout;

-- name: copy_pairs
-- Written only in the transaction that finishes the rows they came from, and only for rows that
-- claim still held: a row's pairs are written once, so COPY needs no conflict check.
COPY pair (job_id, a, b, distance) FROM STDIN;

-- name: job_pairs
SELECT a, b, distance FROM pair WHERE job_id = %(job_id)s;

-- name: seen_files
-- What verification reads of the files in near misses (neardup.verify): one probe each.
SELECT id, hash, thumb FROM file WHERE id = ANY(%(ids)s::bigint[]);

-- name: verified_pairs
-- Pairs of the components first..last that their thumbnails confirmed: those past the job's
-- threshold. A pair's two files are in one component, so its lower id places it: one probe of
-- pair's primary key per member, whatever the component's size.
SELECT p.a, p.b FROM file_component c
JOIN pair p ON p.job_id = c.job_id AND p.a = c.file_id
WHERE c.job_id = %(job_id)s AND c.component BETWEEN %(first)s AND %(last)s
  AND p.distance > %(threshold)s;

-- name: complete_job
-- A job with no rows to claim in any phase never became running: it completes from pending.
UPDATE job SET status = 'completed', phase = 'done', finished_at = now()
WHERE id = %(job_id)s AND phase = 'finalize' AND status IN ('pending', 'running')
RETURNING id;

-- name: count_groups
SELECT count(*) FROM dup_group WHERE job_id = %(job_id)s;

-- name: fail_job
UPDATE job SET status = 'failed', error = %(error)s, finished_at = now()
WHERE id = %(job_id)s AND status IN ('pending', 'running')
RETURNING id;

-- name: job_progress
-- One read: the job and its phases (as JSON, computed once).
SELECT job_id, status, phase, percent, error, elapsed_s, eta_s, phases
FROM job_progress WHERE job_id = %(job_id)s;

-- name: job_groups
SELECT g.group_no, k.path AS keeper, f.path AS member
FROM dup_group g
JOIN file k ON k.id = g.keeper_id
CROSS JOIN LATERAL unnest(g.member_ids) AS x(id)
JOIN file f ON f.id = x.id
WHERE g.job_id = %(job_id)s
ORDER BY g.group_no, f.path;

-- name: job_pair_paths
SELECT fa.path, fb.path, p.distance
FROM pair p JOIN file fa ON fa.id = p.a JOIN file fb ON fb.id = p.b
WHERE p.job_id = %(job_id)s
ORDER BY fa.path, fb.path;

-- name: failed_files
SELECT path, error FROM file
WHERE job_id = %(job_id)s AND status = 'failed'
ORDER BY path;

-- name: monitor_try_lock
SELECT pg_try_advisory_lock(hashtext('neardup.monitor'));

-- name: monitor_unlock
SELECT pg_advisory_unlock(hashtext('neardup.monitor'));

-- name: monitor_ticked
UPDATE monitor_state SET last_tick_at = now();

-- name: monitor_arm_due
-- Arm a new monitor chain only if none has ticked or been armed lately: re-arming is cheap and
-- frequent (every scan, every worker start, every worker's watchdog), chains must not multiply.
-- The watchdogs ask only while some job is active, so an idle fleet sends nothing.
UPDATE monitor_state SET armed_at = now()
WHERE last_tick_at < now() - make_interval(secs => %(stale_s)s)
  AND armed_at < now() - make_interval(secs => %(stale_s)s)
  AND (NOT %(only_active)s OR EXISTS (SELECT 1 FROM job WHERE status IN ('pending', 'running')))
RETURNING true;

-- name: monitor_keep_ticking
-- The chain ends only when no job is active, in the same statement that marks it ended. The row
-- lock makes a concurrent monitor_arm_due wait and then see the chain ended, so a job submitted
-- meanwhile is either seen here or arms a new chain: never stranded.
WITH ended AS (
    UPDATE monitor_state SET last_tick_at = '-infinity', armed_at = '-infinity'
    WHERE NOT EXISTS (SELECT 1 FROM job WHERE status IN ('pending', 'running'))
    RETURNING 1
)
SELECT NOT EXISTS (SELECT 1 FROM ended);

-- =====================================================================================
-- Issue 5: progress you can trust (event log, checkpoints, cancel and resume, admin reads)
-- Every event insert first locks its job's row (FOR NO KEY UPDATE, held to commit), so one
-- job's events take their ids in commit order: SSE resume from Last-Event-ID relies on it.
-- The NOTIFY goes out from a trigger on the event table, in the same transaction.
-- =====================================================================================

-- name: add_event
WITH j AS (SELECT id FROM job WHERE id = %(job_id)s FOR NO KEY UPDATE)
INSERT INTO event (job_id, kind, phase, data)
SELECT j.id, %(kind)s, %(phase)s, %(data)s::jsonb FROM j
RETURNING id;

-- name: phase_event
-- phase_started / phase_completed, carrying the phase's counts as the view has them.
WITH j AS (SELECT id FROM job WHERE id = %(job_id)s FOR NO KEY UPDATE)
INSERT INTO event (job_id, kind, phase, data)
SELECT j.id, %(kind)s, pp.phase,
       jsonb_build_object('total', pp.total, 'done', pp.done, 'failed', pp.failed,
                          'skipped', pp.skipped, 'fraction', pp.fraction)
FROM j JOIN phase_progress pp ON pp.job_id = j.id AND pp.phase = %(phase)s
RETURNING id;

-- name: tally_work_files
-- A finished hash row records how many of its files failed or were skipped: the row's own
-- result, read by the views (failed and skipped count as finished work).
UPDATE work w SET failed_units = c.failed, skipped_units = c.skipped
FROM (SELECT count(*) FILTER (WHERE status = 'failed') AS failed,
             count(*) FILTER (WHERE status = 'skipped') AS skipped
      FROM file WHERE work_id = %(work_id)s) c
WHERE w.id = %(work_id)s;

-- name: file_failed_events
-- One file_failed event per failed file of these rows, in file order.
WITH j AS (SELECT id FROM job WHERE id = %(job_id)s FOR NO KEY UPDATE)
INSERT INTO event (job_id, kind, phase, data)
SELECT j.id, 'file_failed', 'hash', jsonb_build_object('file', f.id, 'path', f.path, 'error', f.error)
FROM j JOIN file f ON f.job_id = j.id
WHERE f.work_id = ANY(%(work_ids)s::bigint[]) AND f.status = 'failed'
ORDER BY f.id;

-- name: progress_checkpoint
-- A phase_progress event once the running phase has moved by at least min_step (a fraction of
-- the phase) AND at least min_s seconds have passed since its last checkpoint or its start:
-- whichever is rarer, so a fast phase does not flood the log and a slow one still reports.
WITH cur AS (
    SELECT pp.* FROM phase_progress pp JOIN job jb ON jb.id = pp.job_id AND jb.phase = pp.phase
    WHERE pp.job_id = %(job_id)s AND pp.status = 'running'
), last AS (
    SELECT e.at, coalesce((e.data ->> 'fraction')::double precision, 0) AS fraction
    FROM event e JOIN cur ON e.job_id = cur.job_id AND e.phase = cur.phase
    WHERE e.kind IN ('phase_started', 'phase_progress')
    ORDER BY e.id DESC LIMIT 1
), due AS (
    SELECT cur.* FROM cur LEFT JOIN last ON true
    WHERE cur.fraction - coalesce(last.fraction, 0) >= %(min_step)s
      AND (last.at IS NULL OR last.at <= now() - make_interval(secs => %(min_s)s))
), j AS (
    SELECT id FROM job WHERE id IN (SELECT job_id FROM due) FOR NO KEY UPDATE
)
INSERT INTO event (job_id, kind, phase, data)
SELECT j.id, 'phase_progress', due.phase,
       jsonb_build_object('total', due.total, 'done', due.done, 'failed', due.failed,
                          'skipped', due.skipped, 'fraction', due.fraction,
                          'rate', due.rate, 'eta_s', due.eta_s)
FROM due JOIN j ON j.id = due.job_id
RETURNING id;

-- name: monitor_busy
UPDATE monitor_state SET busy_s = busy_s + %(busy_s)s, ticks = ticks + 1;

-- name: monitor_totals
SELECT busy_s, ticks FROM monitor_state;

-- name: cancel_job
-- Pending rows cancelled, then the job (rows first: a claim holds its rows before the job row,
-- so taking them in the same order cannot deadlock). Running rows finish or are abandoned;
-- either way the job stays cancelled. scripts/cancel.sh runs this same statement.
WITH rows AS (
    UPDATE work w SET status = 'cancelled'
    FROM job j
    WHERE w.job_id = %(job_id)s AND w.status = 'pending'
      AND j.id = w.job_id AND j.status IN ('pending', 'running')
    RETURNING w.units
), cancelled AS (
    UPDATE job SET status = 'cancelled', finished_at = now()
    WHERE id = %(job_id)s AND status IN ('pending', 'running')
      AND (SELECT count(*) FROM rows) >= 0
    RETURNING id, phase
), events AS (
    INSERT INTO event (job_id, kind, phase, data)
    SELECT c.id, 'job_cancelled', c.phase,
           jsonb_build_object('cancelled_units', (SELECT coalesce(sum(units), 0) FROM rows))
    FROM cancelled c
    RETURNING id
)
SELECT c.id, (SELECT coalesce(sum(units), 0) FROM rows) FROM cancelled c;

-- name: resume_job
-- A cancelled job runs again from its rows: cancelled rows back to pending, finished rows kept.
-- An interrupted job (pending or running) gets its abandoned rows back at once.
WITH resumed AS (
    UPDATE job j
    SET status = CASE WHEN j.started_at IS NULL THEN 'pending' ELSE 'running' END,
        finished_at = NULL, error = NULL, kicked_at = NULL
    WHERE j.id = %(job_id)s AND j.status = 'cancelled'
    RETURNING j.id, j.phase
), active AS (
    SELECT id, phase FROM resumed
    UNION ALL
    SELECT id, phase FROM job WHERE id = %(job_id)s AND status IN ('pending', 'running')
), rows AS (
    UPDATE work w SET status = 'pending', claim = NULL, lease_until = NULL
    FROM active a
    WHERE w.job_id = a.id
      AND (w.status = 'cancelled' OR (w.status = 'running' AND w.lease_until < now()))
    RETURNING w.units
), events AS (
    INSERT INTO event (job_id, kind, phase, data)
    SELECT r.id, 'job_resumed', r.phase,
           jsonb_build_object('requeued_units', (SELECT coalesce(sum(units), 0) FROM rows))
    FROM resumed r
)
SELECT a.id, a.phase, EXISTS (SELECT 1 FROM resumed), (SELECT coalesce(sum(units), 0) FROM rows)
FROM active a;

-- name: job_status
SELECT status, phase FROM job WHERE id = %(job_id)s;

-- name: events_after
SELECT id, job_id, at, kind, phase, data FROM event
WHERE job_id = %(job_id)s AND id > %(after)s
ORDER BY id
LIMIT %(limit)s;

-- name: list_jobs
SELECT job_id, status, phase, percent, error, elapsed_s, eta_s, phases
FROM job_progress
WHERE %(active_only)s = false OR status IN ('pending', 'running')
ORDER BY job_id DESC
LIMIT %(limit)s;

-- name: bench_start_job
UPDATE job SET status = 'running', started_at = now() - interval '60 seconds'
WHERE id = %(job_id)s;

-- name: bench_make_rows
INSERT INTO work (job_id, phase, units)
SELECT %(job_id)s, %(phase)s, %(units)s FROM generate_series(1, %(rows)s);

-- name: bench_finish_rows
-- Finish the lowest pending rows the way workers do (claims go in id order); one in 50 has a
-- failed file, so the exceptions index is not empty.
WITH next AS (
    SELECT id FROM work WHERE job_id = %(job_id)s AND status = 'pending' ORDER BY id LIMIT %(rows)s
)
UPDATE work w
SET status = 'done', attempts = 1, finished_at = now() - random() * interval '60 seconds',
    failed_units = CASE WHEN mod(w.id, 50) = 0 THEN 1 ELSE 0 END
FROM next WHERE w.id = next.id;

-- name: vacuum_work
-- After a phase's rows are made in bulk: marks their pages all-visible at once (autovacuum would
-- take up to a minute), so the views' index-only reads of pending rows need no heap visits.
VACUUM (SKIP_LOCKED) work;
-- ---------------------------------------------------------------------------------------------
-- issue 6: compare at scale (batched compare rows, the cluster phase, hashed-job submission)

-- name: copy_hashed_files
-- Files that arrive already hashed (benchmarks, imports): no hash work rows are made for them.
COPY file (job_id, path, size, mtime, status, hash, alt_hashes, width, height, ties) FROM STDIN;

-- name: pack_submitted_chunks
-- The hashes a submit brings (a rescan's reused ones, imported ones) packed compare-ready, in id
-- order (pack_hash_chunks, migration 0017), in the submit's transaction.
SELECT pack_hash_chunks(%(job_id)s, %(chunk_files)s);

-- name: pack_work_chunk
-- The hashes a hash row recorded, as one chunk, in the transaction that finishes the row: a row is
-- recorded once (record_hashes takes pending files only, finish_work holds the claim), so its
-- files are in one chunk once.
SELECT pack_hash_chunks(%(job_id)s, 2147483647, %(work_id)s);

-- name: unchunked_files
-- Files the job's hash rows recorded with a hash (every unit not failed) that its chunks do not hold:
-- 0 but for hashes recorded by code older than chunks. Read from the job's hash rows, not its files
-- (22 ms at 100,000 files); imported files have no hash row and are packed by their submit.
SELECT (SELECT coalesce(sum(units - failed_units), 0) FROM work
        WHERE job_id = %(job_id)s AND phase = 'hash')
     - (SELECT coalesce(sum(files), 0) FROM hash_chunk WHERE job_id = %(job_id)s);

-- name: drop_job_chunks
DELETE FROM hash_chunk WHERE job_id = %(job_id)s;

-- name: make_compare_blocks
-- Cut the job's chunk sequence (chunk order, files in stored order) into blocks by position, as
-- even as can be, none over block_size: 100,000 files at 32,768 make four blocks of 25,000 rather
-- than three full ones and a small one, whose rows would be too short to be worth their claims. A
-- job that fits one block still gets up to min_blocks blocks of at least min_block_files files:
-- one row would keep every worker but one idle. One row per chunk is read, never a file: block k
-- is positions k*n/blocks .. (k+1)*n/blocks - 1, and position p lies in block ((p+1)*blocks-1)/n.
WITH chunks AS (
    SELECT chunk, files::bigint AS files, sum(files) OVER (ORDER BY chunk) - files AS start
    FROM hash_chunk WHERE job_id = %(job_id)s
), sized AS (
    SELECT n, greatest((n + %(block_size)s - 1) / %(block_size)s,
                       least(%(min_blocks)s, n / %(min_block_files)s), 1) AS blocks
    FROM (SELECT sum(files)::bigint AS n FROM chunks) t WHERE n > 0
), spans AS (
    SELECT k, c.chunk, c.start
    FROM chunks c CROSS JOIN sized s
    CROSS JOIN generate_series(((c.start + 1) * s.blocks - 1) / s.n,
                               ((c.start + c.files) * s.blocks - 1) / s.n) AS k
)
INSERT INTO compare_block (job_id, block, files, lo, first_chunk, last_chunk, chunk_start)
SELECT %(job_id)s, p.k, r.hi - r.lo, r.lo, min(p.chunk), max(p.chunk), min(p.start)
FROM spans p CROSS JOIN sized s
CROSS JOIN LATERAL (SELECT p.k * s.n / s.blocks AS lo, (p.k + 1) * s.n / s.blocks AS hi) r
GROUP BY p.k, r.lo, r.hi;

-- name: roomy_sorts
-- The compare transition sorts the job's chunks (150,000 for 5 million files): in memory.
SELECT set_config('work_mem', '64MB', true);

-- name: make_block_pair_work
-- Every block pair (a <= b) is one row carrying its number of image pairs. Rows are claimed in id
-- order: the pairs of two blocks come first and each block with itself (half the work) last, so
-- the phase ends on short rows and no worker is left waiting on a long one. The first rows,
-- (0,1), (2,3), ... one per ticket, share no block: each of the first workers starts on blocks of
-- its own (when blocks were packed on demand, (0,1) then (0,2) kept the second worker waiting).
-- After them, rows of one block a run together, so a claim's next row reuses a block it holds.
INSERT INTO work (job_id, phase, units, block_a, block_b)
SELECT %(job_id)s, 'compare',
       CASE WHEN x.block = y.block THEN x.files::bigint * (x.files - 1) / 2
            ELSE x.files::bigint * y.files END,
       x.block, y.block
FROM compare_block x JOIN compare_block y ON y.job_id = x.job_id AND x.block <= y.block
WHERE x.job_id = %(job_id)s AND (x.block <> y.block OR x.files > 1)
ORDER BY NOT (x.block %% 2 = 0 AND y.block = x.block + 1 AND x.block < 2 * %(lead_rows)s),
         x.block = y.block, x.block, y.block;

-- name: compare_block_spans
SELECT block, lo, files, first_chunk, last_chunk, chunk_start FROM compare_block
WHERE job_id = %(job_id)s AND block = ANY(%(blocks)s::int[]);

-- name: hash_chunks
-- The job's chunks in these ranges (a block's first_chunk .. last_chunk; chunk numbers have gaps:
-- other jobs' chunks, and numbers a rolled-back finish took), one index range scan each.
SELECT c.chunk, c.files, c.ids, c.hashes, c.ties, c.alt_ids, c.alt_hashes
FROM unnest(%(firsts)s::bigint[], %(lasts)s::bigint[]) AS r(first, last)
CROSS JOIN LATERAL (
    SELECT * FROM hash_chunk c
    WHERE c.job_id = %(job_id)s AND c.chunk BETWEEN r.first AND r.last
) c;

-- name: drop_compare_blocks
-- The job is complete: its blocks and chunks served their phase (reuse reads file, not chunks).
WITH chunks AS (DELETE FROM hash_chunk WHERE job_id = %(job_id)s)
DELETE FROM compare_block WHERE job_id = %(job_id)s;

-- name: finish_works
-- finish_work for every row of a claim at once; only rows this claim still holds are finished.
UPDATE work SET status = 'done', finished_at = now(), lease_until = NULL
WHERE id = ANY(%(work_ids)s::bigint[]) AND claim = %(claim)s AND status = 'running'
RETURNING id;

-- name: extend_lease
-- A row whose work runs long (clustering a large component) keeps its lease while it is alive.
UPDATE work SET lease_until = now() + make_interval(secs => %(lease_s)s)
WHERE id = %(work_id)s AND claim = %(claim)s AND status = 'running'
RETURNING id;

-- name: make_cluster_start
-- The cluster phase starts with one row that finds the pair graph's components and makes the
-- phase's other rows (block_a NULL marks it).
INSERT INTO work (job_id, phase, units) VALUES (%(job_id)s, 'cluster', 1);

-- name: set_components
INSERT INTO file_component (job_id, component, file_id)
SELECT %(job_id)s, v.c, v.id
FROM unnest(%(ids)s::bigint[], %(components)s::int[]) AS v(id, c)
ON CONFLICT DO NOTHING;

-- name: make_cluster_work
-- One row per range of components (a large component alone, small ones batched); units: files.
INSERT INTO work (job_id, phase, units, block_a, block_b)
SELECT %(job_id)s, 'cluster', v.units, v.first, v.last
FROM unnest(%(units)s::bigint[], %(firsts)s::int[], %(lasts)s::int[]) AS v(units, first, last)
ORDER BY v.first;

-- name: component_members
SELECT c.component, f.id, f.hash, f.alt_hashes, coalesce(f.width::bigint * f.height, 0), f.size, f.mtime, f.path
FROM file_component c JOIN file f ON f.id = c.file_id
WHERE c.job_id = %(job_id)s AND c.component BETWEEN %(first)s AND %(last)s
ORDER BY c.component, f.id;

-- name: copy_cluster_groups
-- Written in the transaction that finishes the cluster row, once (see copy_pairs).
COPY cluster_group (job_id, keeper_id, members, reason) FROM STDIN;

-- name: probes_only
-- The next statement reads a few thousand rows by primary key: sorted probes of the index, the
-- cheapest plan (4 ms for 2,704 ids, against 8 for one lateral probe each and 50 for the
-- whole-table scan the planner picks when the ids are many).
SELECT set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true);

-- name: file_members
-- The files of a cluster phase small enough to be decided by its first row (no component rows).
SELECT f.id, f.hash, f.alt_hashes, coalesce(f.width::bigint * f.height, 0), f.size, f.mtime, f.path
FROM file f WHERE f.id = ANY(%(ids)s::bigint[])
ORDER BY f.id;

-- name: copy_groups
-- Groups decided by the cluster phase's first row, in the transaction that finishes it (once, see
-- copy_pairs), numbered as assemble_groups numbers them: by their first member's id.
COPY dup_group (job_id, group_no, keeper_id, members, member_ids, reason) FROM STDIN;

-- name: assemble_groups
-- The groups decided in one range of components become numbered groups. A group's number is its
-- first member's id: unique in the job, in the order groups are listed, and the same however often
-- the row is worked (redelivery changes nothing).
INSERT INTO dup_group (job_id, group_no, keeper_id, members, member_ids, reason)
SELECT %(job_id)s, cg.members[1], cg.keeper_id, cardinality(cg.members), cg.members, cg.reason
FROM file_component c JOIN cluster_group cg ON cg.job_id = c.job_id AND cg.keeper_id = c.file_id
WHERE c.job_id = %(job_id)s AND c.component BETWEEN %(first)s AND %(last)s
ON CONFLICT DO NOTHING;

-- name: work_attempts
SELECT phase, count(*) AS rows, sum(attempts) AS attempts, max(attempts) AS most,
       count(*) FILTER (WHERE status = 'done') AS done
FROM work WHERE job_id = %(job_id)s
GROUP BY phase;

-- name: job_file_ids
SELECT id FROM file WHERE job_id = %(job_id)s ORDER BY path;

-- name: job_phase_seconds
SELECT phase, extract(epoch FROM finished_at - started_at)::float8
FROM job_phase WHERE job_id = %(job_id)s ORDER BY ordinal;
-- ---------------------------------------------------------------------------------------------
-- Issue 4: hash kinds, reuse of stored hashes (rescans, byte-identical files), orientation variants.

-- name: set_job_hashing
UPDATE job SET hash_algo = %(algo)s, hash_size = %(size)s, rotations = %(rotations)s, reuse = %(reuse)s,
               hash_kind = %(kind)s, verify_up_to = %(verify_up_to)s, all_turns = %(all_turns)s
WHERE id = %(job_id)s;

-- name: job_hashing
SELECT hash_algo, hash_size, rotations, reuse, hash_kind FROM job WHERE id = %(job_id)s;

-- name: pending_files
-- Files waiting for their hash row, and their bytes: when they are few the CLI hashes them itself.
SELECT count(*), coalesce(sum(size), 0)::bigint FROM file WHERE job_id = %(job_id)s AND status = 'pending';

-- name: known_digests
-- What is already known about these contents: this job's outcome for a byte-identical file
-- (hashed, copied or failed) first, else another job's hash of the same kind (unless the job
-- was told to rehash).
SELECT DISTINCT ON (digest) digest, status, hash, alt_hashes, width, height, error, ties, thumb
FROM file
WHERE digest = ANY(%(digests)s::bytea[])
  AND ((job_id = %(job_id)s AND status IN ('hashed', 'skipped', 'failed'))
       OR (%(other_jobs)s AND hash_kind = %(kind)s AND hash IS NOT NULL))
ORDER BY digest, (job_id = %(job_id)s) DESC, id DESC;

-- name: hash_phase_timing
-- Seconds from the hash phase's start (the submit) to its last finished row, files it decoded,
-- and their hash kind: what `neardup bench hash` reports.
SELECT extract(epoch FROM (SELECT max(finished_at) FROM work
                           WHERE job_id = %(job_id)s AND phase = 'hash') - p.started_at),
       (SELECT count(*) FROM file WHERE job_id = %(job_id)s AND status = 'hashed'),
       (SELECT min(hash_kind) FROM file WHERE job_id = %(job_id)s)
FROM job_phase p WHERE p.job_id = %(job_id)s AND p.phase = 'hash';
