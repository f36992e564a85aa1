"""Video-level train/val/test splits that every process, machine and Python hash seed agrees on.

A video's split depends only on the seed and its id: ids are sorted, ordered by
``sha256(f"{seed}:{group}")`` (no ``set()`` iteration order, no ``random`` module), and cut by the
ratios. All questions about one video land in the same split, so a finetuned model never saw the
videos it is tested on. The group is the video id itself, except for EgoTempo, whose clips are cut
from Ego4D videos (367 clips from 222 videos, some overlapping): its clips are split by source video,
so no part of a test clip's video is in train.

The manifest (JSON; finetuning code reads it too)::

    {"version": 1, "seed": 42, "ratios": {"train": 0.8, "val": 0.1, "test": 0.1},
     "hash": "<sha256 of the canonical splits JSON>",
     "splits": {"egotextvqa_indoor": {"train": [...], "val": [...], "test": [...]}, ...}}

The canonical splits JSON is ``json.dumps(manifest["splits"], sort_keys=True, separators=(",", ":"))``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from egotask.atomic import write_text
from egotask.data.sources import DataError
from egotask.settings import get_settings

MANIFEST_VERSION = 1
SPLIT_NAMES = ("train", "val", "test")
DEFAULT_SEED = 42
DEFAULT_RATIOS = {"train": 0.8, "val": 0.1, "test": 0.1}
MANIFEST_VAR = "EGOTASK_SPLIT_MANIFEST"
# Made from the real annotations with `egotask data splits` (see docs/data-tools.md).
DEFAULT_MANIFEST = Path(__file__).resolve().parent / "splits_default.json"


def check_ratios(ratios: dict[str, float]) -> dict[str, float]:
    if set(ratios) != set(SPLIT_NAMES):
        raise ValueError(f"ratios must name exactly {', '.join(SPLIT_NAMES)}; got {', '.join(ratios)}")
    if any(r < 0 for r in ratios.values()) or abs(sum(ratios.values()) - 1.0) > 1e-9:
        raise ValueError(f"ratios must be >= 0 and sum to 1; got {ratios}")
    return {name: float(ratios[name]) for name in SPLIT_NAMES}


def split_group(benchmark: str, video_id: str) -> str:
    """What must not straddle splits: the EgoTempo clip's Ego4D video, else the video itself."""
    if benchmark.startswith("egotempo"):
        from egotask.data.trim import parse_clip_id

        return parse_clip_id(video_id).video_uid
    return video_id


def assign(video_ids: Iterable[str], seed: int = DEFAULT_SEED, ratios: dict[str, float] = DEFAULT_RATIOS,
           group: Callable[[str], str] = str) -> dict[str, list[str]]:
    """Split distinct video ids by group: test and val take ``round(n_groups * ratio)`` groups each,
    train the rest."""
    ratios = check_ratios(ratios)
    ids = sorted({str(v) for v in video_ids})
    members: dict[str, list[str]] = {}
    for vid in ids:
        members.setdefault(group(vid), []).append(vid)
    order = sorted(members, key=lambda g: (hashlib.sha256(f"{seed}:{g}".encode()).hexdigest(), g))
    n_test = int(len(order) * ratios["test"] + 0.5)
    n_val = int(len(order) * ratios["val"] + 0.5)
    cuts = {"test": order[:n_test], "val": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}
    return {name: sorted(vid for g in cuts[name] for vid in members[g]) for name in SPLIT_NAMES}


def canonical_hash(splits: dict[str, Any]) -> str:
    text = json.dumps(splits, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_manifest(ids_by_benchmark: dict[str, Iterable[str]], seed: int = DEFAULT_SEED,
                   ratios: dict[str, float] = DEFAULT_RATIOS) -> dict[str, Any]:
    ratios = check_ratios(ratios)
    splits = {name: assign(ids, seed, ratios, lambda v, b=name: split_group(b, v))
              for name, ids in sorted(ids_by_benchmark.items())}
    return {"version": MANIFEST_VERSION, "seed": seed, "ratios": ratios, "hash": canonical_hash(splits),
            "splits": splits}


def manifest_text(manifest: dict[str, Any]) -> str:
    """The manifest as written to disk: stable key order, so equal manifests are equal bytes."""
    return json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=True) + "\n"


