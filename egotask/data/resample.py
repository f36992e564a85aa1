"""``egotask data resample``: lower the frame rate and/or size of every video under a folder.

The output tree mirrors the input tree (``SRC/a/b.mp4`` -> ``DST/a/b.mp4``, always mp4/H.264). Each
file is one decode/encode pass (:func:`egotask.data.transcode.transcode`), files run in parallel
worker processes, and finished outputs are skipped on the next run.
"""

from __future__ import annotations

from pathlib import Path

from egotask.data.transcode import JobResult, TranscodeSpec, clean_stale_tmp, transcode_all

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm", ".avi", ".ts", ".m4v")


def plan_tree(src_root: Path, dst_root: Path) -> list[tuple[Path, Path]]:
    """(source, destination) for every video under ``src_root``, in sorted order."""
    src_root, dst_root = Path(src_root), Path(dst_root)
    if not src_root.is_dir():
        raise FileNotFoundError(f"source folder not found: {src_root}")
    if dst_root.resolve() == src_root.resolve() or src_root.resolve() in dst_root.resolve().parents:
        raise ValueError(f"the output folder {dst_root} must not be the source folder or inside it")
    pairs = []
    for src in sorted(src_root.rglob("*")):
        if src.is_file() and src.suffix.lower() in VIDEO_SUFFIXES and not src.name.startswith("."):
            pairs.append((src, (dst_root / src.relative_to(src_root)).with_suffix(".mp4")))
    return pairs


def resample_tree(src_root: Path, dst_root: Path, spec: TranscodeSpec, *, workers: int = 1,
                  force: bool = False) -> list[JobResult]:
    pairs = plan_tree(src_root, dst_root)
    clean_stale_tmp(Path(dst_root))
    return transcode_all([(src, dst, spec) for src, dst in pairs], workers=workers, force=force, desc="resample")
