#!/usr/bin/env bash
# Sets up everything (Debian packages, the FAISS C API) and runs all of vidx's tests: the
# regular build and an AddressSanitizer + UndefinedBehaviorSanitizer build, each under ctest.
#
# Usage: scripts/test.sh [--no-install] [--no-sanitize] [-j N] [ctest -R regex]
set -euo pipefail
cd "$(dirname "$0")/.."

install=1 sanitize=1 jobs=$(nproc) filter=()
while [ $# -gt 0 ]; do
    case "$1" in
    --no-install) install=0 ;;
    --no-sanitize) sanitize=0 ;;
    -j) jobs="$2"; shift ;;
    -R) filter=(-R "$2"); shift ;;
    -h | --help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

[ "$install" = 1 ] && scripts/install-deps.sh

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

run_suite() { # name build-dir cmake-options...
    local name="$1" dir="$2"
    shift 2
    echo "== $name build ($dir)"
    cmake -S . -B "$dir" "${generator[@]}" "$@" >/dev/null
    cmake --build "$dir" -j "$jobs"
    echo "== $name tests"
    (cd "$dir" && ctest --output-on-failure --timeout 600 -j "$jobs" "${filter[@]}")
}

run_suite regular build
if [ "$sanitize" = 1 ]; then
    # FAISS and OpenMP keep thread-local allocations alive at exit; leaks in our own code are
    # still reported by the dedicated leak checks inside the tests.
    export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    run_suite "sanitizer (ASan+UBSan)" build-asan -DVIDX_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
fi
echo "== all test suites passed"
