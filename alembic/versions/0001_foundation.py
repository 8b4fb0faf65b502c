"""Foundation: jobs, files, work rows, pairs, groups, progress views and the broker's schema.

Revision ID: 0001
Revises:
"""
from __future__ import annotations

from dramatiq_postgres import generate_init_sql

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = """
CREATE TABLE job (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status       text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    phase        text NOT NULL DEFAULT 'hash'
                 CHECK (phase IN ('hash', 'compare', 'finalize', 'done')),
    roots        text[] NOT NULL,
    threshold    integer NOT NULL CHECK (threshold BETWEEN 0 AND 64),
    block_size   integer NOT NULL CHECK (block_size > 0),
    fanout       integer NOT NULL CHECK (fanout > 0),
    max_attempts integer NOT NULL CHECK (max_attempts > 0),
    lease_s      double precision NOT NULL CHECK (lease_s > 0),
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    -- When tickets (broker messages) were last sent for the current phase: lets the monitor re-send
    -- them if they were lost, without flooding the queue.
    kicked_at    timestamptz
);

-- One row per phase of a job, made at submit. The weight is the phase's expected cost, fixed up front
-- so that the overall percentage cannot go backwards when a later phase creates its rows.
CREATE TABLE job_phase (
    job_id      bigint NOT NULL REFERENCES job (id) ON DELETE CASCADE,
    phase       text NOT NULL,
    ordinal     smallint NOT NULL,
    weight      double precision NOT NULL CHECK (weight > 0),
    started_at  timestamptz,
    finished_at timestamptz,
    PRIMARY KEY (job_id, phase)
);

CREATE TABLE work (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id      bigint NOT NULL REFERENCES job (id) ON DELETE CASCADE,
    phase       text NOT NULL,
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'running', 'done', 'failed', 'skipped', 'cancelled')),
    units       bigint NOT NULL CHECK (units >= 0),
    block_a     integer,
    block_b     integer,
    attempts    integer NOT NULL DEFAULT 0,
    claim       uuid,
    lease_until timestamptz,
    error       text,
    finished_at timestamptz
);
-- The claim path: only pending rows, so the index stays small however many rows are finished.
CREATE INDEX work_pending_idx ON work (job_id, phase, id) WHERE status = 'pending';
-- The lease sweep: only running rows.
CREATE INDEX work_running_idx ON work (lease_until) WHERE status = 'running';
CREATE INDEX work_progress_idx ON work (job_id, phase, status) INCLUDE (units);

CREATE TABLE file (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id    bigint NOT NULL REFERENCES job (id) ON DELETE CASCADE,
    work_id   bigint REFERENCES work (id) ON DELETE SET NULL,
    path      text NOT NULL,
    -- The exact bytes of the name when it is not valid UTF-8 (text cannot hold them).
    path_raw  bytea,
    size      bigint NOT NULL,
    mtime     double precision NOT NULL,
    status    text NOT NULL DEFAULT 'pending'
              CHECK (status IN ('pending', 'hashed', 'failed', 'skipped')),
    hash      bigint,
    width     integer,
    height    integer,
    error     text,
    block     integer,
    group_no  integer,
    UNIQUE (job_id, path)
);
CREATE INDEX file_work_idx ON file (work_id);
CREATE INDEX file_block_idx ON file (job_id, block) INCLUDE (hash) WHERE block IS NOT NULL;
CREATE INDEX file_status_idx ON file (job_id, status);

CREATE TABLE pair (
    job_id   bigint NOT NULL REFERENCES job (id) ON DELETE CASCADE,
    a        bigint NOT NULL,
    b        bigint NOT NULL,
    distance smallint NOT NULL,
    PRIMARY KEY (job_id, a, b),
    CHECK (a < b)
);

CREATE TABLE dup_group (
    job_id    bigint NOT NULL REFERENCES job (id) ON DELETE CASCADE,
    group_no  integer NOT NULL,
    keeper_id bigint NOT NULL REFERENCES file (id) ON DELETE CASCADE,
    members   integer NOT NULL,
    reason    text NOT NULL,
    PRIMARY KEY (job_id, group_no)
);

-- A singleton that keeps one self-rescheduling monitor chain alive (see actors/monitor_jobs.py).
CREATE TABLE monitor_state (
    id           boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_tick_at timestamptz NOT NULL DEFAULT '-infinity',
    armed_at     timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO monitor_state DEFAULT VALUES;

-- Progress, derived from the rows alone. The hash phase counts files (a batch row can hold both
-- hashed and failed files); the other phases count the units their work rows carry.
CREATE VIEW phase_progress AS
WITH counts AS (
    SELECT f.job_id, 'hash'::text AS phase,
           count(*)::bigint AS total,
           count(*) FILTER (WHERE f.status = 'hashed')::bigint AS done,
           count(*) FILTER (WHERE f.status = 'failed')::bigint AS failed,
           count(*) FILTER (WHERE f.status = 'skipped')::bigint AS skipped,
           0::bigint AS cancelled
    FROM file f GROUP BY f.job_id
    UNION ALL
    SELECT w.job_id, w.phase,
           sum(w.units)::bigint,
           coalesce(sum(w.units) FILTER (WHERE w.status = 'done'), 0)::bigint,
           coalesce(sum(w.units) FILTER (WHERE w.status = 'failed'), 0)::bigint,
           coalesce(sum(w.units) FILTER (WHERE w.status = 'skipped'), 0)::bigint,
           coalesce(sum(w.units) FILTER (WHERE w.status = 'cancelled'), 0)::bigint
    FROM work w WHERE w.phase <> 'hash' GROUP BY w.job_id, w.phase
)
SELECT p.job_id, p.phase, p.ordinal, p.weight, p.started_at, p.finished_at,
       coalesce(c.total, 0) AS total,
       coalesce(c.done, 0) AS done,
       coalesce(c.failed, 0) AS failed,
       coalesce(c.skipped, 0) AS skipped,
       coalesce(c.cancelled, 0) AS cancelled,
       CASE WHEN p.finished_at IS NOT NULL THEN 'completed'
            WHEN p.started_at IS NOT NULL THEN 'running'
            ELSE 'pending' END AS status,
       -- A phase is whole only once it is marked finished: 0 of 0 then counts as complete, and a
       -- phase whose last row just finished is not reported complete before the monitor says so.
       CASE WHEN p.finished_at IS NOT NULL THEN 1.0
            WHEN coalesce(c.total, 0) = 0 THEN 0.0
            ELSE least(0.9999, (c.done + c.failed + c.skipped + c.cancelled)::double precision / c.total)
       END AS fraction
FROM job_phase p
LEFT JOIN counts c ON c.job_id = p.job_id AND c.phase = p.phase;

CREATE VIEW job_progress AS
SELECT j.id AS job_id, j.status, j.phase,
       CASE WHEN j.status = 'completed' THEN 100.0
            ELSE least(99.99, floor(100.0 * sum(pp.weight * pp.fraction) / sum(pp.weight) * 100) / 100)
       END AS percent,
       j.created_at, j.started_at, j.finished_at, j.error
FROM job j JOIN phase_progress pp ON pp.job_id = j.id
GROUP BY j.id;
"""


def upgrade() -> None:
    op.execute(SCHEMA)
    op.execute(generate_init_sql())


def downgrade() -> None:
    op.execute(
        "DROP VIEW job_progress; DROP VIEW phase_progress; "
        "DROP TABLE monitor_state, dup_group, pair, file, work, job_phase, job CASCADE; "
        "DROP SCHEMA dramatiq CASCADE;"
    )
