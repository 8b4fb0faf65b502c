#!/usr/bin/env bash
# The files of a job that failed, each with its one-line reason.
source "$(dirname "$0")/lib.sh"
usage() {
    cat <<'USAGE'
usage: scripts/failed-files.sh JOB

Prints path and reason of every failed file of the job (the same statement as
`neardup scan --json`'s "failed" list), as CSV with a header line.
Uses $DATABASE_URL, else `neardup db url`.

example: scripts/failed-files.sh 12 > failed.csv
USAGE
}
[[ "${1:-}" == "-h" || "${1:-}" == "--help" ]] && { usage; exit 0; }
[[ $# -eq 1 ]] || { usage >&2; exit 2; }
connect
need_job "$1"
sql --csv -v job_id="$1" <<< "$(named_query failed_files)"
