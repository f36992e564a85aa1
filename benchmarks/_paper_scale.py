"""frame_sampling.py's two paper-scale sections (issue 26):

* ``paper``: CPU-hours of frame sampling for the whole benchmark (7,564 questions) at the paper's frame
  counts, extrapolated from real annotations, next to decoding every frame once (the limit);
* ``memory``: peak RSS of ``generate_until`` at ``frames=paper`` with several questions per video, at the
  default ``frame_memory`` and a smaller one.

The real videos are not needed: for a sample of real videos (chosen at quantiles of their length, with
their real question timestamps), synthetic clips of the real shape are generated, and the real
generate-time path runs on them. Shapes, which the annotations do not give, are assumptions, stated in
:data:`SPLITS` and printed with the results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _checks import Checks
from _clips import write_motion_clip

MARGIN_S = 1.0  # a synthetic clip lasts until the video's last question plus this
KEYS = ("one_pass", "limit", "limit_convert", "limit_deliver", "one_pass_sys", "limit_sys", "limit_convert_sys",
        "limit_deliver_sys")


@dataclass(frozen=True)
class Split:
    name: str
    benchmark: str
    size: tuple[int, int]
    fps: int
    gops: tuple[int, ...]  # keyframe intervals (frames) to measure
    frames: int  # frames per question
    sample: int  # videos sampled in the full run
    shape_source: str  # where the shape comes from


SPLITS = (
    Split("indoor", "egotextvqa_indoor", (1920, 1080), 6, (12, 250), 60, 3,
          "1080p (DESIGN.md, measured decoding); the release's 6 fps; paper: 60 frames"),
    Split("outdoor", "egotextvqa_outdoor", (640, 360), 6, (12, 250), 32, 6,
          "the 0.5x low-resolution videos, taken as 640x360 (0.5x 720p, assumed); 6 fps; paper: 32 frames"),
    Split("egotempo", "egotempo_openqa", (1920, 1080), 30, (250,), 32, 2,
          "Ego4D clips as trim-egotempo cuts them: 1080p, 30 fps (assumed), x264's keyframe every 250; "
          "the paper has no EgoTempo count, so 32 frames (the closed models' outdoor count)"),
)


@dataclass(frozen=True)
class Video:
    video_id: str
    ends: tuple[float | None, ...]  # each question's visible end (None: the whole clip)
    seconds: float  # the video's length as far as the benchmark needs it


def benchmark_videos(split: Split) -> list[Video]:
    """Every video of the split with its questions, from egotask's own loaders (the annotation settings)."""
    from egotask.data.sources import load_docs
    from egotask.data.trim import parse_clip_id

    by_video: dict[str, list[dict]] = {}
    for doc in load_docs(split.benchmark):
        by_video.setdefault(doc["video_id"], []).append(doc)
    videos = []
    for video_id, docs in by_video.items():
        ends = tuple(d["visible_end"] for d in docs)
        if split.name == "egotempo":
            clip = parse_clip_id(video_id)
            seconds = clip.end - max(clip.start, 0.0)
        else:
            seconds = max(e for e in ends if e is not None) + MARGIN_S
        videos.append(Video(video_id, ends, round(seconds, 3)))
    return videos


def sample_videos(videos: list[Video], count: int) -> list[Video]:
    """``count`` videos at evenly spaced quantiles of length (the middle of each stratum)."""
    ordered = sorted(videos, key=lambda v: (v.seconds, v.video_id))
    picks = [int((k + 0.5) * len(ordered) / count) for k in range(count)]
    return [ordered[min(p, len(ordered) - 1)] for p in picks]


# --------------------------------------------------------------------------- the child's side

def run_child(job: dict) -> dict:
    """``paper``: one-pass sampling, the limit and the limit plus converting the wanted frames, CPU s.
    ``memory``: generate_until through a weightless FramesModel; peak RSS."""
    return _paper_child(job) if job["section"] == "paper" else _memory_child(job)


