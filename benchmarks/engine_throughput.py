"""Engine throughput: does the model under test ever wait for frames, or for the network?

Two measurements, each through the adapter's real ``generate_until`` (frame sampling in the background
pool, JPEG encoding, the answer cache written as answers come):

- ``openai_vlm`` against ``egotask.testing.vendor`` (its own process, so its work does not
  take the client's GIL) with a fixed latency per request: items/s at ``--concurrency`` requests in
  flight, against the ideal concurrency / latency. Every item is an 8-frame request (``video/jpeg``,
  vLLM's form) sampled from small generated clips (``--size``, default 160x90; 6 s, 6 fps like the
  released EgoTextVQA videos, panning texture, a keyframe every 2 s): at 32 x 8 frames per 200 ms the
  client decodes and JPEG-encodes 1,280 frames a second, which two cores manage only on clips this
  small. Aim: ratio >= 0.85. The frames are decoded in the adapter's frame worker processes
  (``egotask.frame_workers``); the clock starts once they are up, as they are in a real run by the
  time lmms-eval has built its tasks (their start-up is printed apart). The CPU column adds the
  workers' CPU to the client's.
  A second row sends the same requests with the frames decoded beforehand: the scheduling and the HTTP
  client alone, so a shortfall in the first row can be put on the decoding.
- the HF backend (``qwen3vl`` on a tiny random-weight checkpoint, ``max_new_tokens`` fixed): the share
  of wall time the model waited for frames (``FramesModel.stats["frame_wait_s"]`` over the run's wall
  time), with the time one item's frames take to decode beside the time its generation takes, since
  the aim (<= 5%) holds only when decoding is the faster of the two.

--quick runs both small (48 requests at concurrency 8 and 50 ms; 6 HF items) and checks them: every
item answered by the server with its 8 frames, one request each, no failure; every HF item generated;
every item of both shown 8 frames, all from before its timestamp. The checks gate the exit status in
both modes; the ratios do not (on a tiny run they are noise).

    .venv/bin/python benchmarks/engine_throughput.py            # 640 requests, concurrency 32, 200 ms
    .venv/bin/python benchmarks/engine_throughput.py --quick    # seconds; what CI runs
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _checks import Checks  # noqa: E402
from _clips import bench_workdir, write_motion_clip  # noqa: E402
from _servers import fake_server  # noqa: E402

FRAMES = 8
TASK, SPLIT = "bench", "test"
REPLY = f"I was shown {FRAMES} images."  # the fake server's answer to an 8-frame request
CLIP_FPS = 6  # EgoTextVQA's released videos are 6 fps


def requests_for(model: Any, clips: list[Path], n: int, gen_kwargs: dict[str, Any]) -> list:
    """``n`` lmms-eval requests over the clips, each asked at a different time (its own interval)."""
    from lmms_eval.api.instance import Instance

    from egotask.frames import VisibleVideo

    docs = []
    for i in range(n):
        clip = clips[i % len(clips)]
        end = 2.0 + 3.5 * ((i * 7) % n) / n  # visible [0, 2..5.5) s of each 6 s clip
        docs.append({"task": TASK, "video_id": f"{clip.stem}", "question_id": str(i), "question": f"what is {i}?",
                     "visual": VisibleVideo(str(clip), 0.0, end, source=str(clip))})
    model.task_dict = {TASK: {SPLIT: docs}}

    def doc_to_visual(doc: dict[str, Any]) -> list:
        return [doc["visual"]]

    return [Instance("generate_until", (doc["question"], dict(gen_kwargs), doc_to_visual, i, TASK, SPLIT), i,
                     {"task": TASK, "doc_id": i, "repeats": 1}) for i, doc in enumerate(docs)]


def outcomes(model: Any) -> list:
    """What the adapter noted for each item (frames shown, seen interval), as the task would take it."""
    from egotask import answers

    return [(doc, answers.take(doc)) for doc in model.task_dict[TASK][SPLIT]]


def check_outcomes(checks: Checks, name: str, found: list) -> None:
    bad = [(doc["question_id"], o) for doc, o in found
           if o is None or o.error or (o.frames or {}).get("n_frames") != FRAMES or not o.seen
           or not o.seen[1] < doc["visual"].end]
    checks.expect(not bad, f"{name}: {len(bad)} of {len(found)} items not shown {FRAMES} frames from before their "
                           f"timestamp, first: {bad[0] if bad else ''}")


def children_cpu(leave_out: set[int]) -> float | None:
    """CPU seconds of this process's live child processes (the frame workers), from /proc (Linux)."""
    total, ticks = 0.0, os.sysconf("SC_CLK_TCK")
    try:
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended meanwhile
            if int(fields[1]) == os.getpid() and int(stat.parent.name) not in leave_out:
                total += (int(fields[11]) + int(fields[12])) / ticks
    except OSError:
        return None
    return total


