"""The frame sampler: frames come from the requested interval, with their real timestamps."""

from __future__ import annotations

import pytest

from egotask.fixtures import write_clip
from egotask.frames import VideoError, sample_frames, target_times


def test_frames_spread_over_the_interval_and_never_past_its_end(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", ["A", "B"], seconds=4.0, fps=10)
    got = sample_frames(clip, 8, 0.0, 2.0)
    assert len(got.timestamps) == 8 == got.frames.shape[0]
    assert got.timestamps == sorted(got.timestamps)
    assert all(0.0 <= t < 2.0 for t in got.timestamps)
    for want, t in zip(target_times(0.0, 2.0, 8), got.timestamps, strict=True):
        assert abs(want - t) <= 0.1 / 2 + 1e-6  # within half a frame at 10 fps


def test_end_past_the_video_is_clamped(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", ["A"], seconds=2.0, fps=10)
    got = sample_frames(clip, 4, 0.0, 60.0)
    assert got.end == pytest.approx(2.0, abs=0.11)
    assert max(got.timestamps) < 2.0


def test_missing_and_corrupt_files_name_the_file(tmp_path):
    with pytest.raises(VideoError, match="video not found: .*nope.mp4"):
        sample_frames(tmp_path / "nope.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    with pytest.raises(VideoError, match="bad.mp4"):
        sample_frames(bad)