def _paper_child(job: dict) -> dict:
    import resource

    import av

    from egotask.frames import Converter, VisibleVideo, close_open_videos, sample_visuals

    def one_pass(clip: dict) -> list:
        visuals = [VisibleVideo(clip["path"], 0.0, end) for end in clip["ends"]]
        return sample_visuals(visuals, max_frames=job["frames"])

    def limit(clip: dict, slots: dict[int, list[tuple[int, int]]] | None, counts: list[int]) -> list:
        """Every frame decoded once. With ``slots``: the wanted frames converted once (as egotask does,
        full size), and with ``counts`` also copied into each question's own array, as handed to a model."""
        converter = Converter()
        arrays: dict[int, np.ndarray] = {}
        with av.open(clip["path"]) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1
            for frame in container.decode(stream):
                if slots is not None and frame.pts in slots:
                    rgb = converter(frame)
                    for k, i in slots[frame.pts] if counts else ():
                        if k not in arrays:
                            arrays[k] = np.empty((counts[k], *rgb.shape), np.uint8)
                        arrays[k][i] = rgb
        return list(arrays.values())

    def timed(key: str, work) -> object:
        before = resource.getrusage(resource.RUSAGE_SELF)
        result = work()
        after = resource.getrusage(resource.RUSAGE_SELF)
        out[key].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        out[key + "_sys"].append(after.ru_stime - before.ru_stime)
        return result

    clips = job["clips"]
    one_pass(clips[0])  # untimed: a fresh process's first allocations
    close_open_videos()
    keys = ("one_pass", "limit", "limit_convert", "limit_deliver")
    out: dict = {k: [] for k in keys} | {k + "_sys": [] for k in keys} | {"checks": [], "wanted": []}
    for clip in clips:
        got = timed("one_pass", lambda clip=clip: one_pass(clip))
        close_open_videos()
        stamps = [list(g.timestamps) if not isinstance(g, Exception) else str(g) for g in got]
        del got
        out["checks"].append(stamps)
        with av.open(clip["path"]) as container:
            stream = container.streams.video[0]
            pts = sorted(p.pts for p in container.demux(stream) if p.pts is not None)
            tb = float(stream.time_base)
        by_time = {round((p - pts[0]) * tb, 6): p for p in pts}
        slots: dict[int, list[tuple[int, int]]] = {}
        counts = []
        for k, times in enumerate(stamps):
            times = times if isinstance(times, list) else []
            counts.append(len(times))
            for i, t in enumerate(times):
                slots.setdefault(by_time[round(t, 6)], []).append((k, i))
        out["wanted"].append(len(slots))
        timed("limit", lambda clip=clip: limit(clip, None, []))
        timed("limit_convert", lambda clip=clip, slots=slots: limit(clip, slots, []))
        delivered = timed("limit_deliver", lambda clip=clip, slots=slots, counts=counts: limit(clip, slots, counts))
        del delivered
    return out


def _memory_child(job: dict) -> dict:
    import resource

    from lmms_eval.api.instance import Instance

    from egotask.frames import VisibleVideo
    from egotask.model_adapters.base import FramesModel

    class Weightless(FramesModel):
        """The real generate_until (grouping, decode-ahead pool, frame_memory) with no model weights:
        each reply touches every frame, as a processor would."""

        family = "weightless"

        def __init__(self, **kwargs) -> None:
            super().__init__(**kwargs)
            self.submitted = self.answered = 0
            self.most_held = 0

        def submit_group(self, pool, group):
            self.submitted += len(group)
            self.most_held = max(self.most_held, self.submitted - self.answered)
            return super().submit_group(pool, group)

        def generate(self, batch):
            self.answered += len(batch)
            return [str(int(sum(int(v.frames[:, ::64, ::64].sum()) for v in p.videos))) for p in batch]

    model = Weightless(frames="paper", frame_memory=job["frame_memory"], **job.get("model_args", {}))
    docs = [{"visual": VisibleVideo(q["path"], 0.0, q["end"]), "question": f"q{i}", "task": "t",
             "video_id": Path(q["path"]).stem, "question_id": str(i), "setting": job["setting"]}
            for i, q in enumerate(job["questions"])]
    model.task_dict = {"t": {"test": docs}}
    requests = [Instance("generate_until", (d["question"], {"until": ["\n\n"]}, lambda doc: [doc["visual"]], i,
                                            "t", "test"), idx=0, metadata={"task": "t", "doc_id": i, "repeats": 1})
                for i, d in enumerate(docs)]
    with open("/proc/self/statm") as fh:
        before = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    began = time.perf_counter()
    answers = model.generate_until(requests)
    item = model.frame_bytes(model.prepare(requests[0]))
    return {"rss_before": before, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "answers": answers, "most_held_items": model.most_held, "item_bytes": item,
            "frame_memory": model.frame_memory, "wall": time.perf_counter() - began}


