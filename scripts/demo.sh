#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: installs what vidx needs, builds it, makes a
# small sample library and shows what vidx knows about it.
#
# Usage: scripts/demo.sh [--data DIR] [--model DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
data=./vidx-data model="${VIDX_MODEL:-}"
while [ $# -gt 0 ]; do
    case "$1" in
    --data) data="$2"; shift ;;
    --model) model="$2"; shift ;;
    -h | --help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

scripts/install-deps.sh
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B build "${generator[@]}" >/dev/null
cmake --build build -j "$(nproc)"
vidx=build/cli/vidx

if [ -x scripts/make_sample_media.sh ]; then
    scripts/make_sample_media.sh "$data/sample-library"
fi
echo
echo "== vidx status"
"$vidx" --data "$data" status
echo
echo "== vidx verify"
"$vidx" --data "$data" verify
if [ -n "$model" ]; then
    echo
    echo "== vidx model info $model"
    "$vidx" model info "$model"
fi
echo
echo "Built: $vidx   Data: $data"
echo "Next: '$vidx help' lists the commands."