def write_manifest(manifest: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, manifest_text(manifest))
    return path


def load_manifest(path: str | Path) -> dict[str, Any]:
    """Read and check a manifest: version, shape, hash, and no video in two splits."""
    path = Path(path)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"split manifest not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(manifest, dict) or manifest.get("version") != MANIFEST_VERSION:
        raise DataError(f"{path}: not a version-{MANIFEST_VERSION} split manifest")
    splits = manifest.get("splits")
    if not isinstance(splits, dict):
        raise DataError(f"{path}: field 'splits' must be an object of benchmarks")
    for bench, parts in splits.items():
        if not isinstance(parts, dict) or set(parts) != set(SPLIT_NAMES):
            raise DataError(f"{path}: splits.{bench} must have exactly {', '.join(SPLIT_NAMES)}")
        seen: dict[str, str] = {}
        for name in SPLIT_NAMES:
            for vid in parts[name]:
                if vid in seen:
                    raise DataError(f"{path}: video {vid!r} of {bench} is in both {seen[vid]} and {name}")
                seen[vid] = name
    if manifest.get("hash") != canonical_hash(splits):
        raise DataError(f"{path}: field 'hash' does not match the splits (edited by hand or damaged); "
                        "make a new manifest with `egotask data splits`")
    return manifest


# video id -> split, per (manifest hash, benchmark): the hash names the content, so this is safe to share.
_LOOKUPS: dict[tuple[str, str], dict[str, str]] = {}


def _lookup(manifest: dict[str, Any], benchmark: str, where: str) -> dict[str, str]:
    parts = manifest["splits"].get(benchmark)
    if parts is None:
        raise DataError(f"{where} has no benchmark {benchmark!r} (it has: {', '.join(manifest['splits'])})")
    key = (manifest["hash"], benchmark)
    if key not in _LOOKUPS:
        _LOOKUPS[key] = {vid: name for name in SPLIT_NAMES for vid in parts[name]}
    return _LOOKUPS[key]


def videos_split(manifest: dict[str, Any], benchmark: str, video_ids: Iterable[str],
                 where: str = "the split manifest") -> list[str]:
    """The split (``"train"``, ``"val"`` or ``"test"``) of each video: the one place that decides split
    membership. Videos the manifest lacks are one error naming them (the first five) and ``where``."""
    lookup = _lookup(manifest, benchmark, where)
    ids = [str(v) for v in video_ids]
    unknown = sorted({v for v in ids if v not in lookup})
    if unknown:
        shown = ", ".join(repr(v) for v in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5
                                                           else "")
        raise DataError(f"{len(unknown)} video(s) of {benchmark} are in no split of {where}: {shown}. "
                        "Make a manifest for these annotations with `egotask data splits`.")
    return [lookup[v] for v in ids]


def video_split(manifest: dict[str, Any], benchmark: str, video_id: str, where: str = "the split manifest") -> str:
    """The split of one video (see :func:`videos_split`)."""
    return videos_split(manifest, benchmark, [video_id], where)[0]


def active_manifest_path() -> tuple[Path, str]:
    """The manifest the tasks use, and where that choice came from (for error messages)."""
    chosen = get_settings().split_manifest
    if chosen is not None:
        return chosen, f"from {MANIFEST_VAR}"
    return DEFAULT_MANIFEST, f"egotask's default; set {MANIFEST_VAR} to use another"


def filter_docs(docs: list[dict[str, Any]], benchmark: str, split: str) -> list[dict[str, Any]]:
    """The docs whose video is in ``split`` of the active manifest; every video must be in it."""
    if split not in SPLIT_NAMES:
        raise ValueError(f"split must be one of {', '.join(SPLIT_NAMES)}, got {split!r}")
    path, origin = active_manifest_path()
    where = f"split manifest {path} ({origin})"
    splits = videos_split(load_manifest(path), benchmark, [d["video_id"] for d in docs], where)
    return [d for d, s in zip(docs, splits, strict=True) if s == split]