def served_run(url: str, clips: list[Path], items: int, concurrency: int, latency: float,
               server_pid: int, frame_workers: int | None) -> tuple[list, dict]:
    import openai  # noqa: F401 - a one-off import is not throughput

    from egotask.model_adapters.openai_vlm import OpenAIVLM

    began = time.perf_counter()
    model = OpenAIVLM(model="bench", base_url=f"{url}/v1", concurrency=concurrency, max_frames=FRAMES,
                      frame_workers=frame_workers)
    if model._workers is not None:
        model._workers.wait_ready()
    print(f"openai_vlm: model and frame workers ready in {time.perf_counter() - began:.2f} s")
    requests = requests_for(model, clips, items, {"max_new_tokens": 16})
    workers_cpu = children_cpu({server_pid})
    start, cpu = time.perf_counter(), time.process_time()
    replies = model.generate_until(requests)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    after = children_cpu({server_pid})
    if workers_cpu is not None and after is not None:
        cpu += after - workers_cpu
    rate, ideal = items / seconds, concurrency / latency
    where = "frame workers" if model._workers is not None else "decode threads"
    row = [f"openai_vlm, fake server, {model.frame_workers or model.decode_workers} {where}", items, concurrency,
           f"{latency * 1000:.0f} ms", f"{seconds:.2f}", f"{rate:.1f}", f"{ideal:.1f}", f"{rate / ideal:.2f}",
           f"{100 * model.stats['frame_wait_s'] / seconds:.1f}%",
           f"{1000 * cpu / items:.1f}"]
    return row, {"replies": replies, "stats": dict(model.stats), "outcomes": outcomes(model)}


def requests_only_run(url: str, clips: list[Path], items: int, concurrency: int, latency: float) -> list:
    """The same requests with every item's frames decoded and encoded beforehand: what the scheduling
    and the HTTP client alone reach, so a shortfall of the row above can be put on the decoding."""
    from egotask.model_adapters.openai_vlm import OpenAIVLM

    model = OpenAIVLM(model="bench-predecoded", base_url=f"{url}/v1", concurrency=concurrency, max_frames=FRAMES)
    pending = [model.prepare(r) for r in requests_for(model, clips, items, {"max_new_tokens": 16})]
    prompts = [(item, model.sample(item)) for item in pending]
    start, cpu = time.perf_counter(), time.process_time()
    replies = [reply for _, reply in model.answer(iter(prompts))]
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    rate, ideal = items / seconds, concurrency / latency
    return ["openai_vlm, frames decoded beforehand", items, concurrency, f"{latency * 1000:.0f} ms",
            f"{seconds:.2f}", f"{rate:.1f}", f"{ideal:.1f}", f"{rate / ideal:.2f}", "-", f"{1000 * cpu / items:.1f}"
            ], replies


