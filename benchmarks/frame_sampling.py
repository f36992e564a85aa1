"""Frame sampling: egotask's seeking sampler vs lmms-eval 0.7.3's ``read_video`` (PyAV, sequential).

Clips: generated, 60 s, 1280x720, 30 fps, H.264 with a keyframe every 2 s (cached in --workdir).
For 8 and 32 frames it times, on the same clips:
  * lmms-eval ``read_video(path, num_frm=N)`` (uniform over the whole clip);
  * ``egotask.frames.read_frames_at`` at exactly the frames read_video picks (index / fps), checking
    that every timestamp agrees within one frame and the pixels are identical;
  * ``egotask.frames.sample_frames`` over [0, T) for a question at T = 45 s (what real-time QA asks).
Runs are interleaved and the median of --repeats is reported. Target: >= 3x at 8 frames.

--quick runs the same code on one 6 s 320x180 clip, once, and checks instead of timing: read_frames_at
must give read_video's frames (timestamps within one frame, identical pixels), and sample_frames must
give N frames inside [0, T), each the frame nearest its slot's centre, pixel-identical to a plain
front-to-back PyAV decode. A failed check exits 1; the ratios it prints are noise and do not gate.

    .venv/bin/python benchmarks/frame_sampling.py [--clips 2] [--repeats 5]
    .venv/bin/python benchmarks/frame_sampling.py --quick     # a few seconds; what CI runs
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _checks import Checks  # noqa: E402
from _clips import bench_workdir, benchmark_clips, quick_clips  # noqa: E402


def lmms_indices(total: int, n: int) -> list[int]:
    """The frames lmms-eval's read_video keeps (uniform linspace over all frames)."""
    return np.linspace(0, total - 1, min(total, n), dtype=int).tolist()


def decode_all(path: Path) -> tuple[list[float], list[np.ndarray]]:
    """Every frame, front to back, with its presentation time: the reference needing no seeking."""
    import av

    times, frames = [], []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            times.append(float(frame.time))
            frames.append(frame.to_ndarray(format="rgb24"))
    order = np.argsort(times, kind="stable")
    return [times[i] for i in order], [frames[i] for i in order]


def check_real_time(checks: Checks, clip: Path, n: int, question_at: float) -> None:
    """sample_frames over [0, question_at): N frames, none at or after the question, each the frame
    nearest its slot's centre, with the pixels a plain decode gives."""
    from egotask.frames import sample_frames, target_times

    got = sample_frames(clip, n, 0.0, question_at)
    where = f"sample_frames({clip.name}, {n}, 0, {question_at:g})"
    if not checks.expect(len(got.timestamps) == n and got.frames.shape[0] == n,
                         f"{where}: {len(got.timestamps)} timestamps, {got.frames.shape[0]} frames, expected {n}"):
        return
    times, frames = decode_all(clip)
    inside = [i for i, t in enumerate(times) if t < question_at - 1e-6]
    checks.expect(all(0 <= t < question_at for t in got.timestamps),
                  f"{where}: timestamps outside [0, {question_at:g}): {got.timestamps}")
    for k, (centre, t) in enumerate(zip(target_times(0.0, question_at, n), got.timestamps, strict=True)):
        best = min(inside, key=lambda i: abs(times[i] - centre))
        if not checks.expect(abs(t - times[best]) < 1e-3,
                             f"{where}: frame {k} at {t:.4f}s, expected the frame at {times[best]:.4f}s "
                             f"(nearest to the slot centre {centre:.4f}s)"):
            continue
        checks.expect(np.array_equal(got.frames[k], frames[best]),
                      f"{where}: frame {k} ({t:.4f}s) differs from a front-to-back decode of that frame")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="one small clip, one repeat, correctness checks that gate the exit status")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where clips are cached (default: /tmp/egotask-bench; --quick: a fresh temp folder)")
    parser.add_argument("--clips", type=int, default=None, help="default 2 (--quick: 1)")
    parser.add_argument("--repeats", type=int, default=None, help="default 5 (--quick: 1)")
    parser.add_argument("--question-at", type=float, default=None, help="default 45 s (--quick: 4.5 s)")
    args = parser.parse_args()
    with bench_workdir(args.workdir, args.quick) as workdir:
        return run(args, workdir)


