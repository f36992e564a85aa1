"""Resampling throughput: `egotask data resample` vs the predecessor's OpenCV frame-by-frame mp4v re-encode.

Both turn the same generated clips (60 s, 1280x720, 30 fps H.264) into 6 fps at half size. The
baseline reads every frame with ``cv2.VideoCapture.read``, keeps every 5th, resizes it and writes it
with ``cv2.VideoWriter`` (mp4v), one file after another. egotask runs with 1 and with 2 worker
processes at the default x264 preset, and with 2 workers at ``superfast``. Reported per method (median
of --repeats, methods interleaved): wall time, CPU seconds per minute of video (this process and its
workers; steadier than wall time on a shared machine), seconds of video per wall second, and the
ratio to the baseline. Target: >= 3x on the 2-core machine with the default preset.

--quick runs every method once on two 6 s 320x180 clips and checks every output of every method
(baseline included): its size, frame rate, frame count and duration, and that each output frame is
its slot's source frame (it resembles that source frame more than the source frames around it).
A failed check exits 1; the ratios it prints are noise and do not gate.

    .venv/bin/python benchmarks/resample.py [--clips 2] [--repeats 3]
    .venv/bin/python benchmarks/resample.py --quick     # a few seconds; what CI runs
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

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _checks import Checks  # noqa: E402
from _clips import bench_workdir, benchmark_clips, quick_clips  # noqa: E402


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


def decoded(path: Path) -> list[np.ndarray]:
    """Every frame of a file, front to back, as RGB (frames in presentation order)."""
    import av

    with av.open(str(path)) as container:
        frames = [(frame.time, frame.to_ndarray(format="rgb24")) for frame in container.decode(video=0)]
    return [image for _, image in sorted(frames, key=lambda f: f[0])]


def check_output(checks: Checks, method: str, src: Path, dst: Path, fps: float, size: tuple[int, int]) -> None:
    """``dst`` must be ``src`` at ``fps`` and ``size``, output frame k being the first source frame at or
    after k / fps (each slot's frame, which both methods keep)."""
    from egotask.frames import probe_video

    where = f"{method}: {dst.name}"
    if not checks.expect(dst.is_file(), f"{where}: no output file"):
        return
    info, got = probe_video(src, exact=True), probe_video(dst, exact=True)
    step = info.fps / fps
    slots = [int(np.ceil(k * step - 1e-6)) for k in range(int(np.ceil(info.num_frames / step - 1e-6)))]
    checks.expect((got.width, got.height) == size, f"{where}: {got.width}x{got.height}, expected {size[0]}x{size[1]}")
    checks.expect(abs(got.fps - fps) < 0.01, f"{where}: {got.fps:g} fps, expected {fps:g}")
    checks.expect(got.num_frames == len(slots), f"{where}: {got.num_frames} frames, expected {len(slots)}")
    checks.expect(got.duration is not None and abs(got.duration - info.duration) <= 1 / fps + 1e-3,
                  f"{where}: {got.duration} s, expected {info.duration:.3f} s within one output frame")
    # Lossy codecs change every pixel a little, so "the right frame" means: closer to its slot's source
    # frame than to that frame's neighbours (the clip pans 7 px a frame, so neighbours differ clearly).
    source = [np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR), dtype=np.int16) for f in decoded(src)]
    for k, frame in enumerate(decoded(dst)[:len(slots)]):
        near = range(max(0, slots[k] - 2), min(len(source), slots[k] + 3))
        error = {j: float(np.abs(source[j] - frame).mean()) for j in near}
        best = min(error, key=error.get)
        if not checks.expect(best == slots[k], f"{where}: output frame {k} looks like source frame {best} "
                                               f"(mean error {error[best]:.1f}), expected {slots[k]} "
                                               f"({error[slots[k]]:.1f})"):
            break  # one off-by-one usually shifts every later frame: report the first


def main() -> int:
    from egotask.data.transcode import TranscodeSpec

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="two small clips, one repeat, correctness checks that gate the exit status")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where clips are cached (default: /tmp/egotask-bench; --quick: a fresh temp folder)")
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--fps", type=float, default=6.0)
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--preset", default=TranscodeSpec.preset, help="x264 preset for egotask (default: %(default)s)")
    args = parser.parse_args()
    with bench_workdir(args.workdir, args.quick) as workdir:
        return run(args, workdir)


def run(args: argparse.Namespace, workdir: Path) -> int:
    from egotask.data.resample import resample_tree
    from egotask.data.transcode import TranscodeSpec
    from egotask.frames import probe_video

    src = workdir / "resample_src"
    src.mkdir(parents=True, exist_ok=True)
    for cached in (quick_clips if args.quick else benchmark_clips)(workdir, args.clips):
        link = src / cached.name
        if not link.exists():
            os.link(cached, link)
    files = sorted(src.glob("*.mp4"))
    seconds = sum(probe_video(f).duration for f in files)
    first = probe_video(files[0])
    print(f"{len(files)} clips, {seconds:.0f} s of {first.width}x{first.height} {first.fps:g} fps H.264 -> "
          f"{args.fps:g} fps, scale {args.scale:g}; {os.cpu_count()} CPUs\n")

    runs = {  # name -> (workers, x264 preset); None: the baseline
        "opencv mp4v (baseline)": None,
        "egotask, 1 worker": (1, args.preset),
        "egotask, 2 workers": (2, args.preset),
        "egotask, 2 w, superfast": (2, "superfast"),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    checks = Checks("resample --quick")
    for repeat in range(args.repeats):
        for name, how in runs.items():
            out = workdir / f"resample_out_{list(runs).index(name)}"
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
            if args.quick and repeat == 0:  # outside the timed part; each method's outputs are overwritten
                info = probe_video(files[0])
                w, h = info.width * args.scale, info.height * args.scale
                # yuv420p wants even sizes: the baseline rounds down, egotask to the nearest even number
                size = (int(w) // 2 * 2, int(h) // 2 * 2) if how is None else (round(w / 2) * 2, round(h / 2) * 2)
                for f in files:
                    check_output(checks, name, f, out / f.name, args.fps, size)
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
    if not args.quick:
        print(f"\ntarget >= 3x with the default preset ({args.preset}): {'met' if best >= 3 else 'NOT met'} "
              f"({best:.1f}x)")
        return 0
    print(f"\n(--quick: ratios on tiny clips are noise; target not checked, {best:.1f}x)")
    return checks.exit_code()


if __name__ == "__main__":
    sys.exit(main())
