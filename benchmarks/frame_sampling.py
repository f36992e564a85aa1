"""Frame sampling: egotask's sampler against torchcodec, decord and lmms-eval's ``read_video``.

A matrix of cells, each a video shape and a frame count:
  * resolution 640x360 and 1280x720 (and 1920x1080 unless --skip-1080p);
  * keyframe every 12 frames (OpenCV-style writers, the official 6 fps conversion) or every 250;
  * 8, 32 or 60 frames per question.
Each cell has 2 clips of --seconds (default 90) at 6 fps (H.264, libx264 with B-frames, real motion),
with 4 real-time questions per clip at 35, 55, 75 and 95% of it: frames from [0, T) of each. The
contenders, each in a process of its own, answer the cell's 8 questions clip by clip, keeping the clip
open between its questions as each library allows:
  * egotask: ``sample_frames(clip, N, 0, T)`` per question (what an adapter does for one question);
  * egotask, one pass: ``sample_many`` for all of a clip's questions (what ``generate_until`` does);
  * torchcodec 0.17: ``VideoDecoder.get_frames_played_at`` at the times egotask picked (+0.1 ms:
    at an exact frame time it can return the previous frame), one FFmpeg thread;
  * decord: ``VideoReader.get_batch`` at the indices egotask picked (its default threads);
  * lmms-eval 0.7.3 ``read_video(clip, num_frm=N)`` (uniform over the whole file, front to back:
    no interval) -- slow; --contenders leaves it out by default in the full matrix;
  * the limit: decoding every frame of the clip once, without colour conversion.
It prints each contender's CPU seconds (process time of its own process, all threads, imports excluded)
and the ratio contender / egotask (above 1: egotask is faster). torchcodec loads FFmpeg 7 from PyAV's
wheel (the same FFmpeg both use), found through LD_LIBRARY_PATH in its process. It is optional
(``pip install torchcodec``; 0.17 installs beside torch 2.14.1), not in the dev extra: lmms-eval's own
models read videos with it whenever it is importable. Without it its column says failed, and --quick
checks the rest.

--quick runs two cells (640x360, keyframe every 12, 32 frames; keyframe every 250, 8 frames) on 20 s
clips, and checks, gating the exit status: egotask's frames are inside [0, T), the nearest to each
slot's centre and pixel-identical to a plain front-to-back PyAV decode; the one-pass frames equal the
per-question ones; torchcodec and decord (when importable) return the same frame times; lmms-eval's
``read_video`` and egotask's ``read_frames_at`` agree at read_video's frames. Its ratios are noise.

Two more sections (``--sections``, both in the full run and, on small clips, in --quick; see
benchmarks/_paper_scale.py): ``paper`` extrapolates the CPU-hours of frame sampling for the whole benchmark
at the paper's frame counts from the real annotations (``--annotations``), against decoding every frame
once; ``memory`` measures peak RSS of ``generate_until`` at ``frames=paper`` for several ``frame_memory``.

    .venv/bin/python benchmarks/frame_sampling.py --sections paper,memory --annotations /path/to/data
    .venv/bin/python benchmarks/frame_sampling.py                  # the full matrix (tens of minutes)
    .venv/bin/python benchmarks/frame_sampling.py --quick          # a minute; what CI runs
    .venv/bin/python benchmarks/frame_sampling.py --baseline-src /tmp/old   # + egotask from another tree
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _checks import Checks  # noqa: E402
from _clips import bench_workdir, write_motion_clip  # noqa: E402
from _paper_scale import memory_section, paper_section  # noqa: E402

FPS = 6
QUESTIONS_AT = (0.35, 0.55, 0.75, 0.95)  # of the clip's length
CONTENDERS = ("egotask", "egotask_one_pass", "torchcodec", "decord", "lmms_eval", "decode_all")
DEFAULT_FULL = ("egotask", "egotask_one_pass", "torchcodec", "decord", "decode_all")
LABELS = {"egotask": "egotask", "egotask_one_pass": "egotask one pass", "torchcodec": "torchcodec",
          "decord": "decord", "lmms_eval": "lmms-eval read_video", "decode_all": "decode all (limit)",
          "baseline": "egotask (baseline)"}


# --------------------------------------------------------------------------- the child's side

def _digest(frames: np.ndarray) -> list[str]:
    return [hashlib.md5(np.ascontiguousarray(f).tobytes()).hexdigest()[:12] for f in frames]


def _means(frames: np.ndarray) -> list[float]:
    return [round(float(f.mean()), 3) for f in frames]


def run_child(job: dict) -> dict:
    """Time one contender over a cell's clips; imports happen before the clock starts."""
    if "section" in job:  # the paper-scale sections (_paper_scale.py)
        from _paper_scale import run_child as paper_child

        return paper_child(job)
    contender = job["contender"]
    import resource

    if job.get("src"):  # another tree's sampler (one module: PyAV, numpy and the standard library)
        import importlib.util

        spec = importlib.util.spec_from_file_location("baseline_frames", Path(job["src"]) / "egotask" / "frames.py")
        egoframes = importlib.util.module_from_spec(spec)
        sys.modules["baseline_frames"] = egoframes
        spec.loader.exec_module(egoframes)
    elif contender in ("egotask", "egotask_one_pass"):
        from egotask import frames as egoframes
    elif contender == "torchcodec":
        import torch
        from torchcodec.decoders import VideoDecoder

        torch.set_num_threads(1)
    elif contender == "decord":
        import decord
    elif contender == "lmms_eval":
        from lmms_eval.models.model_utils.load_video import read_video
    import av

    def work(clips: list[dict]) -> list[dict]:
        answers: list[dict] = []
        for clip in clips:
            answers += answer_clip(clip)
        return answers

    def summary(stamps: list[float], frames: np.ndarray) -> dict:
        """What the parent checks; the frames themselves are let go at once (1080p, 60 frames: 370 MB)."""
        digests = bool(job.get("digests"))
        return {"stamps": stamps, "md5": _digest(frames) if digests else [], "means": _means(frames) if digests else [],
                "shape": list(frames.shape)}

    def answer_clip(clip: dict) -> list[dict]:
        answers: list[dict] = []
        path, questions = clip["path"], clip["questions"]
        if contender in ("egotask", "baseline"):
            for q in questions:
                got = egoframes.sample_frames(path, q["n"], 0.0, q["end"])
                answers.append(summary(got.timestamps, got.frames))
        elif contender == "egotask_one_pass":
            asks = [egoframes.Ask(q["n"], 0.0, q["end"]) for q in questions]
            for got in egoframes.sample_many(path, asks):
                answers.append(summary(got.timestamps, got.frames))
        elif contender == "torchcodec":
            decoder = VideoDecoder(path, dimension_order="NHWC", num_ffmpeg_threads=1)
            for q in questions:
                batch = decoder.get_frames_played_at([t + 1e-4 for t in q["stamps"]])
                answers.append(summary([round(float(t), 6) for t in batch.pts_seconds], batch.data.numpy()))
        elif contender == "decord":
            reader = decord.VideoReader(path)
            for q in questions:
                idx = [int(round(t * FPS)) for t in q["stamps"]]
                answers.append(summary([round(i / FPS, 6) for i in idx], reader.get_batch(idx).asnumpy()))
        elif contender == "lmms_eval":
            for q in questions:
                answers.append(summary([], read_video(path, num_frm=q["n"])))
        elif contender == "decode_all":
            with av.open(path) as container:
                stream = container.streams.video[0]
                stream.codec_context.thread_count = 1
                count = sum(1 for _ in container.decode(stream))
            answers.append(summary([], np.zeros((count, 1, 1, 3), np.uint8)))
        return answers

    # One untimed question first: a fresh process's first allocations and caches are not what a
    # long run sees. Then every contender starts with its files closed.
    first = job["clips"][0]
    work([{**first, "questions": first["questions"][:1]}])
    if contender in ("egotask", "egotask_one_pass", "baseline"):
        egoframes.close_open_videos()
    began, wall = time.process_time(), time.perf_counter()
    answers = work(job["clips"])
    cpu, wall = time.process_time() - began, time.perf_counter() - wall
    return {"cpu": cpu, "wall": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "answers": answers}


