#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: installs what vidx needs, builds it, makes a
# small demo library (narrated clips, on-screen titles, subtitles), indexes it, searches it and
# serves the web UI until Ctrl-C. With InternVideo2 weights converted into a model directory
# (--model DIR or VIDX_MODEL), the same run searches by meaning too (see README.md, "Models").
#
# Usage: scripts/demo.sh [--data DIR] [--library DIR] [--model DIR] [--listen HOST:PORT] [--no-serve]
set -euo pipefail
cd "$(dirname "$0")/.."
data=./vidx-data library=./vidx-demo-library model="${VIDX_MODEL:-}"
listen=127.0.0.1:8080 serve=1
while [ $# -gt 0 ]; do
    case "$1" in
    --data) data="$2"; shift ;;
    --library) library="$2"; shift ;;
    --model) model="$2"; shift ;;
    --listen) listen="$2"; shift ;;
    --no-serve) serve=0 ;;
    -h | --help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

scripts/install-deps.sh --no-test-tools
# The demo library is narrated with flite and titled with FFmpeg's drawtext.
for p in ffmpeg flite fonts-dejavu-core; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="${missing:-} $p"
done
if [ -n "${missing:-}" ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq $missing >/dev/null
fi
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B build "${generator[@]}" >/dev/null
cmake --build build -j "$(nproc)"
vidx="build/cli/vidx"
model_args=()
[ -n "$model" ] && model_args=(--model "$model")

scripts/make_demo_library.sh "$library"
echo
echo "== vidx index $library"
"$vidx" --data "$data" "${model_args[@]}" index "$library"
for query in frisbee volcanoes "cooking show" "morning catch" 'harbo*'; do
    echo
    echo "== vidx search \"$query\""
    "$vidx" --data "$data" "${model_args[@]}" search "$query" --limit 3
done
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
echo "Built: $vidx   Data: $data   Library: $library"
echo "Next: '$vidx help' lists the commands; '$vidx search --json \"...\"' gives machine-readable results."
[ "$serve" = 1 ] || exit 0
echo
echo "== vidx serve --listen $listen   (Ctrl-C stops it)"
echo "Open http://$listen/ in a browser and try: frisbee, \"cooking show\", harbo*, volcanoes;"
echo "press a result to play it at that moment, 'Similar' for look-alike moments (with a model),"
echo "'Libraries' to see indexing progress and start a reindex."
exec "$vidx" --data "$data" "${model_args[@]}" serve --listen "$listen"
