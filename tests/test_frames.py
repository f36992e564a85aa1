"""The frame sampler: frames come from the requested interval, with their real timestamps."""

from __future__ import annotations

import pytest

from egotask.fixtures import write_clip
from egotask.frames import VideoError, read_frames_at, sample_frames, target_times


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


def _all_frames(path) -> tuple[list[float], list]:
    """Every frame, decoded front to back, with its time from the first frame: the reference."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = sorted(((f.pts, f.to_ndarray(format="rgb24")) for f in container.decode(stream)),
                         key=lambda x: x[0])
        t0, tb = decoded[0][0], float(stream.time_base)
        return [(pts - t0) * tb for pts, _ in decoded], [a for _, a in decoded]


def _assert_real_frames(path, got) -> None:
    times, arrays = _all_frames(path)
    for t, frame in zip(got.timestamps, got.frames, strict=True):
        j = min(range(len(times)), key=lambda k: abs(times[k] - t))
        assert abs(times[j] - t) < 1e-6, f"{t} is not a frame time"
        assert (arrays[j] == frame).all(), f"the frame at {t}s is not the one decoded front to back"


def test_variable_frame_rate_gives_each_frames_real_time(tmp_path):
    # Alternating 50 ms and 150 ms gaps: the average rate (10 fps) would put frames in the wrong places.
    times = [0.0]
    for i in range(39):
        times.append(times[-1] + (0.05 if i % 2 == 0 else 0.15))
    clip = write_clip(tmp_path / "vfr.mp4", ["A", "B", "C", "D"], frame_times=times, fps=10)
    got = sample_frames(clip, 8, 0.0, 3.0)
    assert all(any(abs(t - f) < 1e-6 for f in times) for t in got.timestamps)
    for want, t in zip(target_times(0.0, 3.0, 8), got.timestamps, strict=True):
        nearest = min((f for f in times if f < 3.0), key=lambda f: abs(f - want))
        assert t == pytest.approx(nearest, abs=1e-6)
    _assert_real_frames(clip, got)


def test_container_without_duration_is_measured_from_its_packets(tmp_path):
    clip = write_clip(tmp_path / "live.mkv", ["A", "B"], seconds=3.0, fps=10, container_options={"live": "1"})
    import av

    with av.open(str(clip)) as c:
        assert c.duration is None and c.streams.video[0].duration is None  # the case under test
    got = sample_frames(clip, 6)
    assert got.duration == pytest.approx(3.0, abs=1e-6)
    assert got.end == pytest.approx(3.0) and max(got.timestamps) < 3.0
    _assert_real_frames(clip, got)
    assert sample_frames(clip, 4, 0.0, 99.0).end == pytest.approx(3.0)  # clamped to the measured end


def test_raw_stream_without_timestamps_is_read_front_to_back(tmp_path):
    clip = write_clip(tmp_path / "raw.h264", ["A", "B"], seconds=2.0, fps=10, container_format="h264")
    got = sample_frames(clip, 4)
    assert got.frames.shape[0] == 4 and got.timestamps == sorted(got.timestamps)


def test_mpegts_times_start_at_zero_even_when_the_stream_does_not(tmp_path):
    clip = write_clip(tmp_path / "c.ts", ["A", "B"], seconds=2.0, fps=10)
    got = sample_frames(clip, 4)
    assert got.timestamps[0] < 0.5 and got.duration == pytest.approx(2.0, abs=0.11)
    _assert_real_frames(clip, got)


def test_half_second_clip_repeats_frames_rather_than_inventing_them(tmp_path):
    clip = write_clip(tmp_path / "short.mp4", ["A"], seconds=0.5, fps=8)  # 4 frames
    got = sample_frames(clip, 8)
    assert got.frames.shape[0] == 8
    assert len(set(got.timestamps)) == 4 and all(0.0 <= t < 0.5 for t in got.timestamps)
    _assert_real_frames(clip, got)


def test_real_time_interval_never_returns_a_frame_at_or_after_its_end(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", ["A"], seconds=2.0, fps=10)
    got = sample_frames(clip, 32, 0.0, 1.0)  # more frames than the interval holds
    assert max(got.timestamps) < 1.0


def test_interval_starting_past_the_end_is_an_error_naming_the_file(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", ["A"], seconds=2.0, fps=10)
    with pytest.raises(VideoError, match=r"c.mp4: interval \[5.00, 9.0\] starts at or after the video's end"):
        sample_frames(clip, 4, 5.0, 9.0)


def test_truncated_file_is_an_error_naming_the_file(tmp_path):
    # moov at the front (faststart): the header promises 4 s, the file holds about half of it.
    clip = write_clip(tmp_path / "full.mp4", ["A", "B"], seconds=4.0, fps=10,
                      container_options={"movflags": "faststart"})
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match=r"cut.mp4: truncated or corrupt"):
        sample_frames(cut, 8)
    # moov at the end: the cut removed the index, nothing can be read.
    plain = write_clip(tmp_path / "plain.mp4", ["A"], seconds=4.0, fps=10)
    head = tmp_path / "head.mp4"
    head.write_bytes(plain.read_bytes()[:2000])
    with pytest.raises(VideoError, match=r"head.mp4"):
        sample_frames(head, 8)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match=r"empty.mp4"):
        sample_frames(empty, 8)


def test_read_frames_at_returns_the_nearest_frames_in_order(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", ["A", "B"], seconds=4.0, fps=10)
    got = read_frames_at(clip, [3.02, 0.0, 1.26])
    assert got.timestamps == [3.0, 0.0, 1.3]
    _assert_real_frames(clip, got)


def test_reused_open_videos_give_the_frames_a_fresh_open_gives(tmp_path):
    # Questions on the same videos, asked out of order from four threads: each sample reuses a
    # container another one left mid-file, and must still return the front-to-back frames.
    from concurrent.futures import ThreadPoolExecutor

    from egotask import frames

    clips = [write_clip(tmp_path / f"c{i}.mp4", ["A", "B", "C"], seconds=6.0, fps=10, gop=20) for i in range(2)]
    asks = [(clips[i % 2], 0.3 + (i * 7 % 11) * 0.5) for i in range(24)]
    frames.close_open_videos()
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda ask: sample_frames(ask[0], 4, 0.0, ask[1]), asks))
    assert 0 < len(frames._OPEN_VIDEOS) <= frames._OPEN_VIDEOS.capacity  # they were kept for reuse
    for (clip, end), sampled in zip(asks, got, strict=True):
        assert max(sampled.timestamps) < end
        _assert_real_frames(clip, sampled)


def test_a_video_rewritten_under_the_same_name_is_read_anew(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", ["A"], seconds=2.0, fps=10)
    first = sample_frames(clip, 2)
    write_clip(tmp_path / "c.mp4", ["B"], seconds=4.0, fps=10)
    second = sample_frames(clip, 2)
    assert second.duration == pytest.approx(4.0, abs=0.11) and first.duration == pytest.approx(2.0, abs=0.11)
    assert not (first.frames == second.frames).all()
    _assert_real_frames(clip, second)


def test_a_video_deleted_after_it_was_read_is_not_found(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", ["A"], seconds=2.0, fps=10)
    sample_frames(clip, 2)
    clip.unlink()
    with pytest.raises(VideoError, match="video not found: .*c.mp4"):
        sample_frames(clip, 2)


def test_a_forked_child_reads_its_own_copy_and_the_parent_reads_on(tmp_path):
    # An open video shares its file offset with a forked child's copy of it; the child must not use it.
    import os

    clip = write_clip(tmp_path / "c.mp4", ["A", "B", "C", "D"], seconds=8.0, fps=10, gop=10)
    before = sample_frames(clip, 4, 0.0, 7.0)
    pid = os.fork()
    if pid == 0:  # the child: sample other frames of the same file, then exit without pytest's teardown
        try:
            _assert_real_frames(clip, sample_frames(clip, 6, 1.0, 8.0))
            os._exit(0)
        except BaseException:
            os._exit(1)
    again = sample_frames(clip, 4, 0.0, 7.0)  # meanwhile the parent reuses its own open copy
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert (again.frames == before.frames).all()
    _assert_real_frames(clip, again)