# --------------------------------------------------------------------------- the parent's side

def ffmpeg_dir_for_torchcodec(workdir: Path) -> str:
    """A folder of links named as torchcodec asks for FFmpeg 7's libraries (libavutil.so.59, ...),
    pointing into PyAV's wheel; with the wheel's own folder, its LD_LIBRARY_PATH."""
    import av

    libs = Path(av.__file__).resolve().parent.parent / "av.libs"
    links = workdir / "ffmpeg-for-torchcodec"
    links.mkdir(parents=True, exist_ok=True)
    for lib in libs.glob("lib*.so*"):
        match = re.match(r"(lib(?:av|sw)[a-z]+)-[0-9a-f]{8}(\.so\.\d+)", lib.name)
        if match:
            link = links / (match.group(1) + match.group(2))
            if not link.exists():
                link.symlink_to(lib)
    return f"{links}:{libs}"


def run_contender(contender: str, clips: list[dict], env: dict[str, str], digests: bool,
                  src: Path | None = None) -> dict:
    job = {"contender": contender, "clips": clips, "digests": digests, "src": str(src) if src else None}
    done = subprocess.run([sys.executable, __file__, "--child"], input=json.dumps(job), capture_output=True,
                          text=True, env=env)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def make_cell_clips(workdir: Path, size: tuple[int, int], gop: int, seconds: float) -> list[Path]:
    clips = []
    for i in range(2):
        path = workdir / f"clip{seconds:g}s_{size[0]}x{size[1]}_{FPS}fps_gop{gop}_{i}.mp4"
        if not path.exists():
            print(f"generating {path.name} ...", flush=True)
        clips.append(write_motion_clip(path, seconds, FPS, size, gop / FPS, seed=i))
    return clips


