#!/bin/sh
# lint.sh - `make lint`: formatting, static analysis and banned calls.
#
# clang-format (check mode, the root .clang-format decides), cppcheck over our
# C sources, and a curl-checksrc-style refusal of sprintf, strcpy, strcat,
# atoi and strtok in our code.
set -u
cd "$(dirname "$0")/.."
files=$(git ls-files '*.c' '*.h')
rc=0

echo "lint: clang-format"
# shellcheck disable=SC2086
clang-format --dry-run -Werror $files || rc=1

echo "lint: banned functions"
# shellcheck disable=SC2086
if grep -nE '\b(sprintf|vsprintf|strcpy|strcat|atoi|strtok)\s*\(' $files; then
    echo "lint: use snprintf, memcpy with a length, strtol or strtok_r instead" >&2
    rc=1
fi

echo "lint: cppcheck"
# shellcheck disable=SC2086
cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability \
    --suppress=missingIncludeSystem --inline-suppr -Ilibcommon/include $files || rc=1

[ $rc = 0 ] && echo "lint: clean"
exit $rc
