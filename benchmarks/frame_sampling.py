"""Frame sampling: egotask's seeking sampler vs lmms-eval 0.7.3's ``read_video`` (PyAV, sequential).

Clips: generated, 60 s, 1280x720, 30 fps, H.264 with a keyframe every 2 s (cached in --workdir).
For 8 and 32 frames it times, on the same clips:
  * lmms-eval ``read_video(path, num_frm=N)`` (uniform over the whole clip);
  * ``egotask.frames.read_frames_at`` at exactly the frames read_video picks (index / fps), checking
    that every timestamp agrees within one frame and the pixels are identical;
  * ``egotask.frames.sample_frames`` over [0, T) for a question at T = 45 s (what real-time QA asks).
Runs are interleaved and the median of --repeats is reported. Target: >= 3x at 8 frames.

    .venv/bin/python benchmarks/frame_sampling.py [--clips 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _clips import benchmark_clips  # noqa: E402


def lmms_indices(total: int, n: int) -> list[int]:
    """The frames lmms-eval's read_video keeps (uniform linspace over all frames)."""
    return np.linspace(0, total - 1, min(total, n), dtype=int).tolist()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/egotask-bench"))
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--question-at", type=float, default=45.0)
    args = parser.parse_args()

    from lmms_eval.models.model_utils.load_video import read_video

    from egotask.frames import probe_video, read_frames_at, sample_frames

    clips = benchmark_clips(args.workdir, args.clips)
    info = probe_video(clips[0], exact=True)
    print(f"clips: {len(clips)} x {info.duration:.0f}s {info.width}x{info.height} {info.fps:g} fps H.264 "
          f"({info.num_frames} frames), keyframe every 2 s\n")

    rows = []
    ok = True
    for n in (8, 32):
        t_lmms, t_same, t_rt = [], [], []
        for _ in range(args.repeats):
            for clip in clips:
                total = probe_video(clip, exact=True).num_frames
                fps = probe_video(clip).fps
                want = [i / fps for i in lmms_indices(total, n)]
                t0 = time.perf_counter()
                ref = read_video(str(clip), num_frm=n)
                t_lmms.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                ours = read_frames_at(clip, want)
                t_same.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                sample_frames(clip, n, 0.0, args.question_at)
                t_rt.append(time.perf_counter() - t0)
                off = max(abs(a - b) for a, b in zip(ours.timestamps, want, strict=True))
                if off > 1.0 / fps + 1e-6 or ref.shape != ours.frames.shape or not np.array_equal(ref, ours.frames):
                    ok = False
                    print(f"MISMATCH n={n} {clip.name}: max timestamp gap {off:.4f}s, "
                          f"pixels equal: {ref.shape == ours.frames.shape and np.array_equal(ref, ours.frames)}")
        med = {k: statistics.median(v) for k, v in (("lmms", t_lmms), ("same", t_same), ("rt", t_rt))}
        rows.append((n, med))
    print(f"{'frames':>6} | {'lmms-eval read_video':>20} | {'egotask same frames':>19} | {'ratio':>6} | "
          f"{'egotask [0,45s)':>15} | {'ratio':>6}")
    for n, med in rows:
        print(f"{n:>6} | {med['lmms']:>19.3f}s | {med['same']:>18.3f}s | {med['lmms'] / med['same']:>5.1f}x | "
              f"{med['rt']:>14.3f}s | {med['lmms'] / med['rt']:>5.1f}x")
    print(f"\ntimestamps within one frame and identical pixels: {'yes' if ok else 'NO'}")
    ratio8 = rows[0][1]["lmms"] / rows[0][1]["same"]
    print(f"target >= 3x at 8 frames: {'met' if ratio8 >= 3 else 'NOT met'} ({ratio8:.1f}x)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
