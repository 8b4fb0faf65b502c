#!/usr/bin/env bash
# Progress of a job, read from the same SQL views as `neardup status`.
source "$(dirname "$0")/lib.sh"
usage() {
    cat <<'USAGE'
usage: scripts/progress.sh JOB [--recount]

Prints the job's status, overall percentage, elapsed time and ETA (view job_progress), then
each phase's counts, rate and ETA (view phase_progress). --recount also counts every work
row the slow way (view phase_recount): its numbers must equal the fast view's.
Uses $DATABASE_URL, else `neardup db url`. Exit 2: bad or unknown job; 3: no database.

example: DATABASE_URL=postgresql://user@db/neardup scripts/progress.sh 12
USAGE
}
[[ "${1:-}" == "-h" || "${1:-}" == "--help" ]] && { usage; exit 0; }
[[ $# -ge 1 && $# -le 2 ]] || { usage >&2; exit 2; }
[[ $# -eq 1 || "$2" == "--recount" ]] || die "unknown option '$2'"
connect
need_job "$1"
sql -v job="$1" <<'SQL'
SELECT job_id, status, phase, percent, round(elapsed_s::numeric, 1) AS elapsed_s,
       round(eta_s::numeric, 1) AS eta_s, error
FROM job_progress WHERE job_id = :job;
SELECT phase, status, total, done, failed, skipped, cancelled, pending, running,
       round(100 * fraction::numeric, 2) AS percent, round(rate::numeric, 1) AS per_s,
       round(eta_s::numeric, 1) AS eta_s
FROM phase_progress WHERE job_id = :job ORDER BY ordinal;
SQL
if [[ $# -eq 2 ]]; then
    sql -v job="$1" <<'SQL'
SELECT r.phase, r.total, r.done, r.failed, r.skipped, r.cancelled, r.pending, r.running,
       (r.total, r.done, r.failed, r.skipped, r.cancelled, r.pending, r.running)
       = (p.total, p.done, p.failed, p.skipped, p.cancelled, p.pending, p.running) AS matches_view
FROM phase_recount r JOIN phase_progress p USING (job_id, phase)
WHERE r.job_id = :job ORDER BY p.ordinal;
SQL
fi
