"""Reading video-level train/val/test split manifests.

A manifest is a small JSON file::

    {"version": 1, "seed": 42, "ratios": {"train": 0.8, "val": 0.1, "test": 0.1}, "hash": "<sha256>",
     "splits": {"egotextvqa_indoor": {"train": [video ids], "val": [...], "test": [...]}, ...}}

This is the minimal reader finetuning needs (``load_manifest``, ``video_split``); the data tools
(`egotask data splits`) write manifests and may extend this module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from egotask.data.sources import DataError

SPLIT_NAMES = ("train", "val", "test")


def load_manifest(path: str | Path) -> dict[str, Any]:
    """Read and check a split manifest; the result also carries ``"path"`` (where it was read from)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"split manifest not found: {path}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(manifest, dict) or manifest.get("version") != 1:
        raise DataError(f"{path}: expected a split manifest object with \"version\": 1")
    splits = manifest.get("splits")
    if not isinstance(splits, dict) or not splits:
        raise DataError(f"{path}: field 'splits' must map benchmark names to {{train, val, test}} lists")
    seen: dict[tuple[str, str], str] = {}
    for benchmark, parts in splits.items():
        if not isinstance(parts, dict):
            raise DataError(f"{path}: splits.{benchmark} must be an object with train/val/test lists")
        for name, ids in parts.items():
            if name not in SPLIT_NAMES:
                raise DataError(f"{path}: splits.{benchmark}.{name}: unknown split (known: {', '.join(SPLIT_NAMES)})")
            if not isinstance(ids, list):
                raise DataError(f"{path}: splits.{benchmark}.{name} must be a list of video ids")
            for vid in ids:
                key = (benchmark, str(vid))
                if key in seen and seen[key] != name:
                    raise DataError(f"{path}: video {vid!r} of {benchmark} is in both {seen[key]} and {name}")
                seen[key] = name
    manifest["path"] = str(path)
    # A lookup table built once: video_split is called per question.
    manifest["_index"] = seen
    return manifest


def video_split(manifest: dict[str, Any], benchmark: str, video_id: str) -> str:
    """``"train"``, ``"val"`` or ``"test"`` for a video of a benchmark; an error if the manifest lacks it."""
    index = manifest.get("_index")
    if index is None:  # a manifest dict built by hand rather than by load_manifest
        index = {(b, str(v)): name for b, parts in manifest["splits"].items() for name, ids in parts.items()
                 for v in ids}
        manifest["_index"] = index
    where = manifest.get("path", "the split manifest")
    if benchmark not in manifest["splits"]:
        raise DataError(f"{where}: no splits for {benchmark} (it has: {', '.join(manifest['splits'])})")
    try:
        return index[(benchmark, str(video_id))]
    except KeyError:
        raise DataError(f"{where}: video {video_id!r} of {benchmark} is in no split; "
                        "was the manifest made from other annotations?") from None
