"""resample: right fps/size/duration, one output per source, finished files skipped, no half files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import av
import pytest

from egotask.data.resample import resample_tree
from egotask.data.transcode import TranscodeSpec, in_background, plan_frames, transcode
from egotask.fixtures import write_clip
from egotask.frames import probe_video


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "egotask.cli", "data", *map(str, args)], env=os.environ.copy(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "src"
    write_clip(src / "EgoTextVQA-Indoor" / "a.mp4", ["A", "B"], seconds=3.0, fps=10, size=(160, 96))
    write_clip(src / "EgoTextVQA-Outdoor" / "7.mp4", ["C"], seconds=2.0, fps=4, size=(160, 96))  # already slow
    vfr_times = [0.05 * i + 0.1 * (i // 2) for i in range(30)]  # gaps of 50 and 150 ms
    write_clip(src / "vfr.mp4", ["D"], frame_times=vfr_times, fps=10)
    return src


def test_resample_tree_measures_right_and_skips_finished_files(tree, tmp_path):
    dst = tmp_path / "dst"
    proc = _cli("resample", tree, dst, "--fps", "5", "--scale", "0.5", "--workers", "2")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "3 written, 0 already done, 0 failed" in out
    a = probe_video(dst / "EgoTextVQA-Indoor" / "a.mp4", exact=True)
    assert (a.width, a.height, a.fps, a.num_frames) == (80, 48, 5.0, 15)
    assert a.duration == pytest.approx(3.0)
    slow = probe_video(dst / "EgoTextVQA-Outdoor" / "7.mp4", exact=True)
    assert slow.fps == pytest.approx(4.0) and slow.duration == pytest.approx(2.0)  # never raised to 5
    stamp = (dst / "vfr.mp4").stat().st_mtime_ns
    again = _cli("resample", tree, dst, "--fps", "5", "--scale", "0.5", "--workers", "1")
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0 and "0 written, 3 already done, 0 failed" in out
    assert (dst / "vfr.mp4").stat().st_mtime_ns == stamp
    # Other settings make the old outputs stale: they are made again.
    results = resample_tree(tree, dst, TranscodeSpec(fps=2))
    assert {r.status for r in results} == {"done"} and "stale" in results[0].message
    assert probe_video(dst / "EgoTextVQA-Indoor" / "a.mp4").width == 160


def test_killed_run_leaves_no_half_file_and_the_next_run_finishes(tmp_path):
    src = tmp_path / "src"
    write_clip(src / "long.mp4", ["A", "B", "C"], seconds=40.0, fps=25, size=(320, 192))
    dst = tmp_path / "dst"
    proc = _cli("resample", src, dst, "--fps", "25", "--preset", "medium", "--workers", "1")
    deadline = time.monotonic() + 120
    tmp_seen = False
    while time.monotonic() < deadline and proc.poll() is None:
        if list(dst.rglob(".long.tmp-*.mp4")):
            tmp_seen = True
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait(timeout=60)
    if not tmp_seen:
        pytest.skip("the run finished before it could be interrupted")
    assert not (dst / "long.mp4").exists()  # the final name only ever holds a checked file
    results = resample_tree(src, dst, TranscodeSpec(fps=25))
    assert [r.status for r in results] == ["done"]
    assert not list(dst.rglob(".*.tmp-*.mp4"))  # the killed run's temporary file was cleaned up
    assert probe_video(dst / "long.mp4", exact=True).num_frames == 1000


def test_corrupt_source_is_reported_and_the_others_are_done(tree, tmp_path):
    (tree / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 100)
    results = resample_tree(tree, tmp_path / "dst", TranscodeSpec(fps=5))
    by_name = {r.src.rsplit("/", 1)[1]: r for r in results}
    assert by_name["broken.mp4"].status == "failed" and "broken.mp4" in by_name["broken.mp4"].message
    assert {r.status for n, r in by_name.items() if n != "broken.mp4"} == {"done"}
    assert not (tmp_path / "dst" / "broken.mp4").exists()


def test_output_folder_inside_the_source_is_refused(tree):
    with pytest.raises(ValueError, match="must not be the source folder or inside it"):
        resample_tree(tree, tree / "out", TranscodeSpec(fps=5))


def test_plan_keeps_one_frame_per_slot_and_skips_unreachable_slots():
    times = [i / 30 for i in range(60)]  # 2 s at 30 fps
    plan = plan_frames(times, 0.0, None, 6.0)
    assert sorted(plan) == list(range(0, 60, 5)) and list(plan.values())[:3] == [0.0, 1 / 6, 2 / 6]
    sparse = plan_frames([0.0, 1.0, 2.0], 0.0, None, 6.0)  # a 1 fps source asked for 6 fps
    assert sparse == {0: 0.0, 1: 1.0, 2: 2.0}
    cut = plan_frames(times, 0.5, 1.0, None)
    assert min(cut.values()) == 0.0 and len(cut) == 30


def test_each_resampled_frame_is_the_source_frame_of_its_slot(tmp_path):
    # Every source frame shows its own number, so a frame taken from the wrong slot is told apart.
    src = write_clip(tmp_path / "count.mp4", [str(i) for i in range(60)], seconds=2.0, fps=30, size=(160, 96))
    dst = tmp_path / "out.mp4"
    assert transcode(src, dst, TranscodeSpec(fps=6), threads=1).status == "done"
    with av.open(str(src)) as c:
        source = [f.to_ndarray(format="gray").astype(float) for f in c.decode(video=0)]
    with av.open(str(dst)) as c:
        output = [f.to_ndarray(format="gray").astype(float) for f in c.decode(video=0)]
    assert len(output) == 12
    nearest = [min(range(60), key=lambda i: ((source[i] - frame) ** 2).mean()) for frame in output]
    assert nearest == list(range(0, 60, 5))


def test_background_iteration_hands_over_errors_and_stops_when_left_early():
    def numbers(fail_at=None):
        for i in range(1000):
            if i == fail_at:
                raise ValueError(f"broken at {i}")
            yield i

    assert list(in_background(numbers(), depth=2)) == list(range(1000))
    with pytest.raises(ValueError, match="broken at 7"):
        list(in_background(numbers(fail_at=7)))
    source = numbers()
    for i in in_background(source, depth=2):
        if i == 3:
            break
    assert source.gi_frame is None  # the worker closed the generator, and it has exited
    assert not [t for t in threading.enumerate() if t.name == "egotask-decode"]


def _children(pid: int) -> set[int]:
    """Live (not zombie) processes whose parent is ``pid``, from /proc."""
    found = set()
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                fields = open(f"/proc/{stat}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(stat))
    return found


def _alive(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("command", ["resample", "trim-egotempo"])
def test_workers_end_with_a_killed_parent(tmp_path, command):
    uid = "0d270946-95c5-4e71-ae49-b9e802548147"
    src, dst = tmp_path / "src", tmp_path / "dst"
    for name in ("a", "b", "c", uid):
        write_clip(src / f"{name}.mp4", ["A", "B", "C"], seconds=30.0, fps=25, size=(320, 192))
    if command == "resample":
        args = ["resample", src, dst, "--fps", "25", "--preset", "medium", "--workers", "2"]
    else:
        ann = tmp_path / "egotempo_openQA.json"
        clips = [f"{uid}_{start}.0_{start + 20}.0" for start in (0, 5, 10)]
        ann.write_text(json.dumps({"annotations": [
            {"question_id": c, "clip_id": c, "question_type": "counting objects", "question": "q?", "answer": "a"}
            for c in clips]}))
        args = ["trim-egotempo", "--videos", src, "--annotations", ann, "--out", dst, "--workers", "2"]
    proc = _cli(*args)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and len(list(dst.rglob(".*.tmp-*.mp4"))) < 2:
            time.sleep(0.01)
        workers = _children(proc.pid)
        if proc.poll() is not None or len(workers) < 2:
            pytest.skip("the run finished before both workers were busy")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        gone_by = time.monotonic() + 5
        while time.monotonic() < gone_by and any(_alive(p) for p in workers):
            time.sleep(0.05)
        assert not [p for p in workers if _alive(p)], "workers outlived their killed parent"
    finally:
        for pid in workers:  # never leave them behind, whatever the outcome
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