def cell_questions(clips: list[Path], n: int, seconds: float) -> list[dict]:
    """The cell's questions, with the frame times egotask picks (torchcodec and decord get the same)."""
    from egotask.frames import close_open_videos, sample_frames

    out = []
    for clip in clips:
        questions = []
        for at in QUESTIONS_AT:
            end = round(at * seconds, 3)
            questions.append({"n": n, "end": end, "stamps": sample_frames(clip, n, 0.0, end).timestamps})
        out.append({"path": str(clip), "questions": questions})
    close_open_videos()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="two cells on short clips, checks gate the exit status")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where clips are cached (default: /tmp/egotask-bench; --quick: a fresh temp folder)")
    parser.add_argument("--seconds", type=float, default=None, help="clip length (default 90; --quick: 20)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="egotask and torchcodec runs per cell, interleaved (lowest counts); others run once")
    parser.add_argument("--skip-1080p", action="store_true", help="leave out the 1920x1080 cells")
    parser.add_argument("--only", default=None, help="cells whose name contains this, e.g. 1280x720/gop12")
    parser.add_argument("--contenders", default=None,
                        help=f"comma-separated, from {', '.join(CONTENDERS)} (default: all but lmms_eval; "
                             "--quick: all)")
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="also time egotask from this source tree (an older checkout), in the same run")
    parser.add_argument("--sections", default="matrix,paper,memory",
                        help="which parts to run, comma-separated: matrix (the table above), paper (CPU-hours "
                             "for the whole benchmark at the paper's frame counts, from the real annotations), "
                             "memory (peak RSS of generate_until at frames=paper per frame_memory)")
    parser.add_argument("--annotations", type=Path, default=None,
                        help="for the paper section: a folder holding egotextvqa/*.jsonl and "
                             "egotempo/egotempo_openQA.json (default: EGOTEXTVQA_ANNOTATIONS and "
                             "EGOTEMPO_ANNOTATIONS; --quick without them: the demo data set)")
    args = parser.parse_args()
    if args.child:
        result = run_child(json.loads(sys.stdin.read()))
        print(json.dumps(result))
        return 0
    with bench_workdir(args.workdir, args.quick) as workdir:
        return run(args, workdir)


