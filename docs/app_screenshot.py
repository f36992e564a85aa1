"""Regenerate docs/app.png: `egotask app` on example outputs, screenshotted by headless Chromium.

    .venv/bin/python docs/app_screenshot.py            # needs `chromium` (Debian: apt-get install chromium)

The example outputs are built here, offline: the demo's generated clips and annotations, two made-up
runs of answers ("example-base" as an lmms-eval output folder, "example-finetuned" as a record
JSONL), judged by the real heuristic judge and written through the tasks' own record builder. The
numbers in the picture say nothing about any real model.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from PIL import Image

from egotask.data.sources import load_docs
from egotask.fixtures import build_sample_data
from egotask.judges import JudgeItem, get_judge
from egotask.records import SampleRecord
from egotask.scoring import summarize
from egotask.tasklib import build_record
from egotask.testing.app_server import app_server

DOCS = Path(__file__).resolve().parent
STAMP = "20260101_120000"
TASKS = ("egotextvqa_indoor", "egotextvqa_outdoor", "egotempo_openqa")
# Made-up answers, by (video id prefix, question id); anything not listed is answered "I don't know".
BASE = {("6f1c", "1"): "KORNFLAKE", ("6f1c", "2"): "CORN", ("a3e5", "1"): "cumin", ("c8d2", "1"): "ODYSSEY",
        ("e1f3", "1"): "game over", ("101", "1"): "ELM ST", ("102", "1"): "EXIT 6", ("103", "1"): "a bakery",
        ("0d27", "0"): "BOWL", ("2747", "0"): "THREE"}
FINETUNED = {**BASE, ("6f1c", "2"): "KORNFLAKE", ("a3e5", "1"): "PAPRIKA", ("102", "1"): "EXIT 9",
             ("104", "1"): "PARKING", ("0d27", "0"): "SPOON", ("101", "1"): "MAIN ST"}


def example_docs() -> dict[str, list[dict]]:
    docs = {task: load_docs(task) for task in TASKS}
    # A second, earlier question on the first indoor video, so its timeline has two entries.
    first = dict(docs["egotextvqa_indoor"][0])
    first.update(question_id="2", question="what word is printed on the box?", timestamp=1.5, visible_end=1.5)
    docs["egotextvqa_indoor"].insert(0, first)
    return docs


def answer(answers: dict, doc: dict) -> str:
    qid = doc["question_id"].rsplit("_", 1)[-1]
    return answers.get((doc["video_id"][:4], qid), "I don't know")


def judged_records(docs: list[dict], answers: dict) -> list[SampleRecord]:
    judge = get_judge("heuristic")
    predictions = [answer(answers, d) for d in docs]
    verdicts = judge.judge_many([JudgeItem(d["question"], d["answer"], p, d["question_type"])
                                 for d, p in zip(docs, predictions, strict=True)])
    return [build_record(d, p, v) for d, p, v in zip(docs, predictions, verdicts, strict=True)]


def write_outputs(root: Path, docs: dict[str, list[dict]]) -> list[Path]:
    run_dir = root / "output" / "example-base"
    run_dir.mkdir(parents=True)
    results = {"model_name": "example-base", "config": {"model": "qwen3vl", "model_args": "max_frames=8"},
               "results": {}}
    for task, task_docs in docs.items():
        records = judged_records(task_docs, BASE)
        with open(run_dir / f"{STAMP}_samples_{task}.jsonl", "w") as fh:
            for i, r in enumerate(records):
                fh.write(json.dumps({"doc_id": i, "target": r.answer, "details": r.to_dict()}) + "\n")
        results["results"][task] = {"details,none": summarize(records)}
    (run_dir / f"{STAMP}_results.json").write_text(json.dumps(results))
    finetuned = root / "example-finetuned.jsonl"
    with open(finetuned, "w") as fh:
        for task_docs in docs.values():
            for r in judged_records(task_docs, FINETUNED):
                fh.write(json.dumps({**r.to_dict(), "model": "example-finetuned"}) + "\n")
    return [root / "output", finetuned]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DOCS / "app.png", help="PNG to write (default: docs/app.png)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium", help="browser binary")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="egotask-app-shot-"))
    env = {**os.environ, **build_sample_data(root / "data")}
    os.environ.update(env)  # load_docs reads the annotations the sample data set points to
    paths = write_outputs(root, example_docs())
    with app_server(paths, env, output=None) as (url, _):
        video = load_docs("egotextvqa_indoor")[0]["video_id"] + " [indoor]"
        query = urllib.parse.urlencode({"view": "Video", "video": video})
        shot = root / "shot.png"
        # Three visits: the first ones warm the server (the sampler's imports, the frame cache), and
        # headless Chromium's virtual time does not wait for a slow first script run.
        for _ in range(3):
            subprocess.run([args.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                            "--no-first-run", "--disable-background-networking", "--disable-component-update",
                            "--disable-sync", f"--user-data-dir={tempfile.mkdtemp(dir=root)}",
                            "--window-size=1400,1000", "--virtual-time-budget=15000", f"--screenshot={shot}",
                            f"{url}/?{query}"], check=True, timeout=180,
                           stderr=subprocess.DEVNULL)
            time.sleep(10)  # let the server finish the visit's script run (Chromium leaves at once)
    # A 256-colour palette keeps the PNG small (UI colours survive; frames dither a little).
    image = Image.open(shot).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    args.out.write_bytes(buffer.getvalue())
    print(f"wrote {args.out} ({len(buffer.getvalue()) // 1024} KB) from {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
