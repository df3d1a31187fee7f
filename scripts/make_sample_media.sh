#!/usr/bin/env bash
# Generates a small library of short sample clips in many containers and codecs, plus broken
# files, into a folder, with the FFmpeg CLI only. Used by the media tests (tests/media/) and by
# the demo. Idempotent: files that exist are kept, so a second run does nothing.
#
# Usage: scripts/make_sample_media.sh DIR
#
# Clips whose name starts with "grey_" show frame k as a solid grey with luma 20 + 4k (k < 50,
# 25 fps, 2 s) so a test can tell which frame a sampler chose; "solid_*" clips are one solid
# colour (R,G,B = 200,120,40) encoded with the named colour matrix and range; truth/ holds the
# frame timestamps of some clips as ffprobe reports them (one best_effort_timestamp_time a line)
# and the container start time. broken/ holds files no reader may crash on.
set -euo pipefail

if [ $# -ne 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    [ $# -eq 1 ] && exit 0 || exit 2
fi
command -v ffmpeg >/dev/null || { echo "make_sample_media: ffmpeg not found" >&2; exit 1; }
command -v ffprobe >/dev/null || { echo "make_sample_media: ffprobe not found" >&2; exit 1; }

out=$1
mkdir -p "$out/truth" "$out/broken"
ff=(ffmpeg -nostdin -hide_banner -loglevel error -y)

# Idempotent, but not stale: the folder remembers which version of this script made it. A
# changed script (or a folder from before this stamp) first removes what the old one made:
# the files listed in .generated, and each file this one makes, before making it again.
version=$(sha256sum "$0" | cut -c1-16)
stale=0
if [ "$(cat "$out/.version" 2>/dev/null)" != "$version" ]; then
    stale=1
    if [ -f "$out/.generated" ]; then
        while IFS= read -r name; do rm -f "$out/$name"; done <"$out/.generated"
    fi
    : >"$out/.generated"
fi
# record NAME: lists NAME in .generated (and removes an old copy when the folder is stale).
record() {
    grep -qxF -- "$1" "$out/.generated" 2>/dev/null && return 0
    [ "$stale" = 1 ] && rm -f "$out/$1"
    echo "$1" >>"$out/.generated"
}
for name in rotated90.mp4 "ünïcödé 視頻.mp4" subs.srt broken/empty.mp4 broken/garbage.mp4 \
    broken/text.mkv broken/truncated_faststart.mp4 broken/truncated_no_index.mp4 \
    broken/truncated.mkv broken/truncated.ts broken/corrupt_middle.ts broken/corrupt_middle.mp4 \
    broken/unknown_codec.avi \
    broken/header_only.mp4; do
    record "$name"
done

# make NAME ARGS...: runs ffmpeg ARGS... OUTPUT into a temp name and renames it, unless NAME
# exists. The output path is appended as the last argument.
make() {
    local name=$1
    shift
    record "$name"
    [ -s "$out/$name" ] && return 0
    local ext=${name##*.}
    local tmp="$out/.tmp.$$.$ext"
    "${ff[@]}" "$@" "$tmp"
    mv -f "$tmp" "$out/$name"
}

# truth NAME: frame timestamps and container start time of a clip, from ffprobe.
truth() {
    local name=$1
    record "truth/$name.pts"
    record "truth/$name.start"
    [ -s "$out/truth/$name.pts" ] && return 0
    ffprobe -v error -select_streams v:0 -show_entries frame=best_effort_timestamp_time \
        -of csv=p=0 "$out/$name" | sed 's/,*$//' | grep -v '^$' >"$out/truth/.tmp.$$"
    mv -f "$out/truth/.tmp.$$" "$out/truth/$name.pts"
    ffprobe -v error -show_entries format=start_time -of csv=p=0 "$out/$name" \
        >"$out/truth/$name.start"
}

grey="color=c=black:s=64x64:r=25:d=2,format=yuv420p,geq=lum='20+4*N':cb=128:cr=128"
tone="sine=frequency=440:sample_rate=44100:duration=2"
solid="color=c=0xC87828:s=64x48:r=25:d=1"

# ---- frame-numbered clips (lossless or near-lossless so each grey survives) ---------------
make grey_h264.mp4 -f lavfi -i "$grey" -c:v libx264 -preset veryfast -qp 0 -bf 2 -g 12 \
    -pix_fmt yuv420p -movflags +faststart
make grey_h264.mov -f lavfi -i "$grey" -c:v libx264 -preset veryfast -qp 0 -bf 2 -g 12 \
    -pix_fmt yuv420p
make grey_h264.ts -f lavfi -i "$grey" -c:v libx264 -preset veryfast -qp 0 -bf 2 -g 12 \
    -pix_fmt yuv420p
make grey_vp9.mkv -f lavfi -i "$grey" -c:v libvpx-vp9 -lossless 1 -g 12 -deadline realtime
make grey_vp8.webm -f lavfi -i "$grey" -c:v libvpx -crf 4 -b:v 2M -g 12 -deadline realtime
make grey_mpeg4.avi -f lavfi -i "$grey" -c:v mpeg4 -q:v 1 -g 12
make grey_ffv1.mkv -f lavfi -i "$grey" -c:v ffv1
make grey_h264_10bit.mkv -f lavfi -i "$grey" -c:v libx264 -preset veryfast -qp 0 -g 12 \
    -pix_fmt yuv420p10le
# 5 fps over 10 s with a keyframe every 2 s: windows far apart make the sampler seek.
make grey_5fps_h264.mp4 -f lavfi \
    -i "color=c=black:s=64x64:r=5:d=10,format=yuv420p,geq=lum='20+4*N':cb=128:cr=128" \
    -c:v libx264 -preset veryfast -qp 0 -bf 2 -g 10 -pix_fmt yuv420p
make grey_5fps_mpeg2.ts -f lavfi \
    -i "color=c=black:s=64x64:r=5:d=10,format=yuv420p,geq=lum='20+4*N':cb=128:cr=128" \
    -c:v mpeg2video -q:v 1 -g 10
# Variable frame rate: the 50 frames keep their numbers but get irregular timestamps.
make grey_vfr.mkv -f lavfi -i "$grey" -vf "settb=1/1000,setpts='(N*0.05+0.02*sin(N*1.7))/TB'" \
    -fps_mode vfr -enc_time_base 1/1000 -c:v ffv1
make grey_vfr.mp4 -f lavfi -i "$grey" -vf "settb=1/1000,setpts='(N*0.05+0.02*sin(N*1.7))/TB'" \
    -fps_mode vfr -enc_time_base 1/1000 -c:v libx264 -preset veryfast -qp 0 -bf 2 -g 12 -pix_fmt yuv420p \
    -video_track_timescale 1000
for name in grey_h264.mp4 grey_h264.ts grey_vfr.mkv grey_vfr.mp4; do truth "$name"; done
# A Unicode file name.
[ -s "$out/ünïcödé 視頻.mp4" ] || cp "$out/grey_h264.mp4" "$out/ünïcödé 視頻.mp4"

# ---- colour: one solid colour under different matrices, ranges and depths -----------------
make solid_bt601_tv.mp4 -f lavfi -i "$solid" \
    -vf "scale=out_color_matrix=bt601:out_range=tv,format=yuv420p" -c:v libx264 -qp 0 \
    -colorspace smpte170m -color_primaries smpte170m -color_trc smpte170m -color_range tv
make solid_bt709_tv.mp4 -f lavfi -i "$solid" \
    -vf "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p" -c:v libx264 -qp 0 \
    -colorspace bt709 -color_primaries bt709 -color_trc bt709 -color_range tv
make solid_bt709_pc.mp4 -f lavfi -i "$solid" \
    -vf "scale=out_color_matrix=bt709:out_range=pc,format=yuv420p" -c:v libx264 -qp 0 \
    -colorspace bt709 -color_primaries bt709 -color_trc bt709 -color_range pc
make solid_bt709_10bit.mp4 -f lavfi -i "$solid" \
    -vf "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p10le" -c:v libx264 -qp 0 \
    -colorspace bt709 -color_primaries bt709 -color_trc bt709 -color_range tv
make solid_bt2020_hevc10.mp4 -f lavfi -i "$solid" \
    -vf "scale=out_color_matrix=bt2020:out_range=tv,format=yuv420p10le" -c:v libx265 \
    -x265-params log-level=error:lossless=1 -colorspace bt2020nc -color_primaries bt2020 \
    -color_trc bt2020-10 -color_range tv -tag:v hvc1

# ---- geometry, scan, streams ---------------------------------------------------------------
# Left half white, right half black, stored 64x48 and marked "rotate 90° clockwise for
# display". FFmpeg 5.1's CLI no longer turns a rotate tag into a display matrix, so the matrix
# in the track header (tkhd) is written directly: {0, 1, 0; -1, 0, 0; 48, 0, 1} in 16.16 and
# 2.30 fixed point, which is what FFmpeg's muxer writes for a 90° rotation.
if [ ! -s "$out/rotated90.mp4" ]; then
    make .upright.mp4 -f lavfi -i "color=c=white:s=32x48:r=25:d=1" \
        -vf "pad=64:48:0:0:black,format=yuv420p" -c:v libx264 -qp 0
    tkhd=$(LC_ALL=C grep -obUa tkhd "$out/.upright.mp4" | head -n 1 | cut -d: -f1)
    printf '\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x30\x00\x00\x00\x00\x00\x00\x40\x00\x00\x00' |
        dd of="$out/.upright.mp4" bs=1 seek=$((tkhd + 44)) conv=notrunc status=none
    mv -f "$out/.upright.mp4" "$out/rotated90.mp4"
fi
make odd_317x239.webm -f lavfi -i "testsrc=s=317x239:r=25:d=1,format=yuv420p" -c:v libvpx-vp9 -crf 30 \
    -b:v 0 -deadline realtime
make interlaced.mp4 -f lavfi -i "testsrc=s=128x96:r=25:d=1" -vf format=yuv420p \
    -c:v libx264 -flags +ildct+ilme -x264opts tff=1 -field_order tt
make av_h264_aac.mp4 -f lavfi -i "testsrc=s=96x64:r=25:d=2" -f lavfi -i "$tone" \
    -c:v libx264 -pix_fmt yuv420p -c:a aac -ac 2 -shortest
make av_mpeg2_mp2.ts -f lavfi -i "testsrc=s=96x64:r=25:d=2" -f lavfi -i "$tone" \
    -c:v mpeg2video -c:a mp2 -shortest
make av_theora_vorbis.ogv -f lavfi -i "testsrc=s=96x64:r=25:d=1" -f lavfi -i "$tone" \
    -c:v libtheora -c:a libvorbis -shortest
make av_prores_pcm.mov -f lavfi -i "testsrc=s=96x64:r=25:d=1" -f lavfi -i "$tone" \
    -c:v prores_ks -c:a pcm_s16le -shortest
# Subtitles: a sidecar .srt (with formatting tags) beside subs.mkv, which carries it inside.
if [ ! -s "$out/subs.srt" ]; then
    printf '1\n00:00:00,000 --> 00:00:01,000\nhello <i>vidx</i>\n\n2\n00:00:01,000 --> 00:00:02,000\nsecond line\nand a third\n' \
        >"$out/.subs.$$.srt" && mv -f "$out/.subs.$$.srt" "$out/subs.srt"
fi
make subs.mkv -f lavfi -i "testsrc=s=96x64:r=25:d=2" -f lavfi -i "$tone" -i "$out/subs.srt" \
    -map 0 -map 1 -map 2 -c:v libvpx-vp9 -deadline realtime -c:a libopus -c:s srt \
    -metadata:s:s:0 language=eng -shortest
make video_only.mp4 -f lavfi -i "testsrc=s=96x64:r=25:d=1" -c:v libx264 -pix_fmt yuv420p
make audio_only.m4a -f lavfi -i "$tone" -c:a aac
make audio_only.wav -f lavfi -i "$tone" -c:a pcm_s16le

# ---- broken files --------------------------------------------------------------------------
b="$out/broken"
[ -e "$b/empty.mp4" ] || : >"$b/empty.mp4"
if [ ! -s "$b/garbage.mp4" ]; then # deterministic pseudo-random bytes
    LC_ALL=C awk 'BEGIN { srand(42); for (i = 0; i < 8192; i++) printf "%c", int(rand() * 256) }' \
        >"$b/.tmp.$$" && mv -f "$b/.tmp.$$" "$b/garbage.mp4"
fi
[ -s "$b/text.mkv" ] || printf 'this is not a video, just text\n' >"$b/text.mkv"
half() { # half SRC DST: the first half of SRC's bytes
    [ -s "$2" ] && return 0
    local size
    size=$(stat -c %s "$1")
    head -c $((size / 2)) "$1" >"$2.tmp.$$" && mv -f "$2.tmp.$$" "$2"
}
# faststart: the index survives, the second half of the media data is missing.
half "$out/grey_h264.mp4" "$b/truncated_faststart.mp4"
# moov at the end: the index is gone.
half "$out/av_h264_aac.mp4" "$b/truncated_no_index.mp4"
half "$out/grey_vp9.mkv" "$b/truncated.mkv"
half "$out/grey_h264.ts" "$b/truncated.ts"
# Damaged in the middle: 2 KB of zeros written over the middle of the media data.
if [ ! -s "$b/corrupt_middle.ts" ]; then
    cp "$out/grey_h264.ts" "$b/.tmp.$$"
    size=$(stat -c %s "$b/.tmp.$$")
    dd if=/dev/zero of="$b/.tmp.$$" bs=1 seek=$((size / 2)) count=2048 conv=notrunc status=none
    mv -f "$b/.tmp.$$" "$b/corrupt_middle.ts"
fi
# Damaged in the middle with garbage: 3000 pseudo-random bytes over the MP4's media data at a
# third of the file (its index is at the end and intact), hitting video and audio packets.
if [ ! -s "$b/corrupt_middle.mp4" ]; then
    cp "$out/av_h264_aac.mp4" "$b/.tmp.$$"
    size=$(stat -c %s "$b/.tmp.$$")
    LC_ALL=C awk 'BEGIN { srand(3); for (i = 0; i < 3000; i++) printf "%c", int(rand() * 256) }' |
        dd of="$b/.tmp.$$" bs=1 seek=$((size / 3)) conv=notrunc status=none
    mv -f "$b/.tmp.$$" "$b/corrupt_middle.mp4"
fi
# A codec nobody knows: the MPEG-4 clip with its fourcc (FMP4) renamed.
[ -s "$b/unknown_codec.avi" ] ||
    { LC_ALL=C sed 's/FMP4/QQQQ/g' "$out/grey_mpeg4.avi" >"$b/.tmp.$$" && mv -f "$b/.tmp.$$" "$b/unknown_codec.avi"; }
# A header only: the first 200 bytes of an MP4.
[ -s "$b/header_only.mp4" ] || head -c 200 "$out/grey_h264.mp4" >"$b/header_only.mp4"

echo "$version" >"$out/.version"
exit 0