def hf_run(checkpoint: Path, clips: list[Path], items: int, new_tokens: int) -> tuple[list, dict]:
    from egotask.model_adapters.qwen3vl import Qwen3VL

    model = Qwen3VL(pretrained=str(checkpoint), max_frames=FRAMES, device="cpu")
    requests = requests_for(model, clips, items, {"max_new_tokens": new_tokens, "until": []})
    # What one item's frames cost alone, for the "decoding is faster than generation" condition.
    pending = [model.prepare(r) for r in requests[:4]]
    began = time.perf_counter()
    for item in pending:
        model.sample(item)
    decode_s = (time.perf_counter() - began) / len(pending)
    start = time.perf_counter()
    replies = model.generate_until(requests)
    seconds = time.perf_counter() - start
    wait = model.stats["frame_wait_s"]
    generate_s = (seconds - wait) / items
    row = ["qwen3vl (HF), tiny checkpoint", items, 1, f"{new_tokens} tokens", f"{seconds:.2f}",
           f"{items / seconds:.1f}", "-", "-", f"{100 * wait / seconds:.1f}%", "-"]
    return row, {"replies": replies, "stats": dict(model.stats), "outcomes": outcomes(model), "decode_s": decode_s,
                 "generate_s": generate_s, "wait_share": wait / seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small runs (defaults below in brackets)")
    parser.add_argument("--items", type=int, default=None, help="openai_vlm requests (640 [48])")
    parser.add_argument("--concurrency", type=int, default=None, help="requests in flight (32 [8])")
    parser.add_argument("--latency", type=float, default=None, help="seconds the fake server takes (0.2 [0.05])")
    parser.add_argument("--hf-items", type=int, default=None, help="items through the HF backend (40 [6])")
    parser.add_argument("--new-tokens", type=int, default=16, help="tokens each HF item generates (16)")
    parser.add_argument("--size", default="160x90", help="clip size, WxH (160x90)")
    parser.add_argument("--frame-workers", type=int, default=None,
                        help="openai_vlm's frame_workers (default: its own, one per core; 0: decode threads)")
    parser.add_argument("--workdir", type=Path, default=None, help="where generated clips are cached")
    args = parser.parse_args()
    for arg, full, quick in (("items", 640, 48), ("concurrency", 32, 8), ("latency", 0.2, 0.05), ("hf_items", 40, 6)):
        if getattr(args, arg) is None:
            setattr(args, arg, quick if args.quick else full)
    width, height = (int(v) for v in args.size.lower().split("x"))
    os.environ.setdefault("TQDM_DISABLE", "1")

    from egotask import settings
    from egotask.fixtures import build_tiny_qwen3vl

    with bench_workdir(args.workdir, args.quick) as workdir, tempfile.TemporaryDirectory() as tmp:
        settings.configure(cache_dir=Path(tmp) / "cache")  # a fresh answer cache: every item is generated
        clips = [write_motion_clip(workdir / f"clip6_{width}x{height}_6fps_gop2_{i}.mp4", 6.0, CLIP_FPS,
                                   (width, height), 2.0, seed=i) for i in range(4)]
        with fake_server(args.latency) as (url, server):
            served_row, served = served_run(url, clips, args.items, args.concurrency, args.latency, server.pid,
                                            args.frame_workers)
            alone_row, alone_replies = requests_only_run(url, clips, args.items, args.concurrency, args.latency)
        hf_row, hf = hf_run(build_tiny_qwen3vl(Path(tmp) / "tiny-qwen3vl"), clips, args.hf_items, args.new_tokens)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{FRAMES}-frame requests from 6 s {width}x{height} {CLIP_FPS} fps clips; {os.cpu_count()} CPU cores, "
          f"load average {load}")
    print(tabulate([served_row, alone_row, hf_row], headers=["engine", "items", "concurrency", "latency / generation",
                                                  "seconds", "items/s", "ideal items/s", "ratio",
                                                  "waiting for frames", "client + frame workers CPU ms/item"]))
    print(f"HF backend: one item's frames decode in {1000 * hf['decode_s']:.0f} ms, its generation takes "
          f"{1000 * hf['generate_s']:.0f} ms; waited for frames {100 * hf['wait_share']:.1f}% of the wall time")

    checks = Checks("engine_throughput --quick" if args.quick else "engine_throughput")
    wrong = [r for r in served["replies"] if r != REPLY]
    checks.expect(not wrong, f"openai_vlm: {len(wrong)} of {args.items} replies are not the fake server's answer to "
                             f"{FRAMES} frames, first: {wrong[0] if wrong else ''!r}")
    wrong = [r for r in alone_replies if r != REPLY]
    checks.expect(not wrong, f"openai_vlm, frames decoded beforehand: {len(wrong)} of {args.items} replies wrong")
    stats = served["stats"]
    checks.expect(stats["requests"] == args.items and stats["failed"] == 0 and stats["generated"] == args.items,
                  f"openai_vlm: {stats['requests']} requests, {stats['generated']} answers, {stats['failed']} failed; "
                  f"expected {args.items}, {args.items}, 0")
    stats = hf["stats"]
    checks.expect(stats["generated"] == args.hf_items and stats["failed"] == 0,
                  f"HF backend: {stats['generated']} generated, {stats['failed']} failed, expected {args.hf_items}, 0")
    check_outcomes(checks, "openai_vlm", served["outcomes"])
    check_outcomes(checks, "HF backend", hf["outcomes"])
    if args.quick:
        print("(--quick: ratios on a tiny run are noise; they are not checked)")
    return checks.exit_code(announce_pass=args.quick)


if __name__ == "__main__":
    sys.exit(main())
