#!/usr/bin/env bash
# Give expired leases back now, instead of waiting for the monitor's next sweep.
source "$(dirname "$0")/lib.sh"
usage() {
    cat <<'USAGE'
usage: scripts/requeue-stale.sh

Runs the monitor's own lease sweep (db/queries.sql: reclaim_expired) once: every running row
whose lease has expired goes back to pending (or fails after its job's max attempts, its files
failed with a file_failed event each; a cancelled job's rows are cancelled). Prints the ids of
the jobs touched. Running workers and the monitor pick the rows up; a row whose lease has not
expired is never taken from the worker holding it.
Uses $DATABASE_URL, else `neardup db url`.

example: scripts/requeue-stale.sh
USAGE
}
[[ "${1:-}" == "-h" || "${1:-}" == "--help" ]] && { usage; exit 0; }
[[ $# -eq 0 ]] || { usage >&2; exit 2; }
connect
jobs="$(sql -tA <<< "$(named_query reclaim_expired)" | paste -sd' ' -)"
if [[ -n "$jobs" ]]; then echo "expired leases returned for job(s): $jobs"; else echo "no expired leases"; fi
