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


# --------------------------------------------------------------------------- issue 22: bad input

def _rotate_in_header(clip, matrix: tuple[int, ...]) -> None:
    """Write a display matrix into the mp4's track header (tkhd), as a phone does for a video recorded
    upright: the pixels stay stored as they were, the player turns them."""
    import struct

    data = bytearray(clip.read_bytes())
    at = data.index(b"tkhd")
    version = data[at + 4]
    matrix_at = at + 4 + 4 + (32 if version == 1 else 20) + 16
    data[matrix_at:matrix_at + 36] = struct.pack(">9i", *matrix)
    clip.write_bytes(bytes(data))


# rotate=90 (what `ffprobe` shows as "displaymatrix: rotation of -90.00 degrees"): turn clockwise to show.
ROTATE_90 = (0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)


def test_a_rotated_video_is_shown_upright(tmp_path):
    import numpy as np

    stored = write_clip(tmp_path / "stored.mp4", ["A", "B"], seconds=2.0, fps=10, size=(160, 96))
    rotated = tmp_path / "rotated.mp4"
    rotated.write_bytes(stored.read_bytes())
    _rotate_in_header(rotated, ROTATE_90)
    plain, turned = sample_frames(stored, 4), sample_frames(rotated, 4)
    assert plain.frames.shape == (4, 96, 160, 3) and turned.frames.shape == (4, 160, 96, 3)
    assert turned.timestamps == plain.timestamps
    for a, b in zip(plain.frames, turned.frames, strict=True):
        assert np.array_equal(np.rot90(a, -1), b)  # the stored frame, turned a quarter clockwise
    # The pixel cap scales the stored frame, then turns it: the same picture, upright.
    capped = sample_frames(rotated, 2, max_pixels=40 * 24)
    assert capped.frames.shape == (2, 40, 24, 3)


def test_a_question_at_0s_sees_no_frame_and_says_so(tmp_path):
    from egotask.frames import NothingVisible

    clip = write_clip(tmp_path / "c.mp4", ["A"], seconds=2.0, fps=10)
    with pytest.raises(NothingVisible, match=r"c.mp4: nothing is visible in \[0.00, 0.00\) s"):
        sample_frames(clip, 4, 0.0, 0.0)
    # Between two frames: the frame on screen since before the start, never the one at or after the end.
    got = sample_frames(clip, 2, 0.32, 0.38)
    assert got.timestamps == [0.3, 0.3]


def test_an_image_renamed_mp4_is_refused_as_a_video(tmp_path):
    from PIL import Image

    from egotask.fixtures import text_frame

    for fmt in ("PNG", "JPEG"):
        fake = tmp_path / f"{fmt.lower()}.mp4"
        Image.fromarray(text_frame("A", (160, 96))).save(fake, format=fmt)
        with pytest.raises(VideoError, match=rf"{fmt.lower()}.mp4: holds a single frame, a still image"):
            sample_frames(fake, 4)
    one = write_clip(tmp_path / "one.mp4", ["A"], seconds=0.1, fps=10)  # a real mp4 of one frame
    with pytest.raises(VideoError, match="one.mp4: holds a single frame"):
        sample_frames(one, 4)


@pytest.mark.parametrize(("args", "message"), [
    ({"max_frames": "0"}, r"max_frames='0': expected a whole number from 1 to 256 \(force_frames=true allows more\)"),
    ({"max_frames": "-1"}, r"max_frames='-1': expected a whole number from 1 to 256"),
    ({"max_frames": "abc"}, r"max_frames='abc': expected a whole number from 1 to 256"),
    ({"max_frames": "100000"}, r"max_frames='100000': expected a whole number from 1 to 256 \(force_frames"),
    ({"fps": "nan"}, r"fps='nan': expected a number of frames per second above 0"),
    ({"fps": "-2"}, r"fps='-2': expected a number of frames per second above 0"),
    ({"max_pixels": "-5"}, r"max_pixels='-5': expected a whole number of pixels per frame of at least 1024"),
    ({"frames": "1000"}, r"frames='1000': expected a whole number from 1 to 256"),
    ({"force_frames": "maybe"}, r"force_frames='maybe': expected true or false"),
])
def test_frame_settings_out_of_range_name_the_argument_and_its_range(args, message):
    from egotask.frames import FrameSettingsError, check_frame_args

    with pytest.raises(FrameSettingsError, match=message):
        check_frame_args(args)


def test_a_frame_count_above_the_ceiling_is_taken_when_forced():
    from egotask.frames import MAX_FRAMES_CEILING, check_frame_args, check_frame_settings

    check_frame_args({"max_frames": str(MAX_FRAMES_CEILING), "fps": "2", "max_pixels": "589824"})
    assert check_frame_settings("100000", force_frames=True).max_frames == 100000
    check_frame_args({"frames": "1000", "force_frames": "true"})


# --------------------------------------------------------------------------- issue 26: one pass per video

def test_many_questions_of_one_video_get_the_frames_each_would_get_alone(tmp_path):
    import numpy as np

    from egotask import frames
    from egotask.frames import Ask, sample_many

    clip = write_clip(tmp_path / "c.mp4", ["A", "B", "C", "D"], seconds=8.0, fps=10, gop=12)
    asks = [Ask(8, 0.0, 5.0), Ask(32, 0.0, 7.9), Ask(8, 0.0, 5.0), Ask(None, 1.0, 3.0, fps=2.0, max_frames=8),
            Ask(4, 0.0, 0.0), Ask(4, 9.0, 10.0)]
    got = sample_many(clip, asks)
    assert got[0] is got[2]  # an identical interval shares its frames
    assert isinstance(got[4], frames.NothingVisible) and "starts at or after" in str(got[5])
    for ask, sampled in zip(asks[:4], got[:4], strict=True):
        frames.close_open_videos()
        alone = sample_frames(clip, ask.num_frames, ask.start, ask.end, fps=ask.fps, max_frames=ask.max_frames)
        assert sampled.timestamps == alone.timestamps and np.array_equal(sampled.frames, alone.frames)
        assert max(sampled.timestamps) < ask.end
        _assert_real_frames(clip, sampled)


def test_frames_are_scaled_to_the_pixel_cap_while_decoding(tmp_path):
    from egotask.frames import sample_visual

    clip = write_clip(tmp_path / "c.mp4", ["A", "B"], seconds=2.0, fps=10, size=(320, 180))
    got = sample_visual(str(clip), max_frames=4, max_pixels=160 * 90)
    assert got.frames.shape == (4, 90, 160, 3)
    full = sample_frames(clip, 4)
    # The same picture, smaller: close to a 2x2 average of the full-size frame.
    small = full.frames.reshape(4, 90, 2, 160, 2, 3).mean(axis=(2, 4))
    assert abs(got.frames.astype(float) - small).mean() < 6
