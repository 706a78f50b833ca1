#!/bin/sh
# member-query.sh - the source's MemberQuery examples on member_dir and on PostgreSQL 15.
#
# Usage: sh bench/member-query.sh [BUILD_DIR]   (make bench-member-query passes build/)
# Generates N members (default 1,000,000; member-gen seed 1), starts a
# throwaway PostgreSQL 15 cluster (initdb + pg_ctl as the postgres user, a
# unix socket in the bench directory, fsync off: nothing here must survive),
# and runs bench/member_query_bench.py: the same members loaded into both,
# the same 12 queries, matches compared (any difference fails the run), p50
# per query on each side and the ratio. RUNS=<n> runs per query (default 9).
# BASE=<build dir> (e.g. a copy of main's build/) also runs every query on
# that build's member-query, for before/after in one run.
set -eu
BUILD=${1:-build}
N=${N:-1000000}
RUNS=${RUNS:-9}
. "$(dirname "$0")/lib.sh"
bench_init member-query
PG=/usr/lib/postgresql/15/bin
[ -x "$PG/initdb" ] || { echo "member-query.sh: PostgreSQL 15 is not installed (scripts/deps.sh bench)" >&2; exit 1; }

echo "generating $N members (member-gen --seed 1)"
"$BUILD/bin/member-gen" --count "$N" --seed 1 --out "$BENCH_DIR/members.jsonl"
chmod 755 "$BENCH_DIR"
chmod 644 "$BENCH_DIR/members.jsonl"

mkdir -p "$BENCH_DIR/pg"
chown postgres "$BENCH_DIR/pg"
port=$(bench_port)
runuser -u postgres -- "$PG/initdb" -D "$BENCH_DIR/pg/data" -A trust -U postgres >/dev/null
runuser -u postgres -- "$PG/pg_ctl" -D "$BENCH_DIR/pg/data" -l "$BENCH_DIR/pg/log" -w \
    -o "-k $BENCH_DIR/pg -p $port -c listen_addresses= -c fsync=off -c synchronous_commit=off -c shared_buffers=256MB -c work_mem=64MB -c maintenance_work_mem=256MB" start >/dev/null
trap 'runuser -u postgres -- "$PG/pg_ctl" -D "$BENCH_DIR/pg/data" -m fast stop >/dev/null 2>&1 || true; bench_cleanup' EXIT

/usr/bin/python3 "$(dirname "$0")/member_query_bench.py" "$BENCH_DIR/members.jsonl" "$BUILD" \
    "$BENCH_DIR/pg" "$port" "$RUNS" "${BASE:-}"
echo "reproduce: N=$N RUNS=$RUNS${BASE:+ BASE=$BASE} sh bench/member-query.sh $BUILD"
