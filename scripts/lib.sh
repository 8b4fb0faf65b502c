# Shared by the admin scripts: the database URL, psql, and the named queries of db/queries.sql
# (the statements neardup itself runs, so a script does exactly what the program would).
# shellcheck shell=bash
set -euo pipefail
NEARDUP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
QUERIES="$NEARDUP_ROOT/db/queries.sql"
ME="$(basename "$0")"

die() { echo "$ME: $*" >&2; exit "${2:-2}"; }

db_url() {
    if [[ -n "${DATABASE_URL:-}" ]]; then echo "$DATABASE_URL"; return; fi
    command -v neardup >/dev/null || die "set DATABASE_URL (neardup is not on PATH to ask)" 3
    neardup db url
}

sql() { psql "$URL" -X -q -v ON_ERROR_STOP=1 "$@"; }

# A named statement from db/queries.sql, its %(name)s parameters turned into psql :'name' variables.
named_query() {
    local body
    body="$(awk -v name="$1" '/^-- name: / { on = ($3 == name); next } on { print }' "$QUERIES" \
            | sed -E "s/%\(([a-z_]+)\)s/:'\1'/g")"
    [[ -n "$body" ]] || die "no query named $1 in $QUERIES" 70
    printf '%s\n' "$body"
}

# The job argument: a number, and a job that exists (else one line, exit 2, like neardup).
need_job() {
    [[ "$1" =~ ^[0-9]+$ ]] || die "job must be a number, got '$1'"
    [[ -n "$(sql -tA -c "SELECT 1 FROM job WHERE id = $1")" ]] || die "job $1: no such job"
}

connect() {
    command -v psql >/dev/null || die "psql is not installed (Debian: apt-get install postgresql-client)" 3
    URL="$(db_url)"
    sql -tA -c "SELECT 1" >/dev/null 2>&1 || die "cannot reach PostgreSQL at $URL" 3
}