def run(args: argparse.Namespace, workdir: Path) -> int:
    sections = set(args.sections.split(","))
    unknown = sections - {"matrix", "paper", "memory"}
    if unknown:
        raise SystemExit(f"--sections: unknown {sorted(unknown)}; choose from matrix, paper, memory")
    checks = Checks("frame_sampling --quick" if args.quick else "frame_sampling")
    if "matrix" in sections:
        matrix_section(args, workdir, checks)
    if "paper" in sections:
        paper_section(workdir, args.annotations, args.quick, checks)
    if "memory" in sections:
        memory_section(workdir, args.quick, checks)
    return checks.exit_code()


def matrix_cells(args: argparse.Namespace) -> list:
    """(size, keyframe interval, frames per question) of each cell: two in --quick, the full matrix else."""
    if args.quick:
        cells = [((640, 360), 12, 32), ((640, 360), 250, 8)]
    else:
        sizes = [(640, 360), (1280, 720)] + ([] if args.skip_1080p else [(1920, 1080)])
        cells = [(s, g, n) for s in sizes for g in (12, 250) for n in (8, 32, 60)]
    return [c for c in cells if args.only in cell_name(c)] if args.only else cells


def matrix_section(args: argparse.Namespace, workdir: Path, checks: Checks) -> None:
    """Every contender on every cell, CPU seconds and the ratio to egotask (--quick: checks too)."""
    quick, cells = args.quick, matrix_cells(args)
    if not cells:
        return
    seconds = args.seconds or (20.0 if quick else 90.0)
    contenders = (args.contenders.split(",") if args.contenders else list(CONTENDERS if quick else DEFAULT_FULL))
    if args.baseline_src:
        contenders.insert(1, "baseline")
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = ffmpeg_dir_for_torchcodec(workdir) + (
        ":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    print(f"{len(cells)} cells, 2 clips of {seconds:g} s at {FPS} fps each, questions at "
          f"{', '.join(f'{q:.0%}' for q in QUESTIONS_AT)} of each clip; CPU seconds per cell\n", flush=True)
    rows = []
    for cell in cells:
        questions = cell_questions(make_cell_clips(workdir, cell[0], cell[1], seconds), cell[2], seconds)
        results = run_cell(args, questions, contenders, env)
        rows.append((cell, results))
        print(format_row(cell, results, contenders), flush=True)
        if quick:
            check_cell(checks, cell, questions, results)
    print("\n" + table(rows, contenders))
    if quick:
        check_read_video(checks, workdir)


def run_cell(args: argparse.Namespace, questions: list, contenders: list[str], env: dict[str, str]) -> dict[str, dict]:
    """Each contender's lowest CPU over the repeats (only egotask, torchcodec and the baseline repeat)."""
    results: dict[str, dict] = {}
    for repeat in range(args.repeats):
        for contender in contenders:
            if repeat and contender not in ("egotask", "torchcodec", "baseline"):
                continue  # repeats narrow the noise where the verdict is close; the rest run once
            got = run_contender(contender if contender != "baseline" else "egotask", questions, env,
                                digests=args.quick, src=args.baseline_src if contender == "baseline" else None)
            best = results.get(contender)
            if best is None or ("cpu" in got and got["cpu"] < best.get("cpu", float("inf"))):
                results[contender] = got
    return results


def cell_name(cell) -> str:
    (w, h), gop, n = cell
    return f"{w}x{h}/gop{gop}/{n}f"


def format_row(cell, results: dict[str, dict], contenders: list[str]) -> str:
    parts = [f"{cell_name(cell):<22}"]
    for c in contenders:
        r = results.get(c, {})
        parts.append(f"{LABELS[c]} {r['cpu']:.2f}s" if "cpu" in r else f"{LABELS[c]} FAILED ({r.get('error')})")
    return "  ".join(parts)


