"""Progress you can trust: per-row tallies, rate/ETA views, the event log and its NOTIFY.

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The views read the work rows alone. A finished row carries how many of its units failed or were
# skipped (a hash row's files), written in the transaction that finishes it: the row's own result,
# not a counter kept elsewhere. Phases come from job_phase, so a phase added later reports like
# every other as long as its work rows carry units.
VIEWS = """
-- The views' two reads of the unfinished rows, as functions so that they always take their
-- index: when one job is most of the table the planner would pick a scan of the whole table
-- (every job's rows, once per phase), the wrong plan for a read that must stay cheap.
CREATE FUNCTION phase_pending_units(job bigint, ph text) RETURNS bigint
LANGUAGE sql STABLE
SET enable_seqscan = off SET enable_bitmapscan = off SET max_parallel_workers_per_gather = 0
AS $$
    SELECT coalesce(sum(units), 0)::bigint FROM work
    WHERE job_id = job AND phase = ph AND status = 'pending'
$$;

-- Running rows and the exceptions (failed, skipped, cancelled, done rows with failed or skipped
-- files), from their own small partial index.
CREATE FUNCTION phase_exception_units(job bigint, ph text,
    OUT running bigint, OUT failed bigint, OUT skipped bigint, OUT cancelled bigint)
LANGUAGE sql STABLE
SET enable_seqscan = off SET enable_bitmapscan = off SET max_parallel_workers_per_gather = 0
AS $$
    SELECT coalesce(sum(units) FILTER (WHERE status = 'running'), 0)::bigint,
           coalesce(sum(CASE status WHEN 'failed' THEN units WHEN 'done' THEN failed_units END), 0)::bigint,
           coalesce(sum(CASE status WHEN 'skipped' THEN units WHEN 'done' THEN skipped_units END), 0)::bigint,
           coalesce(sum(units) FILTER (WHERE status = 'cancelled'), 0)::bigint
    FROM work
    WHERE job_id = job AND phase = ph
      AND (status NOT IN ('pending', 'done') OR failed_units > 0 OR skipped_units > 0)
$$;

CREATE VIEW phase_progress AS
SELECT p.job_id, p.phase, p.ordinal, p.weight, p.started_at, p.finished_at,
       p.total_units AS total,
       greatest(p.total_units - q.pending - x.running - x.failed - x.skipped - x.cancelled, 0) AS done,
       x.failed, x.skipped, x.cancelled, q.pending, x.running,
       CASE WHEN p.finished_at IS NOT NULL THEN 'completed'
            WHEN p.started_at IS NULL OR j.status = 'pending' THEN 'pending'
            WHEN j.status IN ('failed', 'cancelled') THEN j.status
            ELSE 'running' END AS status,
       -- Whole only once the phase is marked finished: 0 of 0 is then complete, and a phase whose
       -- last row just finished is not complete before the transition says so. Cancelled units
       -- are not finished work: a resumed job picks them up without the bar going back.
       CASE WHEN p.finished_at IS NOT NULL THEN 1.0::double precision
            WHEN p.total_units = 0 THEN 0.0::double precision
            ELSE least(0.9999, f.finished::double precision / p.total_units)
       END AS fraction,
       r.rate,
       CASE WHEN p.finished_at IS NULL AND j.status = 'running' AND r.rate > 0
            THEN (q.pending + x.running) / r.rate END AS eta_s
FROM job_phase p
JOIN job j ON j.id = p.job_id
-- Only the unfinished side is read (the pending rows, from the claim path's partial index) and
-- the exceptions: a phase near its end costs next to nothing, and no read touches more rows
-- than the job has left.
CROSS JOIN LATERAL phase_pending_units(p.job_id, p.phase) AS q(pending)
CROSS JOIN LATERAL phase_exception_units(p.job_id, p.phase) x
CROSS JOIN LATERAL (SELECT p.total_units - q.pending - x.running - x.cancelled AS finished) f
-- The rate: units per second over the last 256 rows finished (a bounded read however fast the
-- phase goes), over the phase's whole run once it is finished.
CROSS JOIN LATERAL (
    SELECT count(*) AS n, coalesce(sum(l.units), 0)::double precision AS units, min(l.finished_at) AS since
    FROM (SELECT w.units, w.finished_at FROM work w
          WHERE w.job_id = p.job_id AND w.phase = p.phase AND w.finished_at IS NOT NULL
          ORDER BY w.finished_at DESC LIMIT 256) l
) rl
CROSS JOIN LATERAL (
    SELECT CASE
        WHEN p.started_at IS NULL THEN NULL
        WHEN p.finished_at IS NOT NULL
            THEN f.finished / greatest(extract(epoch FROM p.finished_at - p.started_at)::double precision, 1e-3)
        WHEN rl.n = 0 THEN NULL
        ELSE rl.units / greatest(extract(epoch FROM now() - CASE WHEN rl.n < 256
                                     THEN greatest(p.started_at, j.started_at) ELSE rl.since END)
                                 ::double precision, 1e-3)
    END AS rate
) r;

-- One row per job with its phases as JSON: one read gives the whole picture, computed once.
CREATE VIEW job_progress AS
SELECT j.id AS job_id, j.status, j.phase,
       -- Exact arithmetic (numeric) over fractions that never decrease and weights fixed at
       -- submit: the overall percentage cannot go backwards, and is 100 only when completed.
       CASE WHEN j.status = 'completed' THEN 100.00
            ELSE least(99.99, floor(10000 * coalesce(a.weighted / nullif(a.weights, 0), 0)) / 100)
       END::numeric(5, 2) AS percent,
       j.created_at, j.started_at, j.finished_at, j.error,
       e.elapsed_s,
       CASE WHEN j.status = 'running' AND a.weighted > 0 AND e.elapsed_s > 0
            THEN (e.elapsed_s * (a.weights - a.weighted) / a.weighted)::double precision END AS eta_s,
       a.phases
FROM job j
CROSS JOIN LATERAL (
    SELECT sum(pp.weight::numeric * pp.fraction::numeric) AS weighted, sum(pp.weight::numeric) AS weights,
           jsonb_agg(jsonb_build_object(
               'name', pp.phase, 'status', pp.status, 'total', pp.total, 'done', pp.done,
               'failed', pp.failed, 'skipped', pp.skipped, 'cancelled', pp.cancelled,
               'pending', pp.pending, 'running', pp.running, 'fraction', pp.fraction,
               'rate', pp.rate, 'eta_s', pp.eta_s) ORDER BY pp.ordinal) AS phases
    FROM phase_progress pp WHERE pp.job_id = j.id
) a
CROSS JOIN LATERAL (
    SELECT extract(epoch FROM coalesce(j.finished_at, now()) - j.started_at)::double precision AS elapsed_s
) e;

-- The same numbers counted the slow way, from every row: what the fast views must always equal
-- (the tests compare them; `scripts/progress.sh --recount JOB` shows both).
CREATE VIEW phase_recount AS
SELECT p.job_id, p.phase,
       coalesce(sum(w.units), 0)::bigint AS total,
       coalesce(sum(w.units - w.failed_units - w.skipped_units) FILTER (WHERE w.status = 'done'), 0)::bigint
           AS done,
       coalesce(sum(CASE w.status WHEN 'failed' THEN w.units WHEN 'done' THEN w.failed_units END), 0)::bigint
           AS failed,
       coalesce(sum(CASE w.status WHEN 'skipped' THEN w.units WHEN 'done' THEN w.skipped_units END), 0)::bigint
           AS skipped,
       coalesce(sum(w.units) FILTER (WHERE w.status = 'cancelled'), 0)::bigint AS cancelled,
       coalesce(sum(w.units) FILTER (WHERE w.status = 'pending'), 0)::bigint AS pending,
       coalesce(sum(w.units) FILTER (WHERE w.status = 'running'), 0)::bigint AS running
FROM job_phase p
LEFT JOIN work w ON w.job_id = p.job_id AND w.phase = p.phase
GROUP BY p.job_id, p.phase;
"""

SCHEMA = """
DROP VIEW job_progress;
DROP VIEW phase_progress;

ALTER TABLE work
    ADD COLUMN failed_units bigint NOT NULL DEFAULT 0,
    ADD COLUMN skipped_units bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT work_tally_fits CHECK (failed_units >= 0 AND skipped_units >= 0
                                          AND failed_units + skipped_units <= units);
COMMENT ON COLUMN work.failed_units IS 'of a done row: how many of its units (files) failed';
COMMENT ON COLUMN work.skipped_units IS 'of a done row: how many of its units were skipped (finished work)';

-- A phase's size is fixed when its rows are made: every INSERT of work rows adds their units to
-- job_phase.total_units in the same statement (rows are never deleted and their units never
-- change), so the views need only read the unfinished side. A row for a phase the job does not
-- have is refused rather than silently left out of the progress.
ALTER TABLE job_phase ADD COLUMN total_units bigint NOT NULL DEFAULT 0;

CREATE FUNCTION work_sized() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing text;
BEGIN
    WITH made AS (
        SELECT job_id, phase, sum(units) AS units FROM new_rows GROUP BY job_id, phase
    ), sized AS (
        UPDATE job_phase p SET total_units = p.total_units + made.units
        FROM made WHERE p.job_id = made.job_id AND p.phase = made.phase
        RETURNING p.job_id, p.phase
    )
    SELECT string_agg(format('job %s phase %s', m.job_id, m.phase), ', ') INTO missing
    FROM made m WHERE NOT EXISTS (SELECT 1 FROM sized s WHERE s.job_id = m.job_id AND s.phase = m.phase);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'work rows for a phase with no job_phase row: %', missing;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER work_sized AFTER INSERT ON work REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION work_sized();

CREATE FUNCTION work_units_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'work.units is fixed when the row is made (row %)', OLD.id;
END $$;
CREATE TRIGGER work_units_fixed BEFORE UPDATE OF units ON work
    FOR EACH ROW WHEN (OLD.units IS DISTINCT FROM NEW.units) EXECUTE FUNCTION work_units_fixed();

-- The views' reads, each an index-only range scan: pending units (the claim path's index, now
-- carrying units), the exceptions, and the most recently finished rows for the rate.
DROP INDEX work_pending_idx;
CREATE INDEX work_pending_idx ON work (job_id, phase, id) INCLUDE (units) WHERE status = 'pending';
CREATE INDEX work_exception_idx ON work (job_id, phase, status)
    INCLUDE (units, failed_units, skipped_units)
    WHERE status NOT IN ('pending', 'done') OR failed_units > 0 OR skipped_units > 0;
CREATE INDEX work_finished_idx ON work (job_id, phase, finished_at) INCLUDE (units)
    WHERE finished_at IS NOT NULL;

-- The audit trail. Writers lock the job row before inserting (see db/queries.sql, add_event), so
-- one job's events take their ids in commit order: a reader that has seen event N never later
-- finds a smaller id appear, which is what resuming an SSE stream from Last-Event-ID relies on.
CREATE TABLE event (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id bigint NOT NULL REFERENCES job (id) ON DELETE CASCADE,
    at     timestamptz NOT NULL DEFAULT now(),
    kind   text NOT NULL,
    phase  text,
    data   jsonb NOT NULL DEFAULT '{}'
);
COMMENT ON COLUMN event.kind IS
    'job_submitted, job_started, phase_started, phase_progress, file_failed, phase_completed, '
    'job_completed, job_failed, job_cancelled, job_resumed';
CREATE INDEX event_job_idx ON event (job_id, id);
CREATE INDEX event_checkpoint_idx ON event (job_id, phase, id)
    WHERE kind IN ('phase_started', 'phase_progress');

-- Listeners learn of new events at commit; the payload is small (job and newest event id), the
-- rows are read from the table.
CREATE FUNCTION event_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('neardup_events', json_build_object('job', job_id, 'event', max(id))::text)
    FROM new_events GROUP BY job_id;
    RETURN NULL;
END $$;
CREATE TRIGGER event_notify AFTER INSERT ON event REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION event_notify();

-- A hash row that failed for good fails its still pending files, each with its file_failed
-- event (the job row locked first, as for every event): used by release_work and reclaim_expired.
CREATE FUNCTION fail_work_files(work_ids bigint[], errors text[]) RETURNS bigint
LANGUAGE sql AS $$
    WITH failed AS (
        UPDATE file f SET status = 'failed', error = v.error
        FROM unnest(work_ids, errors) AS v(work_id, error)
        WHERE f.work_id = v.work_id AND f.status = 'pending'
        RETURNING f.id, f.job_id, f.path, f.error
    ), locked AS (
        SELECT id FROM job WHERE id IN (SELECT job_id FROM failed) ORDER BY id FOR NO KEY UPDATE
    ), events AS (
        INSERT INTO event (job_id, kind, phase, data)
        SELECT l.id, 'file_failed', 'hash', jsonb_build_object('file', ff.id, 'path', ff.path, 'error', ff.error)
        FROM failed ff JOIN locked l ON l.id = ff.job_id
        ORDER BY ff.id
        RETURNING 1
    )
    SELECT count(*) FROM events
$$;

-- The monitor's own cost, so a benchmark can set it against a job's wall time.
ALTER TABLE monitor_state
    ADD COLUMN busy_s double precision NOT NULL DEFAULT 0,
    ADD COLUMN ticks bigint NOT NULL DEFAULT 0;
"""

# Jobs made before this revision: tally their done hash rows, give files that no row holds (they
# failed during the walk) a settled row, and size every phase from its rows.
BACKFILL = """
UPDATE work w SET failed_units = c.failed, skipped_units = c.skipped
FROM (SELECT work_id, count(*) FILTER (WHERE status = 'failed') AS failed,
             count(*) FILTER (WHERE status = 'skipped') AS skipped
      FROM file WHERE work_id IS NOT NULL GROUP BY work_id) c
WHERE w.id = c.work_id AND w.status = 'done';

WITH loose AS (
    SELECT job_id, count(*) AS n, count(*) FILTER (WHERE status = 'failed') AS failed,
           count(*) FILTER (WHERE status = 'skipped') AS skipped
    FROM file WHERE work_id IS NULL AND status IN ('failed', 'skipped') GROUP BY job_id
), made AS (
    INSERT INTO work (job_id, phase, status, units, failed_units, skipped_units)
    SELECT job_id, 'hash', 'done', n, failed, skipped FROM loose
    RETURNING id, job_id
)
UPDATE file f SET work_id = made.id FROM made
WHERE f.job_id = made.job_id AND f.work_id IS NULL AND f.status IN ('failed', 'skipped');

UPDATE job_phase p SET total_units = coalesce(
    (SELECT sum(units) FROM work w WHERE w.job_id = p.job_id AND w.phase = p.phase), 0);
"""

def old_views() -> str:
    """0001's views, read from that revision rather than copied here."""
    path = Path(__file__).with_name("0001_foundation.py")
    spec = importlib.util.spec_from_file_location("neardup_rev_0001", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SCHEMA[module.SCHEMA.index("CREATE VIEW phase_progress"):]


def upgrade() -> None:
    op.execute(SCHEMA)
    op.execute(BACKFILL)
    op.execute(VIEWS)


def downgrade() -> None:
    op.execute("""
    DROP VIEW phase_recount;
    DROP VIEW job_progress;
    DROP VIEW phase_progress;
    DROP FUNCTION phase_pending_units(bigint, text), phase_exception_units(bigint, text);
    DROP FUNCTION fail_work_files(bigint[], text[]);
    DROP TABLE event;
    DROP FUNCTION event_notify();
    ALTER TABLE monitor_state DROP COLUMN busy_s, DROP COLUMN ticks;
    DROP INDEX work_finished_idx, work_exception_idx, work_pending_idx;
    CREATE INDEX work_pending_idx ON work (job_id, phase, id) WHERE status = 'pending';
    DROP TRIGGER work_units_fixed ON work;
    DROP TRIGGER work_sized ON work;
    DROP FUNCTION work_units_fixed(), work_sized();
    ALTER TABLE job_phase DROP COLUMN total_units;
    ALTER TABLE work DROP CONSTRAINT work_tally_fits, DROP COLUMN failed_units, DROP COLUMN skipped_units;
    """)
    op.execute(old_views())