def run_in_child(job: dict, env: dict[str, str]) -> dict:
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("frame_sampling.py")), "--child"],
                          input=json.dumps(job), capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- the parent's side

def annotation_env(annotations: Path | None, workdir: Path, quick: bool) -> tuple[dict[str, str], str]:
    """The annotation settings, and where they come from: ``--annotations`` (a folder holding
    egotextvqa/ and egotempo/ as the release names them), else the environment's, else (--quick) the
    demo data set."""
    env = dict(os.environ)
    if annotations is not None:
        env["EGOTEXTVQA_ANNOTATIONS"] = str(annotations / "egotextvqa")
        env["EGOTEMPO_ANNOTATIONS"] = str(annotations / "egotempo" / "egotempo_openQA.json")
        return env, f"real annotations under {annotations}"
    if env.get("EGOTEXTVQA_ANNOTATIONS") and env.get("EGOTEMPO_ANNOTATIONS"):
        return env, "the annotations EGOTEXTVQA_ANNOTATIONS and EGOTEMPO_ANNOTATIONS name"
    if not quick:
        raise SystemExit("the paper section needs the real annotations: --annotations DIR (a folder with "
                         "egotextvqa/*.jsonl and egotempo/egotempo_openQA.json) or EGOTEXTVQA_ANNOTATIONS and "
                         "EGOTEMPO_ANNOTATIONS")
    from egotask.fixtures import build_sample_data

    env.update(build_sample_data(workdir / "demo-data"))
    return env, "egotask's demo data set (no real annotations given): a dry run of the arithmetic"


def _load_in(env: dict[str, str], split: Split) -> list[Video]:
    from egotask import settings

    saved = dict(os.environ)
    os.environ.update({k: v for k, v in env.items() if k.startswith(("EGOTEXTVQA", "EGOTEMPO"))})
    settings.reset()
    try:
        return benchmark_videos(split)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        settings.reset()


