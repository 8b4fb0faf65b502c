#!/usr/bin/env bash
# The newest jobs with their progress, from the job_progress view.
source "$(dirname "$0")/lib.sh"
usage() {
    cat <<'USAGE'
usage: scripts/jobs.sh [--active] [--limit N]

One line per job, newest first: status, phase, percent, elapsed time, ETA, error.
--active shows only pending and running jobs; --limit N (default 20).
Uses $DATABASE_URL, else `neardup db url`.

example: scripts/jobs.sh --active
USAGE
}
active=false limit=20
while [[ $# -gt 0 ]]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --active) active=true; shift ;;
        --limit) [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || die "--limit needs a positive number"; limit="$2"; shift 2 ;;
        *) usage >&2; exit 2 ;;
    esac
done
connect
sql -v active_only="$active" -v limit="$limit" <<'SQL'
SELECT job_id, status, phase, percent, round(elapsed_s::numeric, 1) AS elapsed_s,
       round(eta_s::numeric, 1) AS eta_s, error
FROM job_progress
WHERE NOT :active_only OR status IN ('pending', 'running')
ORDER BY job_id DESC LIMIT :limit;
SQL
