"""trim-egotempo: frame-accurate clips named by clip id; a missing or corrupt source is reported and
the other clips are still cut."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from egotask.data.sources import DataError
from egotask.data.trim import parse_clip_id
from egotask.fixtures import write_clip, write_egotempo_annotations
from egotask.frames import probe_video, read_frames_at

UID = "0d270946-95c5-4e71-ae49-b9e802548147"
MISSING_UID = "27470817-f803-45b4-b9d4-e754cb3196bc"
CORRUPT_UID = "0296707b-0b42-45dd-98dc-ca8ce0a26a50"


def test_clip_id_parses_floats_including_the_real_negative_starts():
    assert parse_clip_id(f"{UID}_368.4019995568589_403.56079044314106").start == pytest.approx(368.402)
    assert parse_clip_id(f"{UID}_-0.09518244691001726_110.4").start < 0
    with pytest.raises(DataError, match="is not"):
        parse_clip_id("nonsense")


def test_trim_cuts_every_clip_and_reports_missing_and_corrupt_sources(tmp_path):
    ego4d = tmp_path / "ego4d" / "v2" / "full_scale"
    source = write_clip(ego4d / f"{UID}.mp4", ["ONE", "TWO", "THREE"], seconds=6.0, fps=10, gop=12)
    (ego4d / f"{CORRUPT_UID}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 100)
    clips = [f"{UID}_2.0_4.0", f"{UID}_-0.05_1.5", f"{MISSING_UID}_1.0_2.0", f"{CORRUPT_UID}_0.0_1.0"]
    ann = write_egotempo_annotations(tmp_path / "egotempo_openQA.json", [
        {"question_id": f"{c}_0", "clip_id": c, "question_type": "object sequence", "question": "q?", "answer": "a"}
        for c in clips])
    out = tmp_path / "clips"
    cmd = [sys.executable, "-m", "egotask.cli", "data", "trim-egotempo", "--videos", str(tmp_path / "ego4d"),
           "--annotations", str(ann), "--out", str(out), "--workers", "2", "--report", str(tmp_path / "r.json")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert proc.returncode == 1  # something failed, and it says so
    assert "2 written, 0 already done, 2 failed" in proc.stdout
    assert f"source video {MISSING_UID}.mp4 not found" in proc.stderr
    assert f"{CORRUPT_UID}.mp4" in proc.stderr
    failed = json.loads((tmp_path / "r.json").read_text())["summary"]["failed_files"]
    assert len(failed) == 2

    middle = probe_video(out / f"{UID}_2.0_4.0.mp4", exact=True)
    assert middle.duration == pytest.approx(2.0) and middle.num_frames == 20
    assert probe_video(out / f"{UID}_-0.05_1.5.mp4", exact=True).duration == pytest.approx(1.5)
    # Frame accuracy: the clip's frame at t shows what the source shows at 2.0 + t.
    for t in (0.0, 0.9, 1.9):
        clip_frame = read_frames_at(out / f"{UID}_2.0_4.0.mp4", [t]).frames[0].astype(int)
        same = read_frames_at(source, [2.0 + t]).frames[0].astype(int)
        other = read_frames_at(source, [max(0.0, 2.0 + t - 2.0)]).frames[0].astype(int)
        assert np.abs(clip_frame - same).mean() < np.abs(clip_frame - other).mean()
        assert np.abs(clip_frame - same).mean() < 6  # a re-encode, not a different frame

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert "0 written, 2 already done, 2 failed" in again.stdout
