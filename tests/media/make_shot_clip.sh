#!/bin/sh
# Makes the shot-detection test clip with FFmpeg's lavfi sources: five distinct sources
# joined at known cut times (2.60, 6.20, 10.44, 14.00 s; 25 fps, so each cut is a frame
# boundary and none is a multiple of 4 s), plus a 2-frame white flash at 4.00 s and a fade to
# black and back at 11.44-12.64 s (testsrc2 goes on), neither of which is a cut. Also writes
# OUT's 10-bit twin, OUT with "_10bit" before ".mp4" (decoded through another path), and
# a long one, "_long.mkv" in place of ".mp4": 150 shots of 1.2 s cycling through three sources
# at 96x54 (3 minutes, 4500 frames; cuts at every multiple of 1.2 s).
# Usage: make_shot_clip.sh OUT.mp4 (idempotent: existing files are kept).
set -eu
out=$1
out10=${out%.mp4}_10bit.mp4
outlong=${out%.mp4}_long.mkv
[ -s "$out" ] && [ -s "$out10" ] && [ -s "$outlong" ] && exit 0
mkdir -p "$(dirname "$out")"
s=320x180
ffmpeg -nostdin -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc=s=$s:r=25" \
  -f lavfi -i "smptebars=s=$s:r=25" \
  -f lavfi -i "mandelbrot=s=$s:r=25" \
  -f lavfi -i "testsrc2=s=$s:r=25" \
  -f lavfi -i "color=c=0x2050c0:s=$s:r=25" \
  -filter_complex "\
[0]trim=end_frame=65,setpts=PTS-STARTPTS[a];\
[1]trim=end_frame=90,setpts=PTS-STARTPTS,drawbox=x=0:y=0:w=iw:h=ih:t=fill:color=white:enable='between(n,35,36)'[b];\
[2]trim=end_frame=106,setpts=PTS-STARTPTS[c];\
[3]split[d0][d1];\
[d0]trim=end_frame=40,setpts=PTS-STARTPTS,fade=t=out:st=1.0:d=0.6[d];\
[d1]trim=start_frame=40:end_frame=89,setpts=PTS-STARTPTS,fade=t=in:st=0:d=0.6[dd];\
[4]trim=end_frame=75,setpts=PTS-STARTPTS[e];\
[a][b][c][d][dd][e]concat=n=6:v=1:a=0,format=yuv420p[v]" \
  -map "[v]" -c:v libx264 -preset veryfast -g 50 -r 25 "$out.tmp.mp4"
ffmpeg -nostdin -hide_banner -loglevel error -y -i "$out.tmp.mp4" -c:v libx264 -preset veryfast \
  -pix_fmt yuv420p10le "$out10.tmp.mp4"
mv "$out10.tmp.mp4" "$out10"
parts=$(mktemp -d)
trap 'rm -rf "$parts"' EXIT
i=0
for src in testsrc smptebars mandelbrot; do
  ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi -i "$src=s=96x54:r=25" -frames:v 30 \
    -c:v libx264 -preset veryfast -g 30 -bf 0 -pix_fmt yuv420p "$parts/s$i.mp4"
  i=$((i + 1))
done
k=0
while [ $k -lt 150 ]; do
  echo "file 's$((k % 3)).mp4'"
  k=$((k + 1))
done >"$parts/list.txt"
ffmpeg -nostdin -hide_banner -loglevel error -y -f concat -safe 0 -i "$parts/list.txt" -c copy \
  "$outlong.tmp.mkv"
mv "$outlong.tmp.mkv" "$outlong"
mv "$out.tmp.mp4" "$out"
