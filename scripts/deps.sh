#!/bin/sh
# deps.sh - install the Debian packages the suite builds and tests with.
#
# Idempotent: checks each package with dpkg first and runs apt-get (update
# once, then install) only for what is missing. Needs root on a fresh
# machine; on a machine that already has everything it needs nothing.
set -eu

PKGS="build-essential pkg-config
librdkafka-dev libhiredis-dev libcurl4-openssl-dev libcjson-dev
libh2o-evloop-dev libprotobuf-c-dev protobuf-c-compiler libgrpc-dev
libssl-dev libyaml-dev redis-server redis-tools libcmocka-dev
python3-pytest python3-grpcio python3-confluent-kafka python3-redis
python3-requests python3-protobuf protobuf-compiler
clang-format cppcheck curl procps openssl"
[ "${1:-}" = bench ] && PKGS="$PKGS wrk nginx-light"
# make fuzz: clang with libFuzzer and the sanitizer runtimes (docs/fuzzing.md)
[ "${1:-}" = fuzz ] && PKGS="$PKGS clang libfuzzer-14-dev libclang-rt-14-dev"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing"
if [ "$(id -u)" != 0 ]; then
    echo "deps: missing packages and not root; run 'sudo make deps'" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
