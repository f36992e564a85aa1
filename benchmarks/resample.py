"""Resampling throughput: `egotask data resample` vs the predecessor's OpenCV frame-by-frame mp4v re-encode.

Both turn the same generated clips (60 s, 1280x720, 30 fps H.264) into 6 fps at half size. The
baseline reads every frame with ``cv2.VideoCapture.read``, keeps every 5th, resizes it and writes it
with ``cv2.VideoWriter`` (mp4v), one file after another. egotask runs with 1 and with 2 worker
processes at the default x264 preset, and with 2 workers at ``superfast``. Reported per method (median
of --repeats, methods interleaved): wall time, CPU seconds per minute of video (this process and its
workers; steadier than wall time on a shared machine), seconds of video per wall second, and the
ratio to the baseline. Target: >= 3x on the 2-core machine with the default preset.

    .venv/bin/python benchmarks/resample.py [--clips 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _clips import benchmark_clips  # noqa: E402


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


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker pools)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


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
    for cached in benchmark_clips(args.workdir, args.clips):
        link = src / cached.name
        if not link.exists():
            os.link(cached, link)
    files = sorted(src.glob("*.mp4"))
    seconds = sum(probe_video(f).duration for f in files)
    print(f"{len(files)} clips, {seconds:.0f} s of 1280x720 30 fps H.264 -> {args.fps:g} fps, scale {args.scale:g}; "
          f"{os.cpu_count()} CPUs\n")

    runs = {  # name -> (workers, x264 preset); None: the baseline
        "opencv mp4v (baseline)": None,
        "egotask, 1 worker": (1, args.preset),
        "egotask, 2 workers": (2, args.preset),
        "egotask, 2 w, superfast": (2, "superfast"),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, how in runs.items():
            out = args.workdir / f"resample_out_{list(runs).index(name)}"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            c0, t0 = cpu_seconds(), time.perf_counter()
            if how is None:
                for f in files:
                    opencv_resample(f, out / f.name, args.fps, args.scale)
            else:
                spec = TranscodeSpec(fps=args.fps, scale=args.scale, preset=how[1])
                bad = [r for r in resample_tree(src, out, spec, workers=how[0]) if r.status != "done"]
                if bad:
                    print(f"FAILED: {bad}")
                    return 1
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(cpu_seconds() - c0)
    check = probe_video(out / files[0].name, exact=True)
    print(f"\negotask output checked: {check.width}x{check.height}, {check.fps:g} fps, {check.duration:.2f} s, "
          f"{check.num_frames} frames")
    base = seconds / statistics.median(times["opencv mp4v (baseline)"])
    print(f"\n{'method':<24} | {'wall':>7} | {'CPU s per video min':>19} | {'video s / wall s':>16} | {'ratio':>6}")
    best = 0.0
    for name, ts in times.items():
        rate = seconds / statistics.median(ts)
        if name in ("egotask, 1 worker", "egotask, 2 workers"):  # the default preset
            best = max(best, rate / base)
        per_min = statistics.median(cpu[name]) / seconds * 60
        print(f"{name:<24} | {statistics.median(ts):>6.2f}s | {per_min:>19.2f} | {rate:>16.1f} | {rate / base:>5.1f}x")
    print(f"\ntarget >= 3x with the default preset ({args.preset}): {'met' if best >= 3 else 'NOT met'} ({best:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
