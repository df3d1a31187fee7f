#!/bin/sh
# Compares the C tokenizers with HF `tokenizers` (npm) on every reference case.
# usage: run_reference.sh SRC_DIR WORK_DIR TEST_BINARY
# Installs the npm packages pinned in package.json/package-lock.json into WORK_DIR (once per
# lock file), builds the vocabularies and reference ids there (reference.js), then runs the C
# comparison. Exit 77 (ctest: skipped) only when node or npm is not installed.
set -eu
src=$1 work=$2 bin=$3
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "SKIPPED: node/npm not found; the reference comparison did not run (install nodejs npm)"
    exit 77
fi
mkdir -p "$work"
if ! cmp -s "$src/package-lock.json" "$work/package-lock.json" ||
    [ ! -d "$work/node_modules/tokenizers" ]; then
    rm -rf "$work/node_modules"
    cp "$src/package.json" "$src/package-lock.json" "$work/"
    # Not `npm ci`: it refuses this lock file because tokenizers 0.13.3 names platform packages
    # of its own version that were never published (its linux-x64 binary is the 0.13.4-rc2 one
    # pinned here). `npm install --no-save` installs the locked versions, checks their integrity
    # hashes and leaves the lock file as it is.
    (cd "$work" && npm install --no-save --no-audit --no-fund --loglevel=error)
fi
export NODE_PATH="$work/node_modules"
node "$src/reference.js" wordpiece "$work/out"
"$bin" compare wordpiece "$work/out/vocab.txt" "$work/out/wordpiece_cases.json"
node "$src/reference.js" clip "$work/out"
"$bin" compare clip "$work/out/merges.txt" "$work/out/clip_cases.json"
VIDX_TOK_VOCAB="$work/out/vocab.txt" VIDX_TOK_MERGES="$work/out/merges.txt" "$bin" speed