def paper_section(workdir: Path, annotations: Path | None, quick: bool, checks: Checks) -> list[str]:
    """Measure and extrapolate; returns the Markdown lines (also printed as they come)."""
    env, source = annotation_env(annotations, workdir, quick)
    print(f"\n## CPU-hours for the whole benchmark at the paper's frame counts\nannotations: {source}", flush=True)
    rows = []
    for split in SPLITS:
        videos = _load_in(env, split)
        total_s = sum(v.seconds for v in videos)
        questions = sum(len(v.ends) for v in videos)
        picked = sample_videos(videos, 1 if quick else split.sample)
        size = (320, 180) if quick else split.size
        for gop in split.gops[-1:] if quick else split.gops:
            clips = []
            for k, video in enumerate(picked):
                seconds = min(video.seconds, 12.0) if quick else video.seconds
                ends = [None if e is None else min(e, seconds - MARGIN_S) for e in video.ends]
                path = workdir / f"paper_{split.name}_{k}_{size[0]}x{size[1]}_{split.fps}fps_gop{gop}_{seconds:g}s.mp4"
                if not path.exists():
                    print(f"generating {path.name} ...", flush=True)
                write_motion_clip(path, seconds, split.fps, size, gop / split.fps, seed=k)
                clips.append({"path": str(path), "ends": ends, "seconds": seconds})
            got = run_in_child({"section": "paper", "clips": clips, "frames": split.frames}, env)
            if not checks.expect("error" not in got, f"paper {split.name}/gop{gop}: {got.get('error')}"):
                continue
            for clip, stamps in zip(clips, got["checks"], strict=True):
                for end, times in zip(clip["ends"], stamps, strict=True):
                    where = f"paper {split.name}/gop{gop} {Path(clip['path']).name} end {end}"
                    if checks.expect(isinstance(times, list), f"{where}: {times}"):
                        limit_end = clip["seconds"] if end is None else end
                        checks.expect(len(times) == split.frames, f"{where}: {len(times)} frames")
                        checks.expect(all(0 <= t < limit_end for t in times), f"{where}: a frame outside the interval")
            sampled_s = sum(c["seconds"] for c in clips)
            scale = total_s / sampled_s / 3600
            hours = {k: sum(got[k]) * scale for k in KEYS}
            checks.expect(all(hours[k] > 0 and np.isfinite(hours[k]) for k in KEYS[:4]), f"paper {split.name}: {hours}")
            rows.append((split, gop, len(picked), sampled_s, total_s, len(videos), questions, sum(got["wanted"]),
                         {k: sum(got[k]) for k in hours}, hours))
            print(_paper_row(rows[-1]), flush=True)
    lines = _paper_table(rows, quick)
    print("\n" + "\n".join(lines))
    for split in SPLITS:
        print(f"- {split.name}: {split.shape_source}")
    return lines


def _paper_row(row) -> str:
    split, gop, n, sampled_s, total_s, videos, questions, wanted, cpu, hours = row
    return (f"{split.name}/gop{gop}: {n} videos, {sampled_s:.0f} of {total_s:.0f} video-s, {wanted} frames wanted; "
            f"CPU s one pass {cpu['one_pass']:.1f} (sys {cpu['one_pass_sys']:.1f}), limit {cpu['limit']:.1f}, "
            f"+convert {cpu['limit_convert']:.1f}, +write {cpu['limit_deliver']:.1f} "
            f"(sys {cpu['limit_deliver_sys']:.1f}); one pass / limit {hours['one_pass'] / hours['limit']:.2f}")


def _cells(hours: dict) -> str:
    return (f"{hours['one_pass']:.2f} ({hours['one_pass_sys'] / hours['one_pass']:.0%}) | {hours['limit']:.2f} | "
            f"{hours['limit_convert']:.2f} | {hours['limit_deliver']:.2f} "
            f"({hours['limit_deliver_sys'] / hours['limit_deliver']:.0%}) | "
            f"{hours['one_pass'] / hours['limit']:.2f} | {hours['one_pass'] / hours['limit_convert']:.2f} | "
            f"{hours['one_pass'] / hours['limit_deliver']:.2f} | "
            f"{_user(hours, 'one_pass') / _user(hours, 'limit'):.2f} | "
            f"{_user(hours, 'one_pass') / _user(hours, 'limit_convert'):.2f}")


def _user(hours: dict, key: str) -> float:
    """CPU outside the kernel: the kernel's share is mostly providing fresh memory for the frames handed
    over, and varies from run to run on a shared machine more than anything the sampler does."""
    return hours[key] - hours[key + "_sys"]


