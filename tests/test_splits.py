"""Splits: the same manifest everywhere, checked on load, and honoured by the *_test tasks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from egotask.data.sources import DataError
from egotask.data.splits import (
    DEFAULT_MANIFEST,
    assign,
    build_manifest,
    canonical_hash,
    load_manifest,
    manifest_text,
    video_split,
    write_manifest,
)


def _splits_cli(out, env_extra, *args):
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-m", "egotask.cli", "data", "splits", "--out", str(out), *args],
                          env=env, capture_output=True, text=True, timeout=300)


def test_manifest_is_identical_under_two_hash_seeds(shared_data, tmp_path):
    args = ["--egotextvqa-annotations", str(shared_data / "egotextvqa"),
            "--egotempo-annotations", str(shared_data / "egotempo" / "egotempo_openQA.json")]
    runs = [_splits_cli(tmp_path / f"m{seed}.json", {"PYTHONHASHSEED": seed}, *args) for seed in ("1", "4242")]
    for run in runs:
        assert run.returncode == 0, run.stderr
    assert (tmp_path / "m1.json").read_bytes() == (tmp_path / "m4242.json").read_bytes()
    manifest = load_manifest(tmp_path / "m1.json")
    sizes = {b: {k: len(v) for k, v in parts.items()} for b, parts in manifest["splits"].items()}
    assert sizes["egotextvqa_indoor"] == {"train": 651, "val": 81, "test": 81}
    assert sizes["egotextvqa_outdoor"] == {"train": 556, "val": 69, "test": 69}
    assert sum(sizes["egotempo_openqa"].values()) == 367
    # The packaged default is exactly this manifest (docs/data-tools.md says how it was made).
    assert DEFAULT_MANIFEST.read_bytes() == (tmp_path / "m1.json").read_bytes()


def test_manifest_has_the_agreed_format_and_hash():
    manifest = build_manifest({"egotextvqa_outdoor": [str(i) for i in range(50)]}, seed=42)
    assert set(manifest) == {"version", "seed", "ratios", "hash", "splits"}
    assert manifest["version"] == 1 and manifest["seed"] == 42
    assert manifest["ratios"] == {"train": 0.8, "val": 0.1, "test": 0.1}
    text = json.dumps(manifest["splits"], sort_keys=True, separators=(",", ":"))
    import hashlib

    assert manifest["hash"] == hashlib.sha256(text.encode()).hexdigest() == canonical_hash(manifest["splits"])
    parts = manifest["splits"]["egotextvqa_outdoor"]
    assert [len(parts[k]) for k in ("train", "val", "test")] == [40, 5, 5]
    assert video_split(manifest, "egotextvqa_outdoor", parts["test"][0]) == "test"
    with pytest.raises(DataError, match="in no split"):
        video_split(manifest, "egotextvqa_outdoor", "999")


def test_split_depends_on_ids_not_their_order():
    ids = [str(i) for i in range(100)]
    assert assign(ids, 42) == assign(list(reversed(ids)) + ids[:10], 42)
    assert assign(ids, 42) != assign(ids, 43)


def test_egotempo_clips_of_one_ego4d_video_share_a_split():
    uid_a, uid_b = "0d270946-95c5-4e71-ae49-b9e802548147", "27470817-f803-45b4-b9d4-e754cb3196bc"
    clips = [f"{uid_a}_0.0_10.0", f"{uid_a}_5.0_20.0", f"{uid_b}_1.5_3.0"] + [f"{i:08d}-x_0.0_1.0" for i in range(30)]
    manifest = build_manifest({"egotempo_openqa": clips})
    assert (video_split(manifest, "egotempo_openqa", clips[0])
            == video_split(manifest, "egotempo_openqa", clips[1]))


def test_edited_manifest_is_rejected_naming_the_file(tmp_path):
    manifest = build_manifest({"egotextvqa_outdoor": [str(i) for i in range(20)]})
    path = write_manifest(manifest, tmp_path / "m.json")
    data = json.loads(path.read_text())
    moved = data["splits"]["egotextvqa_outdoor"]["train"].pop()
    data["splits"]["egotextvqa_outdoor"]["test"].append(moved)
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"m.json: field 'hash' does not match"):
        load_manifest(path)
    assert manifest_text(manifest) == manifest_text(json.loads(manifest_text(manifest)))


def test_manifest_with_a_video_in_two_splits_is_rejected(tmp_path):
    splits = {"egotempo_openqa": {"train": ["a"], "val": [], "test": ["a"]}}
    path = tmp_path / "two.json"
    path.write_text(json.dumps({"version": 1, "seed": 42, "ratios": {"train": 0.8, "val": 0.1, "test": 0.1},
                                "hash": canonical_hash(splits), "splits": splits}))
    with pytest.raises(DataError, match="two.json: video 'a' of egotempo_openqa is in both train and test"):
        load_manifest(path)


def test_test_task_keeps_only_held_out_videos(sample_env, tmp_path, monkeypatch):
    from egotask.tasklib import make_process_docs

    manifest = tmp_path / "sample_splits.json"
    run = _splits_cli(manifest, sample_env, "--ratios", "0.5,0,0.5")
    assert run.returncode == 0, run.stderr
    monkeypatch.setenv("EGOTASK_SPLIT_MANIFEST", str(manifest))
    monkeypatch.setenv("EGOTASK_JUDGE", "heuristic")
    held_out = set(load_manifest(manifest)["splits"]["egotextvqa_outdoor"]["test"])
    docs = make_process_docs("egotextvqa_outdoor", split="test")(None)
    assert {d["video_id"] for d in docs} == held_out and 0 < len(held_out) < 4
    tempo = make_process_docs("egotempo_openqa", split="test")(None)
    assert {d["video_id"] for d in tempo} == set(load_manifest(manifest)["splits"]["egotempo_openqa"]["test"])


def test_test_task_with_videos_outside_the_manifest_names_manifest_and_variable(sample_env, monkeypatch):
    from egotask.tasklib import make_process_docs

    monkeypatch.setenv("EGOTASK_JUDGE", "heuristic")
    # The packaged default holds the real ids, not the sample's.
    with pytest.raises(DataError, match=r"in no split of split manifest .*splits_default.json .*SPLIT_MANIFEST"):
        make_process_docs("egotextvqa_indoor", split="test")(None)


def test_preflight_of_a_test_task_needs_only_the_held_out_videos(sample_env, tmp_path, monkeypatch):
    import shutil

    from egotask.preflight import preflight

    manifest = tmp_path / "sample_splits.json"
    assert _splits_cli(manifest, sample_env, "--ratios", "0.5,0,0.5").returncode == 0
    held_out = load_manifest(manifest)["splits"]["egotextvqa_outdoor"]["test"]
    videos = tmp_path / "videos" / "EgoTextVQA-Outdoor"
    videos.mkdir(parents=True)
    for vid in held_out:  # a user who downloaded only the held-out videos
        shutil.copy(os.path.join(sample_env["EGOTEXTVQA_VIDEO_DIR"], "EgoTextVQA-Outdoor", f"{vid}.mp4"), videos)
    monkeypatch.setenv("EGOTASK_SPLIT_MANIFEST", str(manifest))
    monkeypatch.setenv("EGOTEXTVQA_VIDEO_DIR", str(videos.parent))
    preflight(["egotextvqa_outdoor_test"])
    with pytest.raises(DataError, match="video file\\(s\\) missing"):
        preflight(["egotextvqa_outdoor"])