def table(rows, contenders: list[str]) -> str:
    """Markdown: CPU seconds per contender and each one's ratio to egotask (above 1: egotask is faster)."""
    head = ["cell"] + [LABELS[c] for c in contenders] + [f"{LABELS[c]} / egotask" for c in contenders
                                                         if c not in ("egotask", "decode_all")]
    head.append("egotask one pass / limit" if "decode_all" in contenders and "egotask_one_pass" in contenders
                else "")
    head.append("peak RSS MB (egotask, one pass)")
    lines = ["| " + " | ".join(h for h in head if h) + " |", "|" + " --- |" * len([h for h in head if h])]
    for cell, results in rows:
        ego = results.get("egotask", {}).get("cpu")
        cells = [cell_name(cell)]
        cells += [f"{results[c]['cpu']:.2f}" if "cpu" in results.get(c, {}) else "failed" for c in contenders]
        for c in contenders:
            if c in ("egotask", "decode_all"):
                continue
            cpu = results.get(c, {}).get("cpu")
            cells.append(f"{cpu / ego:.2f}" if cpu and ego else "-")
        if head[-1]:
            one, limit = results.get("egotask_one_pass", {}).get("cpu"), results.get("decode_all", {}).get("cpu")
            cells.append(f"{one / limit:.2f}" if one and limit else "-")
        cells.append(" / ".join(f"{results[c]['peak_rss_mb']:.0f}" if "peak_rss_mb" in results.get(c, {}) else "-"
                                for c in ("egotask", "egotask_one_pass")))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- --quick's checks

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


def check_cell(checks: Checks, cell, questions: list[dict], results: dict[str, dict]) -> None:
    from egotask.frames import target_times

    name = cell_name(cell)
    for c, r in results.items():
        checks.expect("cpu" in r or c in ("torchcodec", "decord"), f"{name}: {c} failed: {r.get('error')}")
    ego = results.get("egotask", {}).get("answers")
    if not ego:
        return
    k = 0
    for clip in questions:
        times, frames = decode_all(Path(clip["path"]))
        first = times[0]
        times = [t - first for t in times]
        for q in clip["questions"]:
            got = ego[k]
            where = f"{name}: {Path(clip['path']).name} [0, {q['end']:g})"
            inside = [i for i, t in enumerate(times) if t < q["end"] - 1e-6]
            checks.expect(all(0 <= t < q["end"] for t in got["stamps"]), f"{where}: a frame at or after the end")
            for j, (centre, t) in enumerate(zip(target_times(0.0, q["end"], q["n"]), got["stamps"], strict=True)):
                best = min(inside, key=lambda i: abs(times[i] - centre))
                checks.expect(abs(t - times[best]) < 1e-3, f"{where}: frame {j} at {t:.4f}s, expected "
                                                           f"{times[best]:.4f}s")
                checks.expect(got["md5"][j] == _digest(frames[best][None])[0],
                              f"{where}: frame {j} differs from a front-to-back decode")
            one = results.get("egotask_one_pass", {}).get("answers")
            if one:
                checks.expect(one[k]["md5"] == got["md5"], f"{where}: the one-pass frames differ")
            for other in ("torchcodec", "decord"):
                theirs = results.get(other, {}).get("answers")
                if theirs:  # when importable here: the same frames (their colour conversion may differ a little)
                    checks.expect(theirs[k]["stamps"] == got["stamps"], f"{where}: {other} returned other frames "
                                                                        f"{theirs[k]['stamps']} vs {got['stamps']}")
                    gap = max(abs(a - b) for a, b in zip(theirs[k]["means"], got["means"], strict=True))
                    checks.expect(gap < 2.0, f"{where}: {other}'s frames differ from egotask's (mean gap {gap:.2f})")
            k += 1


def check_read_video(checks: Checks, workdir: Path) -> None:
    """lmms-eval's read_video and egotask's read_frames_at at read_video's frames: the same pixels."""
    from lmms_eval.models.model_utils.load_video import read_video

    from egotask.frames import probe_video, read_frames_at

    clip = make_cell_clips(workdir, (640, 360), 12, 20.0)[0]
    info = probe_video(clip, exact=True)
    for n in (8, 32):
        picks = np.linspace(0, info.num_frames - 1, min(info.num_frames, n), dtype=int).tolist()
        ref = read_video(str(clip), num_frm=n)
        ours = read_frames_at(clip, [i / info.fps for i in picks])
        checks.expect(ref.shape == ours.frames.shape and np.array_equal(ref, ours.frames),
                      f"read_frames_at at read_video's {n} frames: the pixels differ")


if __name__ == "__main__":
    sys.exit(main())
