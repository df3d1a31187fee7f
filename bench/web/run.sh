#!/bin/sh
# bench/web/run.sh [BUILD_DIR] [SEGMENTS]: wrk against `vidx serve --model` on a synthetic
# catalog (SEGMENTS random vectors, default 100000, in the space of the tiny test model so the
# server's text tower embeds queries into it), and st_search's own time (FAISS on the same
# index, same k as the server's vision candidates) in the same run as the baseline:
#   /healthz                      the server's floor
#   /api/search, fixed text       the query vector from the engine's cache
#   /api/search, varying text     the query vector computed by the text tower each time
# Prints QPS and p50/p99 for each, and the ratios to FAISS. Needs wrk (Debian's `wrk`), ffmpeg.
set -eu
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$SRC/build}
SEGMENTS=${2:-100000}
VIDX=$BUILD/cli/vidx
TOOL=$BUILD/bench/web/bench_web_catalog
MODEL=$SRC/tests/reference/fixtures/text/models/bert_1b_like
DURATION=${WRK_DURATION:-10s}
CONNS=${WRK_CONNECTIONS:-8}
THREADS=${SERVE_THREADS:-2}
command -v wrk >/dev/null || { echo "run.sh: needs wrk (apt-get install wrk)" >&2; exit 1; }
WORK=$(mktemp -d /tmp/vidx-bench-web.XXXXXX)
SERVER=
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
export VIDX_LOG=warn
unset VIDX_DATA VIDX_MODEL VIDX_TOKEN

# one real video indexed with the model gives the space's model id and dim
mkdir -p "$WORK/lib"
ffmpeg -nostdin -hide_banner -loglevel error -f lavfi -i testsrc=size=64x48:rate=10:duration=4 \
    -pix_fmt yuv420p "$WORK/lib/seed.mp4"
"$VIDX" --data "$WORK/data" --model "$MODEL" index "$WORK/lib" --library seed --no-asr \
    --no-ocr >/dev/null
set -- $("$VIDX" --data "$WORK/data" --json status | /usr/bin/python3 -c \
    'import json,sys; i=json.load(sys.stdin)["indexes"][0]; print(i["model"], i["dim"])')
MODEL_ID=$1 DIM=$2
t0=$(date +%s.%N)
"$TOOL" fill "$WORK/data" "$MODEL_ID" "$DIM" "$SEGMENTS"
echo "fill: $(/usr/bin/python3 -c "import sys; print(round($(date +%s.%N) - $t0, 1))") s"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"

"$VIDX" --data "$WORK/data" --model "$MODEL" serve --listen 127.0.0.1:0 --threads "$THREADS" \
    >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER=$!
for _ in $(seq 100); do
    grep -q http "$WORK/serve.out" 2>/dev/null && break
    sleep 0.1
done
URL=$(grep -o 'http://[0-9.:]*' "$WORK/serve.out")
curl_get() { /usr/bin/python3 -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1]).read()' "$1"; }
curl_get "$URL/api/search?q=warmup&modalities=vision" # loads the index

# the server's vision search asks FAISS for max(200, 20 * limit) candidates
"$TOOL" faiss "$WORK/data" "$MODEL_ID" "$DIM" 2000 200 | tee "$WORK/faiss.txt"

cat >"$WORK/vary.lua" <<'LUA'
-- a different query text on every request: the text tower runs each time
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/api/search?modalities=vision&limit=10&q=query+number+" ..
                    tostring(n) .. "+" .. tostring(math.random(1000000000)))
end
LUA

run_wrk() { # name, then wrk arguments
    name=$1
    shift
    wrk -t2 -c"$CONNS" -d"$DURATION" --latency "$@" >"$WORK/$name.txt"
    awk -v name="$name" '
        /Requests\/sec/ { qps = $2 }
        /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
        /Non-2xx/ { bad = $NF }
        END { printf "%-16s qps=%s p50=%s p99=%s%s\n", name, qps, p50, p99,
              bad ? " NON-2XX=" bad : "" }' "$WORK/$name.txt"
}
echo "wrk: $CONNS connections, $DURATION each, serve --threads $THREADS, $SEGMENTS segments, dim $DIM"
run_wrk healthz "$URL/healthz" | tee "$WORK/summary.txt"
run_wrk search_cached "$URL/api/search?q=harbor+lights+at+night&modalities=vision&limit=10" \
    | tee -a "$WORK/summary.txt"
run_wrk search_computed -s "$WORK/vary.lua" "$URL" | tee -a "$WORK/summary.txt"
run_wrk search_fused "$URL/api/search?q=harbor+lantern&modalities=lexical,vision&limit=10" \
    | tee -a "$WORK/summary.txt"

# ratios against FAISS's own p50 (wrk prints us/ms/s units)
/usr/bin/python3 - "$WORK/faiss.txt" "$WORK/summary.txt" <<'PY'
import re, sys
faiss = dict(kv.split("=") for kv in open(sys.argv[1]).read().split()[1:])
def ms(t):
    v, u = re.match(r"([\d.]+)(us|ms|s)", t).groups()
    return float(v) * {"us": 1e-3, "ms": 1, "s": 1e3}[u]
f50 = float(faiss["p50_ms"])
for line in open(sys.argv[2]):
    f = dict(kv.split("=") for kv in line.split()[1:])
    print(f"{line.split()[0]:16s} p50 {ms(f['p50']):8.3f} ms = {ms(f['p50']) / f50:6.2f}x FAISS p50;"
          f" qps {float(f['qps']):8.1f} = {float(f['qps']) / float(faiss['qps']):5.2f}x FAISS qps")
PY
