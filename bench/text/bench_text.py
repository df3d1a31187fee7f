#!/usr/bin/python3
"""bench/text/bench_text.py: what the text modalities cost per minute of video, through the real
`vidx index` (no model). Makes a one-minute 640x360 H.264/AAC video: flite narration (several
sentences, about half the minute spoken, the rest silence) and a burned-in caption that changes
every 10 s. Indexes it (one decoder thread) with
    --no-asr --no-ocr   the baseline: decode, windows, thumbnails, subtitles, titles
    --no-ocr            + speech recognition
    --no-asr            + on-screen text
and prints, from each run's JSON summary, the ASR and OCR seconds per minute of video, ASR's
real-time factor over all audio and over the audio its energy gate passed, and each run's wall
time against the baseline. Also runs a silent minute to show what the gate saves.

Usage: bench_text.py --vidx build/cli/vidx [--minutes 1] [--keep DIR]
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "welcome to the museum of modern art",
    "the train to the airport leaves from platform nine",
    "please remember to take your belongings with you",
    "the weather today is sunny with a light breeze",
    "our next speaker will talk about the history of the harbour",
]
CAPTIONS = ["HARBOUR", "MUSEUM", "PLATFORM 9", "EXIT", "WELCOME", "SUNNY"]


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
                   check=True)


def make_video(path, tmp, seconds, speech=True):
    inputs = ["-f", "lavfi", "-i", f"color=c=white:s=640x360:r=25:d={seconds}"]
    filters, labels = [], []
    if speech:
        for k in range(seconds // 10):
            wav = os.path.join(tmp, f"s{k}.wav")
            subprocess.run(["flite", "-voice", "rms", "-t", SENTENCES[k % len(SENTENCES)], "-o",
                            wav], check=True)
            inputs += ["-i", wav]
            ms = k * 10000 + 1000
            filters.append(f"[{k + 1}]adelay={ms}|{ms}[a{k}]")
            labels.append(f"[a{k}]")
        filters.append(f"{''.join(labels)}amix=inputs={len(labels)}:duration=longest:"
                       f"normalize=0,apad[a]")
    else:
        inputs += ["-f", "lavfi", "-i", "anoisesrc=a=0.001:r=16000"]
        filters.append("[1]anull[a]")
    draws = ",".join(
        f"drawtext=fontfile={FONT}:text='{CAPTIONS[k % len(CAPTIONS)]}':fontsize=40:"
        f"fontcolor=black:x=40:y=40:enable='between(t,{k * 10},{k * 10 + 10})'"
        for k in range(seconds // 10))
    filters.append(f"[0]{draws}[v]")
    ffmpeg(*inputs, "-filter_complex", ";".join(filters), "-map", "[v]", "-map", "[a]", "-t",
           str(seconds), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", path)


def index(vidx, lib, data, *opts):
    shutil.rmtree(data, ignore_errors=True)
    env = dict(os.environ, VIDX_LOG="warn")
    t0 = time.monotonic()
    p = subprocess.run([vidx, "--data", data, "--json", "index", lib, "--jobs", "1", *opts],
                       capture_output=True, text=True, env=env, check=True)
    return time.monotonic() - t0, json.loads(p.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vidx", required=True)
    ap.add_argument("--minutes", type=int, default=1)
    ap.add_argument("--keep")
    a = ap.parse_args()
    tmp = a.keep or tempfile.mkdtemp(prefix="vidx-bench-text-")
    seconds = 60 * a.minutes
    for name, speech in (("speech", True), ("silence", False)):
        lib = os.path.join(tmp, name)
        os.makedirs(lib, exist_ok=True)
        path = os.path.join(lib, f"{name}.mp4")
        if not os.path.exists(path):
            make_video(path, tmp, seconds, speech)
        data = os.path.join(tmp, "data")
        base_t, base = index(a.vidx, lib, data, "--no-asr", "--no-ocr")
        asr_t, asr = index(a.vidx, lib, data, "--no-ocr")
        ocr_t, ocr = index(a.vidx, lib, data, "--no-asr")
        t, o = asr["text"], ocr["text"]
        minutes = seconds / 60
        print(f"== {name}: {seconds} s of 640x360 video, one decoder thread")
        print(f"baseline (no ASR, no OCR): {base_t:.2f} s wall")
        rtf_all = t["asr_seconds"] / max(t["audio_seconds"], 1e-9)
        rtf_speech = (f"{t['asr_seconds'] / t['speech_seconds']:.3f}" if t["speech_seconds"] > 0
                      else "n/a")
        print(f"ASR: {t['asr_seconds'] / minutes:.2f} s per minute of video; {t['asr_words']} "
              f"words; gate passed {t['speech_seconds']:.1f} of {t['audio_seconds']:.1f} s; "
              f"real-time factor {rtf_all:.3f} (all audio), {rtf_speech} (gated speech); "
              f"run {asr_t:.2f} s wall = {asr_t / base_t:.2f}x baseline")
        print(f"OCR: {o['ocr_seconds'] / minutes:.2f} s per minute of video; {o['ocr_frames']} "
              f"frames ({o['ocr_seconds'] / max(o['ocr_frames'], 1) * 1000:.0f} ms each), "
              f"{o['ocr_words']} words; run {ocr_t:.2f} s wall = {ocr_t / base_t:.2f}x baseline")
    if not a.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
