#!/usr/bin/env bash
# Makes a small demo library that every modality vidx has without model weights can find:
# narrated clips (flite speech), burned-in titles (FFmpeg drawtext) and subtitles (a sidecar
# .srt and an embedded track). Idempotent: existing clips are kept.
#
# Usage: scripts/make_demo_library.sh DIR
set -euo pipefail
if [ $# -ne 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
    [ $# -eq 1 ] && exit 0 || exit 2
fi
for tool in ffmpeg flite; do
    command -v "$tool" >/dev/null || { echo "make_demo_library: $tool not found (run scripts/install-deps.sh)" >&2; exit 1; }
done
out=$1
mkdir -p "$out"
font=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf
ff=(ffmpeg -nostdin -hide_banner -loglevel error -y)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# clip NAME SOURCE SPEECH ON_SCREEN_TEXT: an 8 s clip whose speech starts at 1 s and whose
# text is on screen from 4 s.
clip() {
    local name=$1 source=$2 speech=$3 text=$4
    [ -s "$out/$name.mp4" ] && return 0
    flite -voice rms -t "$speech" -o "$work/$name.wav"
    "${ff[@]}" -f lavfi -i "$source=size=640x360:rate=25:duration=8" \
        -itsoffset 1 -i "$work/$name.wav" -f lavfi -i "anullsrc=r=16000:cl=mono:d=8" \
        -filter_complex "[0:v]drawtext=fontfile=$font:text='$text':fontsize=56:fontcolor=white:box=1:boxcolor=black@0.8:boxborderw=12:x=(w-tw)/2:y=(h-th)/2:enable='gte(t,4)'[v];[1:a][2:a]amix=inputs=2:duration=longest[a]" \
        -map "[v]" -map "[a]" -t 8 -c:v libx264 -pix_fmt yuv420p -preset veryfast -c:a aac \
        "$out/$name.mp4"
}

clip beach testsrc2 "A dog catches a frisbee at the beach." "BEACH DAY"
clip kitchen rgbtestsrc "The chef slices fresh tomatoes in the kitchen." "COOKING SHOW"
clip harbour smptebars "Boats sail out of the harbour at sunrise." "MORNING NEWS"

# A sidecar subtitle file, and a clip with an embedded subtitle track.
[ -s "$out/harbour.srt" ] || cat >"$out/harbour.srt" <<'SRT'
1
00:00:05,000 --> 00:00:07,500
Fishermen unload the morning catch.
SRT
if [ ! -s "$out/lecture.mkv" ]; then
    cat >"$work/lecture.srt" <<'SRT'
1
00:00:02,000 --> 00:00:05,000
Today we talk about volcanoes and lava.
SRT
    "${ff[@]}" -f lavfi -i "testsrc=size=640x360:rate=25:duration=6" -i "$work/lecture.srt" \
        -c:v libx264 -pix_fmt yuv420p -preset veryfast -c:s srt "$out/lecture.mkv"
fi
echo "demo library: $out ($(ls "$out" | wc -l) files)"