def _paper_table(rows, quick: bool) -> list[str]:
    lines = ["| split | keyframe every | frames / question | videos (questions) | sampled video-s / all | "
             "egotask one pass CPU-h (kernel share) | limit: decode only | + converting the wanted frames once | "
             "+ writing each question's frames (kernel share) | one pass / limit | one pass / (+ convert) | "
             "one pass / (+ write) | user CPU: one pass / limit | user CPU: one pass / (+ convert) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for split, gop, _n, sampled_s, total_s, videos, questions, _, _, hours in rows:
        lines.append(f"| {split.name} | {gop} | {split.frames} | {videos} ({questions}) | {sampled_s:.0f} / "
                     f"{total_s:.0f} | {_cells(hours)} |")
    # The whole benchmark, once with every EgoTextVQA video at each keyframe interval (EgoTempo at its one).
    for gop in sorted({g for s in SPLITS for g in s.gops}):
        chosen = {}
        for row in rows:
            split, g = row[0], row[1]
            if g == gop or (split.name not in chosen and len(split.gops) == 1):
                chosen[split.name] = row
        if len(chosen) < len(SPLITS):
            continue
        total = {k: sum(r[-1][k] for r in chosen.values()) for k in KEYS}
        questions = sum(r[6] for r in chosen.values())
        lines.append(f"| **all ({questions} questions)** | {gop} (EgoTextVQA) | paper | | | {_cells(total)} |")
    if quick:
        lines.append("\n(--quick: 320x180 clips of at most 12 s, one video a split: the arithmetic, not the figures)")
    return lines


def memory_section(workdir: Path, quick: bool, checks: Checks) -> list[str]:
    """Peak RSS of generate_until at frames=paper on 1080p clips, 5 questions a video, per frame_memory."""
    size, seconds, videos = ((320, 180), 10.0, 2) if quick else ((1920, 1080), 60.0, 3)
    print(f"\n## Peak RSS at frames=paper ({videos} videos of {size[0]}x{size[1]}, 5 indoor questions each, "
          f"60 frames a question, {'capped at the clip size' if quick else 'no pixel cap'})", flush=True)
    questions = []
    for k in range(videos):
        path = write_motion_clip(workdir / f"memory_{size[0]}x{size[1]}_{seconds:g}s_{k}.mp4", seconds, 6, size,
                                 2.0, seed=k)
        questions += [{"path": str(path), "end": round(seconds * at, 3)} for at in (0.3, 0.45, 0.6, 0.75, 0.9)]
    settings = ["8MB", "32MB"] if quick else ["2GB", "1GB", "512MB"]
    # --quick: a pixel cap at the clips' size, so that the bound's estimate is the frames' real size.
    model_args = {"max_pixels": size[0] * size[1]} if quick else {}
    lines = ["| frame_memory | one item's frames | items held ahead at most | RSS before | peak RSS | "
             "peak - before | bound: frame_memory + one item (batch 1) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for setting in settings:
        with tempfile.TemporaryDirectory(prefix="egotask-rss-") as cache:  # no answer from an earlier setting
            env = {**os.environ, "EGOTASK_CACHE_DIR": cache}
            got = run_in_child({"section": "memory", "questions": questions, "frame_memory": setting,
                                "setting": "indoor", "model_args": model_args}, env)
            if not checks.expect("error" not in got, f"memory {setting}: {got.get('error')}"):
                continue
            checks.expect(len(got["answers"]) == len(questions) and all(got["answers"]),
                          f"memory {setting}: {sum(map(bool, got['answers']))} answers of {len(questions)}")
            item, memory = got["item_bytes"], got["frame_memory"]
            held = got["most_held_items"] * item
            checks.expect(held <= max(memory, item), f"memory {setting}: {held} bytes held ahead > {memory}")
            grown = got["peak_rss"] - got["rss_before"]
            mb = 1e6
            lines.append(f"| {setting} | {item / mb:.0f} MB | {got['most_held_items']} ({held / mb:.0f} MB) | "
                         f"{got['rss_before'] / mb:.0f} MB | {got['peak_rss'] / mb:.0f} MB | {grown / mb:.0f} MB | "
                         f"{(max(memory, item) + item) / mb:.0f} MB |")
            print(lines[-1], flush=True)
    print("\n" + "\n".join(lines))
    return lines
