#!/usr/bin/env bash
# Cancel a job: the same single statement as `neardup cancel`.
source "$(dirname "$0")/lib.sh"
usage() {
    cat <<'USAGE'
usage: scripts/cancel.sh JOB

Cancels a pending or running job in one statement (db/queries.sql: cancel_job): its pending
rows become cancelled, running rows finish or are abandoned, the job becomes cancelled and a
job_cancelled event is written. Finished work is kept: `neardup resume JOB` continues it.
Exit 0 when the job is (or already was) cancelled; 2 for a finished or unknown job.
Uses $DATABASE_URL, else `neardup db url`.

example: scripts/cancel.sh 12
USAGE
}
[[ "${1:-}" == "-h" || "${1:-}" == "--help" ]] && { usage; exit 0; }
[[ $# -eq 1 ]] || { usage >&2; exit 2; }
connect
need_job "$1"
done_row="$(sql -tA -F' ' -v job_id="$1" <<< "$(named_query cancel_job)")"
if [[ -n "$done_row" ]]; then
    echo "job $1 cancelled (${done_row#* } units of work not started); \`neardup resume $1\` continues it"
    exit 0
fi
status="$(sql -tA -c "SELECT status FROM job WHERE id = $1")"
[[ "$status" == "cancelled" ]] && { echo "job $1 was already cancelled"; exit 0; }
die "job $1: $status; there is nothing to cancel"