def run(args: argparse.Namespace, workdir: Path) -> int:
    from lmms_eval.models.model_utils.load_video import read_video

    from egotask.frames import close_open_videos, probe_video, read_frames_at, sample_frames

    quick = args.quick
    n_clips = args.clips if args.clips is not None else (1 if quick else 2)
    repeats = args.repeats if args.repeats is not None else (1 if quick else 5)
    # 0.75 of the clip, as 45 s is of the full benchmark's 60 s clips
    question_at = args.question_at if args.question_at is not None else (4.5 if quick else 45.0)
    clips = (quick_clips if quick else benchmark_clips)(workdir, n_clips)
    info = probe_video(clips[0], exact=True)
    print(f"clips: {len(clips)} x {info.duration:.0f}s {info.width}x{info.height} {info.fps:g} fps H.264 "
          f"({info.num_frames} frames), keyframe every 2 s\n")

    rows = []
    ok = True
    for n in (8, 32):
        t_lmms, t_same, t_rt = [], [], []
        for _ in range(repeats):
            for clip in clips:
                total = probe_video(clip, exact=True).num_frames
                fps = probe_video(clip).fps
                want = [i / fps for i in lmms_indices(total, n)]
                t0 = time.perf_counter()
                ref = read_video(str(clip), num_frm=n)
                t_lmms.append(time.perf_counter() - t0)
                close_open_videos()  # each egotask call opens the file, as read_video does
                t0 = time.perf_counter()
                ours = read_frames_at(clip, want)
                t_same.append(time.perf_counter() - t0)
                close_open_videos()
                t0 = time.perf_counter()
                sample_frames(clip, n, 0.0, question_at)
                t_rt.append(time.perf_counter() - t0)
                off = max(abs(a - b) for a, b in zip(ours.timestamps, want, strict=True))
                if off > 1.0 / fps + 1e-6 or ref.shape != ours.frames.shape or not np.array_equal(ref, ours.frames):
                    ok = False
                    print(f"MISMATCH n={n} {clip.name}: max timestamp gap {off:.4f}s, "
                          f"pixels equal: {ref.shape == ours.frames.shape and np.array_equal(ref, ours.frames)}")
        med = {k: statistics.median(v) for k, v in (("lmms", t_lmms), ("same", t_same), ("rt", t_rt))}
        rows.append((n, med))
    rt_header = f"egotask [0,{question_at:g}s)"
    print(f"{'frames':>6} | {'lmms-eval read_video':>20} | {'egotask same frames':>19} | {'ratio':>6} | "
          f"{rt_header:>15} | {'ratio':>6}")
    for n, med in rows:
        print(f"{n:>6} | {med['lmms']:>19.3f}s | {med['same']:>18.3f}s | {med['lmms'] / med['same']:>5.1f}x | "
              f"{med['rt']:>14.3f}s | {med['lmms'] / med['rt']:>5.1f}x")
    print(f"\ntimestamps within one frame and identical pixels: {'yes' if ok else 'NO'}")
    ratio8 = rows[0][1]["lmms"] / rows[0][1]["same"]
    if not quick:
        print(f"target >= 3x at 8 frames: {'met' if ratio8 >= 3 else 'NOT met'} ({ratio8:.1f}x)")
        return 0 if ok else 1
    print(f"(--quick: ratios on a tiny clip are noise; target not checked, {ratio8:.1f}x at 8 frames)")
    checks = Checks("frame_sampling --quick")
    checks.expect(ok, "read_frames_at at read_video's frames: timestamps or pixels differ (MISMATCH lines above)")
    for n in (8, 32):
        for clip in clips:
            check_real_time(checks, clip, n, question_at)
    return checks.exit_code()


if __name__ == "__main__":
    sys.exit(main())
