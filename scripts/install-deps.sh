#!/usr/bin/env bash
# Installs everything vidx needs on Debian 12, from Debian's repositories only. Idempotent:
# a second run installs nothing and finishes in seconds.
#
# Debian's libfaiss-dev ships FAISS's C++ library and the C API headers but not the compiled
# C API, so this script builds libfaiss_c.a from Debian's own faiss source package
# (apt-get source) against the installed libfaiss, and installs it under /usr/local.
#
# Usage: scripts/install-deps.sh [--no-test-tools]
set -euo pipefail

want_test_tools=1
for arg in "$@"; do
    case "$arg" in
    --no-test-tools) want_test_tools=0 ;;
    -h | --help)
        sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
        exit 0 ;;
    *) echo "install-deps: unknown option $arg (try --help)" >&2; exit 2 ;;
    esac
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

# Build and runtime libraries.
packages=(
    build-essential cmake pkg-config
    libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libswresample-dev
    libsqlite3-dev sqlite3
    libcurl4-openssl-dev libmicrohttpd-dev libcjson-dev
    libopenblas-dev libfaiss-dev libdnnl-dev
    dpkg-dev
    # Speech (pocketsphinx 0.8+5prealpha and its US English model) and on-screen text
    # (tesseract 5 and its English data). libtesseract-dev alone pulls libcurl4-nss-dev, which
    # conflicts with libcurl4-openssl-dev: both stay in this one list, so the one apt-get
    # install below resolves them together (DECISIONS.md §5).
    libpocketsphinx-dev libsphinxbase-dev pocketsphinx-en-us
    libtesseract-dev tesseract-ocr-eng
)
# What the tests and benchmarks use: FFmpeg's tools for sample media, the independent PyTorch
# reference (Debian's torch; always run with /usr/bin/python3), jemalloc for tuned baselines.
if [ "$want_test_tools" = 1 ]; then
    packages+=(ffmpeg python3 python3-numpy python3-torch python3-torchvision python3-torchaudio libjemalloc2 clang)
    # Narration and burned-in text of the speech/OCR test videos: flite (pocketsphinx hears it,
    # DECISIONS.md §6), espeak-ng (fbank and audio-tower tests), a font for FFmpeg's drawtext.
    packages+=(flite espeak-ng fonts-dejavu-core)
    # HTTP load for bench/web/run.sh.
    packages+=(wrk)
    # The web UI's browser test (tests/web/test_browser.py): headless Chromium through selenium.
    packages+=(chromium chromium-driver python3-selenium)
fi

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done
# Keep the pair together even when libcurl4-openssl-dev is already installed (DECISIONS.md §5).
case " ${missing[*]-} " in
*" libtesseract-dev "*) missing+=(libcurl4-openssl-dev) ;;
esac
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "install-deps: Debian packages already installed"
fi

# ---- FAISS C API from Debian's faiss source package ------------------------------------
faiss_version=$(dpkg-query -W -f='${Version}' libfaiss-dev)
prefix=/usr/local
stamp="$prefix/lib/libfaiss_c.version"
if [ -f "$prefix/lib/libfaiss_c.a" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$faiss_version" ]; then
    echo "install-deps: FAISS C API $faiss_version already built"
    exit 0
fi

echo "install-deps: building the FAISS C API from Debian's faiss $faiss_version source package"
src_list=/etc/apt/sources.list.d/vidx-deb-src.sources
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources | $SUDO tee "$src_list" >/dev/null
    else
        grep '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' | $SUDO tee /etc/apt/sources.list.d/vidx-deb-src.list >/dev/null
    fi
    $SUDO apt-get update -qq
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# apt-get source as root warns that _apt cannot read the folder; harmless.
chmod 755 "$work"
apt-get source -qq --download-only "faiss=$faiss_version" >/dev/null 2>&1 ||
    apt-get source -qq --download-only faiss >/dev/null
# apt verified the files against the signed Release; dpkg-source cannot without debian-keyring.
dpkg-source -x ./faiss_*.dsc src >/dev/null 2>&1

cd src/c_api
sources=(AutoTune_c.cpp Clustering_c.cpp IndexFlat_c.cpp IndexIVFFlat_c.cpp IndexIVF_c.cpp
    IndexLSH_c.cpp IndexPreTransform_c.cpp VectorTransform_c.cpp IndexShards_c.cpp
    IndexReplicas_c.cpp Index_c.cpp IndexBinary_c.cpp IndexScalarQuantizer_c.cpp
    MetaIndexes_c.cpp clone_index_c.cpp error_impl.cpp index_factory_c.cpp index_io_c.cpp
    impl/AuxIndexStructures_c.cpp utils/distances_c.cpp)
objects=()
jobs=$(nproc)
for s in "${sources[@]}"; do
    o="$work/$(echo "$s" | tr / _).o"
    # Compile against the installed FAISS headers, the ones libfaiss.a was built from.
    g++ -std=c++17 -O2 -fPIC -fopenmp -I/usr/include -I. -c "$s" -o "$o" &
    objects+=("$o")
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
done
wait
ar rcs "$work/libfaiss_c.a" "${objects[@]}"
$SUDO install -d "$prefix/lib" "$prefix/include/faiss/c_api/impl" "$prefix/include/faiss/c_api/utils"
$SUDO install -m 644 "$work/libfaiss_c.a" "$prefix/lib/libfaiss_c.a"
# The headers match the ones libfaiss-dev ships; installing them keeps the library and its
# headers from one source.
for h in *.h impl/*.h utils/*.h; do
    $SUDO install -m 644 "$h" "$prefix/include/faiss/c_api/$h"
done
echo "$faiss_version" | $SUDO tee "$stamp" >/dev/null
echo "install-deps: installed $prefix/lib/libfaiss_c.a"
