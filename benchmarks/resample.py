"""Resampling throughput: `egotask data resample` vs the predecessor's OpenCV frame-by-frame mp4v re-encode.

Both turn the same generated clips (60 s, 1280x720, 30 fps H.264) into 6 fps at half size. The
baseline reads every frame with ``cv2.VideoCapture.read``, keeps every 5th, resizes it and writes it
with ``cv2.VideoWriter`` (mp4v), one file after another. egotask runs with 1 and with 2 worker
processes. Reported: seconds of video per wall second (median of --repeats), and the ratio.
Target: >= 3x on the 2-core machine.

    .venv/bin/python benchmarks/resample.py [--clips 2] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _clips import write_motion_clip  # noqa: E402


def opencv_resample(src: Path, dst: Path, fps: float, scale: float) -> None:
    """The predecessor's way: decode every frame to BGR, keep every k-th, resize, write mp4v."""
    import cv2

    cap = cv2.VideoCapture(str(src))
    src_fps = cap.get(cv2.CAP_PROP_FPS)
    width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) * scale) // 2 * 2
    height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) * scale) // 2 * 2
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    step, next_keep, i = src_fps / fps, 0.0, 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i + 1e-6 >= next_keep:
            out.write(cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA))
            next_keep += step
        i += 1
    cap.release()
    out.release()


def main() -> int:
    from egotask.data.resample import resample_tree
    from egotask.data.transcode import TranscodeSpec
    from egotask.frames import probe_video

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/egotask-bench"))
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--fps", type=float, default=6.0)
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--preset", default=TranscodeSpec.preset, help="x264 preset for egotask (default: %(default)s)")
    args = parser.parse_args()

    src = args.workdir / "resample_src"
    src.mkdir(parents=True, exist_ok=True)
    for i in range(args.clips):
        cached = args.workdir / f"clip60_720p30_gop2_{i}.mp4"
        if not cached.exists():
            print(f"generating {cached} ...", flush=True)
        write_motion_clip(cached, 60.0, 30, (1280, 720), 2.0, seed=i)
        link = src / cached.name
        if not link.exists():
            os.link(cached, link)
    files = sorted(src.glob("*.mp4"))
    seconds = sum(probe_video(f).duration for f in files)
    print(f"{len(files)} clips, {seconds:.0f} s of 1280x720 30 fps H.264 -> {args.fps:g} fps, scale {args.scale:g}; "
          f"{os.cpu_count()} CPUs\n")

    spec = TranscodeSpec(fps=args.fps, scale=args.scale, preset=args.preset)
    times: dict[str, list[float]] = {"opencv mp4v (baseline)": [], "egotask, 1 worker": [], "egotask, 2 workers": []}
    for _ in range(args.repeats):
        out = args.workdir / "resample_cv"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        t0 = time.perf_counter()
        for f in files:
            opencv_resample(f, out / f.name, args.fps, args.scale)
        times["opencv mp4v (baseline)"].append(time.perf_counter() - t0)
        for workers in (1, 2):
            out = args.workdir / f"resample_ego_{workers}"
            shutil.rmtree(out, ignore_errors=True)
            t0 = time.perf_counter()
            results = resample_tree(src, out, spec, workers=workers)
            times[f"egotask, {workers} worker{'s' if workers > 1 else ''}"].append(time.perf_counter() - t0)
            bad = [r for r in results if r.status != "done"]
            if bad:
                print(f"FAILED: {bad}")
                return 1
    check = probe_video(args.workdir / "resample_ego_2" / files[0].name, exact=True)
    print(f"\negotask output checked: {check.width}x{check.height}, {check.fps:g} fps, {check.duration:.2f} s, "
          f"{check.num_frames} frames")
    base = seconds / statistics.median(times["opencv mp4v (baseline)"])
    print(f"\n{'method':<24} | {'wall':>7} | {'video s / wall s':>16} | {'ratio':>6}")
    best = 0.0
    for name, ts in times.items():
        rate = seconds / statistics.median(ts)
        best = max(best, rate / base) if "egotask" in name else best
        print(f"{name:<24} | {statistics.median(ts):>6.2f}s | {rate:>16.1f} | {rate / base:>5.1f}x")
    print(f"\ntarget >= 3x: {'met' if best >= 3 else 'NOT met'} ({best:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
