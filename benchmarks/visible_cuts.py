"""Visible-interval cuts: copy+tail (``egotask.data.splice``) against re-encoding the whole interval.

For models that open video files themselves, a real-time question's visible interval ``[0, T)`` is cut
into a file of its own (``egotask.visible_clips``). The full re-encode decodes and re-encodes every
frame before T; copy+tail copies the source's packets up to the keyframe of the GOP that holds the
last frame before T, and decodes and re-encodes only from there. Clips: 6 fps H.264 (libx264 with
B-frames, real motion), a keyframe every 12 frames (OpenCV-style writers, the official 6 fps
conversion) or every 250 (x264's default), questions at 35, 55, 75 and 95 % of the clip. Both ways run
in this process, one after the other for each cut, x264 on one thread; the figure is CPU seconds
(process time, all threads). A ratio above 1: copy+tail is cheaper.

Every cut is checked: its method, its frames' times against the planned source frames, its last frame
before T. --quick also checks that the copied frames decode pixel-identical to the source's and that
the re-encoded tail is close to it; a failed check exits 1. Its ratios are noise.

    .venv/bin/python benchmarks/visible_cuts.py            # 1920x1080 and 640x360, 120 s clips (minutes)
    .venv/bin/python benchmarks/visible_cuts.py --quick    # seconds; what CI runs
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _checks import Checks  # noqa: E402
from _clips import bench_workdir, write_motion_clip  # noqa: E402

FPS = 6
QUESTIONS_AT = (0.35, 0.55, 0.75, 0.95)


def decoded(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        frames = sorted(((f.pts, f.to_ndarray(format="rgb24")) for f in container.decode(video=0)),
                        key=lambda pair: pair[0])
    return [f for _, f in frames]


def time_cut(work, src: Path, dst: Path, end: float):
    from egotask.data.transcode import TranscodeSpec

    dst.unlink(missing_ok=True)
    began = time.process_time()
    result = work(src, dst, TranscodeSpec(start=0.0, end=end, crf=18), force=True, threads=1)
    return result, time.process_time() - began


def check_cut(checks: Checks, src: Path, dst: Path, end: float, result, *, pixels: bool) -> None:
    from egotask.data.transcode import plan_frames
    from egotask.frames import index_frames

    where = f"{src.name} [0, {end:g})"
    if not checks.expect(result.status == "done", f"{where}: {result.status} {result.message}"):
        return
    source = index_frames(src)
    plan = plan_frames(source.times, 0.0, end, None)
    want = [plan[p] for p in sorted(plan)]
    key = int(source.keyframe_of[len(want) - 1])
    # Inside the first GOP there is nothing to copy: the full re-encode, saying so.
    expected = ("copy+tail", "") if key > 0 else ("reencode", "the interval lies in one GOP: nothing to copy")
    checks.expect((result.method, result.message) == expected, f"{where}: {result.method} ({result.message})")
    got = index_frames(dst).times.tolist()
    checks.expect(len(got) == len(want) and max(abs(a - b) for a, b in zip(got, want, strict=True)) < 1e-6,
                  f"{where}: the cut's frame times differ from the planned source frames")
    checks.expect(got[-1] < end, f"{where}: a frame at {got[-1]:.3f}s, at or after the end")
    if pixels and key > 0:
        ours, theirs = decoded(dst), decoded(src)
        checks.expect(all(np.array_equal(ours[i], theirs[i]) for i in range(key)),
                      f"{where}: a copied frame differs from the source's decode")
        gap = max(float(np.abs(ours[i].astype(np.int16) - theirs[i]).mean()) for i in range(key, len(want)))
        checks.expect(gap < 3.0, f"{where}: the re-encoded tail is {gap:.2f} grey levels from the source")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="640x360 60 s clips; checks gate the exit status")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where clips are cached (default: /tmp/egotask-bench; --quick: a fresh temp folder)")
    parser.add_argument("--seconds", type=float, default=None, help="clip length (default 120; --quick: 60)")
    args = parser.parse_args()
    with bench_workdir(args.workdir, args.quick) as workdir:
        return run(args, workdir)


def run(args: argparse.Namespace, workdir: Path) -> int:
    from egotask.data.splice import cut_interval
    from egotask.data.transcode import transcode

    seconds = args.seconds or (60.0 if args.quick else 120.0)
    sizes = [(640, 360)] if args.quick else [(1920, 1080), (640, 360)]
    checks = Checks("visible_cuts --quick" if args.quick else "visible_cuts")
    lines = ["| clip | end (s) | method | full re-encode CPU s | copy+tail CPU s | full / copy+tail |",
             "| --- | ---: | --- | ---: | ---: | ---: |"]
    totals = {}
    for size in sizes:
        for gop in (12, 250):
            src = write_motion_clip(workdir / f"cuts{seconds:g}s_{size[0]}x{size[1]}_gop{gop}.mp4", seconds, FPS,
                                    size, gop / FPS, seed=3)
            for at in QUESTIONS_AT:
                end = round(at * seconds, 3)
                full, full_cpu = time_cut(transcode, src, workdir / "full.mp4", end)
                fast, fast_cpu = time_cut(cut_interval, src, workdir / "fast.mp4", end)
                check_cut(checks, src, workdir / "fast.mp4", end, fast, pixels=args.quick)
                checks.expect(full.status == "done", f"{src.name}: the full re-encode {full.status}: {full.message}")
                cell = f"{size[0]}x{size[1]}/gop{gop}"
                done = totals.setdefault(cell, [0.0, 0.0])
                done[0] += full_cpu
                done[1] += fast_cpu
                line = (f"| {cell} | {end:g} | {fast.method} | {full_cpu:.2f} | {fast_cpu:.2f} | "
                        f"{full_cpu / fast_cpu:.1f} |")
                lines.append(line)
                print(line, flush=True)
    print("\n" + "\n".join(lines))
    print("\n| clip | full re-encode CPU s (4 cuts) | copy+tail CPU s | full / copy+tail |")
    print("| --- | ---: | ---: | ---: |")
    for cell, (full_cpu, fast_cpu) in totals.items():
        print(f"| {cell} | {full_cpu:.2f} | {fast_cpu:.2f} | {full_cpu / fast_cpu:.1f} |")
    return checks.exit_code()


if __name__ == "__main__":
    sys.exit(main())
