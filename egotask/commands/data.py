"""`egotask data ...`: build the QA dataset, make splits, resample videos, cut EgoTempo clips.

The work lives in ``egotask.data`` (build_qa, splits, resample, trim, transcode); this module only
parses arguments and prints reports.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from egotask.atomic import write_text
from egotask.settings import configure, get_settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="prepare data: QA dataset, splits, resampled videos, EgoTempo clips",
                       description="Data tools. Each one works offline on local files; see `egotask data "
                                   "COMMAND --help`.")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    data_sub = p.add_subparsers(dest="data_command", metavar="COMMAND")
    _add_build_qa(data_sub)
    _add_splits(data_sub)
    _add_resample(data_sub)
    _add_trim(data_sub)


def _workers_default() -> int:
    return max(1, min(4, os.cpu_count() or 1))


# --------------------------------------------------------------------------- build-qa

def _add_build_qa(sub) -> None:
    p = sub.add_parser(
        "build-qa", help="join EgoTextVQA annotations with a video folder into a datasets dataset",
        description="Join the EgoTextVQA annotation files (egotextvqa_indoor_annotation.jsonl, "
                    "egotextvqa_outdoor_annotation.jsonl) with a video folder laid out as on the Hub "
                    "(EgoTextVQA-Indoor/<id>.mp4, EgoTextVQA-Outdoor/<id>.mp4). Writes a Hugging Face "
                    "dataset (one 'test' split; columns video_id, subset, question_id, question_type, "
                    "timestamp, question, answer, video_path) with save_to_disk, and prints a validation "
                    "report: missing videos, unreadable or cut-off videos, duplicate (video_id, question_id) "
                    "keys, timestamps past the "
                    "video's end, unknown question types. Point EGOTEXTVQA_DATASET at OUT to evaluate on it.")
    p.add_argument("--annotations", type=Path, default=None,
                   help="folder with the two annotation JSONL files (default: $EGOTEXTVQA_ANNOTATIONS)")
    p.add_argument("--videos", type=Path, default=None,
                   help="folder with EgoTextVQA-Indoor/ and EgoTextVQA-Outdoor/ (default: $EGOTEXTVQA_VIDEO_DIR)")
    p.add_argument("--out", type=Path, required=True, help="folder to save the dataset to (save_to_disk)")
    p.add_argument("--relative-paths", action="store_true",
                   help="store video_path relative to --videos (the Hub layout), e.g. for --push-to-hub; "
                        "default: absolute paths")
    p.add_argument("--push-to-hub", metavar="REPO_ID", default=None,
                   help="also push the dataset to this Hugging Face dataset repo (after saving to disk)")
    p.add_argument("--private", action="store_true", help="with --push-to-hub: make the repo private")
    p.add_argument("--strict", action="store_true", help="exit 1 when the report finds any problem")
    p.add_argument("--workers", type=int, default=8, help="threads reading video headers (default: 8)")
    p.set_defaults(func=_run_build_qa)


def _run_build_qa(args: argparse.Namespace) -> int:
    from egotask.data.build_qa import REPORT_NAME, build_rows, save, to_dataset

    args.annotations = args.annotations or get_settings().egotextvqa_annotations
    args.videos = args.videos or get_settings().egotextvqa_video_dir
    if args.annotations is None or args.videos is None:
        print("egotask data build-qa: give --annotations and --videos (or set EGOTEXTVQA_ANNOTATIONS and "
              "EGOTEXTVQA_VIDEO_DIR)", file=sys.stderr)
        return 2
    rows, report = build_rows(args.annotations, args.videos, relative_paths=args.relative_paths,
                              workers=args.workers)
    dataset = to_dataset(rows)
    save(dataset, report, args.out)
    print(report.render())
    print(f"egotask data build-qa: saved {len(rows)} rows to {args.out} (report: {args.out / REPORT_NAME}); "
          f"evaluate on it with EGOTEXTVQA_DATASET={args.out}")
    if args.push_to_hub:
        try:
            dataset.push_to_hub(args.push_to_hub, private=args.private)
        except Exception as exc:  # no network or token: the copy on disk is already saved
            print(f"egotask data build-qa: push to {args.push_to_hub} failed ({exc}); the dataset is saved "
                  f"in {args.out}", file=sys.stderr)
            return 1
        print(f"egotask data build-qa: pushed to https://huggingface.co/datasets/{args.push_to_hub}")
    return 1 if args.strict and report.problems else 0


# --------------------------------------------------------------------------- splits

def _add_splits(sub) -> None:
    from egotask.data.splits import DEFAULT_RATIOS, DEFAULT_SEED, MANIFEST_VAR

    p = sub.add_parser(
        "splits", help="deterministic video-level train/val/test splits, written as a manifest",
        description="Split each benchmark's videos into train/val/test (all questions of a video in one "
                    "split). The split depends only on the seed and the sorted video ids, so every "
                    "process, machine and PYTHONHASHSEED gets the same manifest. The manifest carries a "
                    f"sha256 of its splits. Point {MANIFEST_VAR} at it to make the *_test tasks use it.")
    p.add_argument("--out", type=Path, required=True, help="manifest file to write (JSON)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"default: {DEFAULT_SEED}")
    p.add_argument("--ratios", default=",".join(str(DEFAULT_RATIOS[k]) for k in ("train", "val", "test")),
                   help="train,val,test fractions (default: 0.8,0.1,0.1)")
    p.add_argument("--benchmarks", default="egotextvqa_indoor,egotextvqa_outdoor,egotempo_openqa",
                   help="comma-separated benchmarks (default: all three)")
    p.add_argument("--egotextvqa-annotations", type=Path, default=None,
                   help="EgoTextVQA annotation folder (default: $EGOTEXTVQA_ANNOTATIONS, $EGOTEXTVQA_DATASET "
                        "or the Hub)")
    p.add_argument("--egotempo-annotations", type=Path, default=None,
                   help="egotempo_openQA.json (default: $EGOTEMPO_ANNOTATIONS or the Hub)")
    p.set_defaults(func=_run_splits)


def _run_splits(args: argparse.Namespace) -> int:
    from egotask.data.sources import load_docs
    from egotask.data.splits import build_manifest, write_manifest

    try:
        train, val, test = (float(x) for x in args.ratios.split(","))
    except ValueError:
        print(f"egotask data splits: --ratios must be three numbers train,val,test; got {args.ratios!r}",
              file=sys.stderr)
        return 2
    if args.egotextvqa_annotations is not None:  # a folder named here wins over a build-qa dataset
        configure(egotextvqa_annotations=args.egotextvqa_annotations, egotextvqa_dataset=None)
    if args.egotempo_annotations is not None:
        configure(egotempo_annotations=args.egotempo_annotations)
    benchmarks = [b.strip() for b in args.benchmarks.split(",") if b.strip()]
    ids = {b: [d["video_id"] for d in load_docs(b)] for b in benchmarks}
    manifest = build_manifest(ids, args.seed, {"train": train, "val": val, "test": test})
    write_manifest(manifest, args.out)
    for bench, parts in manifest["splits"].items():
        print(f"{bench}: " + ", ".join(f"{name} {len(parts[name])}" for name in ("train", "val", "test"))
              + " videos")
    print(f"egotask data splits: wrote {args.out} (sha256 of splits {manifest['hash'][:12]}...)")
    return 0


# --------------------------------------------------------------------------- resample

def _add_resample(sub) -> None:
    p = sub.add_parser(
        "resample", help="lower the fps and/or resolution of every video under a folder",
        description="Re-encode every video under SRC into DST (same relative paths, .mp4, H.264), at most "
                    "--fps frames per second and --scale times the size, in one decode/encode pass per file "
                    "(PyAV). Runs files in parallel; skips outputs that already exist and measure right; "
                    "writes each output under a temporary name and renames it only after checking its "
                    "fps, size and duration, so an interrupted run leaves no half files. Audio is dropped.")
    p.add_argument("src", type=Path, help="folder of source videos (searched recursively)")
    p.add_argument("dst", type=Path, help="output folder (mirrors SRC's tree)")
    _add_encode_args(p, default_fps=6.0)
    p.set_defaults(func=_run_resample)


def _add_encode_args(p: argparse.ArgumentParser, default_fps: float | None) -> None:
    shown = "keep the source's" if default_fps is None else f"{default_fps:g}"
    p.add_argument("--fps", type=float, default=default_fps,
                   help=f"maximum output frame rate; slower sources keep theirs (default: {shown}; 0: keep)")
    p.add_argument("--scale", type=float, default=None, help="size factor in (0, 1], e.g. 0.5 (default: keep)")
    p.add_argument("--crf", type=int, default=23, help="x264 quality, lower is better (default: 23)")
    p.add_argument("--preset", default="veryfast", help="x264 speed preset (default: veryfast)")
    p.add_argument("--workers", type=int, default=_workers_default(),
                   help=f"parallel worker processes (default: {_workers_default()})")
    p.add_argument("--force", action="store_true", help="re-encode even when a finished output exists")
    p.add_argument("--report", type=Path, default=None, help="also write the per-file results as JSON here")


def _spec(args: argparse.Namespace):
    from egotask.data.transcode import TranscodeSpec

    return TranscodeSpec(fps=args.fps or None, scale=args.scale, crf=args.crf, preset=args.preset)


def _finish(results, args: argparse.Namespace, what: str) -> int:
    from egotask.data.transcode import summarize_results

    summary = summarize_results(results)
    print(f"egotask data {what}: {summary['done']} written, {summary['skipped']} already done, "
          f"{summary['failed']} failed ({summary['seconds_of_video']:.0f} s of video written)")
    for failure in summary["failed_files"]:
        print(f"  FAILED {failure['error']}", file=sys.stderr)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        write_text(args.report, json.dumps({"summary": summary, "files": [vars(r) for r in results]}, indent=1))
    return 1 if summary["failed"] else 0


def _run_resample(args: argparse.Namespace) -> int:
    from egotask.data.resample import resample_tree

    try:
        spec = _spec(args)
        results = resample_tree(args.src, args.dst, spec, workers=args.workers, force=args.force)
    except (ValueError, FileNotFoundError) as exc:
        print(f"egotask data resample: {exc}", file=sys.stderr)
        return 2
    return _finish(results, args, "resample")


# --------------------------------------------------------------------------- trim-egotempo

def _add_trim(sub) -> None:
    p = sub.add_parser(
        "trim-egotempo", help="cut every EgoTempo clip (<clip_id>.mp4) out of the Ego4D videos",
        description="For every clip in egotempo_openQA.json (clip_id = {ego4d_video_uid}_{start}_{end}, "
                    "seconds), cut [start, end) out of <uid>.mp4 found anywhere under VIDEOS and write "
                    "OUT/<clip_id>.mp4 (H.264, frame-accurate). Clips whose source is missing or corrupt "
                    "are reported and the rest go on; the exit code is 1 when any failed. Point "
                    "EGOTEMPO_VIDEO_DIR at OUT to evaluate.")
    p.add_argument("--videos", type=Path, required=True, help="folder of Ego4D videos (<uid>.mp4, any depth)")
    p.add_argument("--annotations", type=Path, default=None,
                   help="egotempo_openQA.json (default: $EGOTEMPO_ANNOTATIONS)")
    p.add_argument("--out", type=Path, required=True, help="folder for the clips")
    _add_encode_args(p, default_fps=None)
    p.set_defaults(func=_run_trim)


def _run_trim(args: argparse.Namespace) -> int:
    from egotask.data.sources import DataError
    from egotask.data.trim import trim_all

    args.annotations = args.annotations or get_settings().egotempo_annotations
    if args.annotations is None:
        print("egotask data trim-egotempo: give --annotations (or set EGOTEMPO_ANNOTATIONS)", file=sys.stderr)
        return 2
    try:
        results = trim_all(args.annotations, args.videos, args.out, spec=_spec(args), workers=args.workers,
                           force=args.force)
    except (DataError, ValueError, FileNotFoundError) as exc:
        print(f"egotask data trim-egotempo: {exc}", file=sys.stderr)
        return 2
    return _finish(results, args, "trim-egotempo")
