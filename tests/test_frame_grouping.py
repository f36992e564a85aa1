"""A rank's questions grouped by video inside ``generate_until``: each video is opened and decoded once
for all its questions, the answers go back in lmms-eval's order, frames held ahead are bounded in bytes,
and a question that can see nothing (asked at 0 s) is a generation failure that says so."""

from __future__ import annotations

import threading

import pytest
from lmms_eval.api.instance import Instance

from egotask.fixtures import write_clip
from egotask.frames import VisibleVideo, close_open_videos, sample_visual
from egotask.model_adapters.base import FramesModel, VideoPrompt

TASK, SPLIT = "t", "test"


class FrameTimes(FramesModel):
    """Answers with the times of the frames it was shown, and notes how many items were decoded ahead."""

    family = "frame_times"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.submitted = 0
        self.answered = 0
        self.most_ahead = 0

    def submit_group(self, pool, group):
        self.submitted += len(group)
        return super().submit_group(pool, group)

    def generate(self, batch: list[VideoPrompt]) -> list[str]:
        self.most_ahead = max(self.most_ahead, self.submitted - self.answered)
        self.answered += len(batch)
        return [" ".join(f"{t:.2f}" for t in p.videos[0].timestamps) for p in batch]


def ask(model: FramesModel, visuals: list[VisibleVideo], name: str = "q") -> list[str]:
    docs = [{"visual": v, "question": f"{name}{i}", "task": TASK, "video_id": f"{name}{i}", "question_id": "1"}
            for i, v in enumerate(visuals)]
    model.task_dict = {TASK: {SPLIT: docs}}
    requests = [Instance("generate_until", (d["question"], {"until": ["\n\n"]}, lambda doc: [doc["visual"]], i,
                                            TASK, SPLIT), idx=0, metadata={"task": TASK, "doc_id": i, "repeats": 1})
                for i, d in enumerate(docs)]
    return model.generate_until(requests)


@pytest.fixture
def clips(tmp_path):
    return [write_clip(tmp_path / f"v{i}.mp4", ["A", "B", "C"], seconds=6.0, fps=10, gop=12) for i in range(3)]


@pytest.fixture
def opens(monkeypatch):
    """How often each file is opened (counted at the file boundary, PyAV's open)."""
    import av

    counted: dict[str, int] = {}
    lock = threading.Lock()
    real_open = av.open

    def counting_open(file, *args, **kwargs):
        with lock:
            counted[str(file)] = counted.get(str(file), 0) + 1
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(av, "open", counting_open)
    return counted


def test_each_video_is_decoded_once_for_all_its_questions_and_answers_keep_their_order(clips, opens, tmp_path):
    a, b, c = (str(p) for p in clips)
    # Questions scattered as annotations scatter them, two of them asking the same interval.
    visuals = [VisibleVideo(a, 0, 5.0), VisibleVideo(b, 0, 2.0), VisibleVideo(a, 0, 3.0), VisibleVideo(c, 0, 4.0),
               VisibleVideo(a, 0, 5.0), VisibleVideo(b, 0, 5.5), VisibleVideo(a, 0, 1.0)]
    close_open_videos()
    model = FrameTimes(max_frames=4)
    answers = ask(model, visuals)
    assert opens == {a: 1, b: 1, c: 1}
    for visual, answer in zip(visuals, answers, strict=True):
        alone = sample_visual(visual, max_frames=4)
        assert answer == " ".join(f"{t:.2f}" for t in alone.timestamps)
        assert max(float(t) for t in answer.split()) < visual.end


def test_frames_decoded_ahead_are_bounded_in_bytes(clips):
    visuals = [VisibleVideo(str(clips[i % 3]), 0, 2.0 + i * 0.3) for i in range(9)]
    # 160x96 frames: 4 frames of an item are 184 kB; 1 MB holds 5 items: one group of
    # 3 and the next once the first item is taken, never all three groups.
    model = FrameTimes(max_frames=4, max_pixels=160 * 96, frame_memory="1MB")
    answers = ask(model, visuals)
    assert len(answers) == 9 and all(answers)
    assert model.most_ahead <= 5
    unbounded = FrameTimes(max_frames=4, max_pixels=160 * 96)
    ask(unbounded, visuals, "other question ")  # not from the answer cache
    assert unbounded.most_ahead >= 6  # without the bound: all three groups at once


class HeldFrames(FrameTimes):
    """Notes, at every group submitted, the estimated bytes of frames then decoded ahead (submitted,
    not yet answered) and the size of the group."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.groups: list[int] = []
        self.held_after: list[int] = []

    def submit_group(self, pool, group):
        self.groups.append(len(group))
        out = super().submit_group(pool, group)
        self.held_after.append(sum(self.item_bytes for _ in range(self.submitted - self.answered)))
        return out

    @property
    def item_bytes(self) -> int:
        return int(self.max_frames) * 3 * int(self.max_pixels)


def test_a_video_group_larger_than_frame_memory_is_split_into_runs_that_fit(clips, opens):
    a, b = (str(p) for p in clips[:2])
    # 8 frames of 160x96: 368,640 bytes an item. Five questions of a (1.8 MB) and two of b; 1 MB holds two items.
    visuals = [VisibleVideo(a, 0, 1.0 + 0.9 * i) for i in range(5)] + [VisibleVideo(b, 0, 2.0), VisibleVideo(b, 0, 3.0)]
    close_open_videos()
    model = HeldFrames(max_frames=8, max_pixels=160 * 96, frame_memory="1MB")
    answers = ask(model, visuals)
    assert model.groups == [2, 2, 1, 2]  # a's five questions in runs of 2, 2 and 1, then b's two
    assert max(model.held_after) <= 2 * model.item_bytes <= model.frame_memory == 1 << 20
    assert opens == {a: 1, b: 1}  # the runs of one video share its open file
    for visual, answer in zip(visuals, answers, strict=True):
        assert answer == " ".join(f"{t:.2f}" for t in sample_visual(visual, max_frames=8).timestamps)
    # An item larger than the bound by itself is decoded alone, with nothing else held.
    alone = HeldFrames(max_frames=32, max_pixels=160 * 96, frame_memory="1MB")  # 1.47 MB an item
    assert all(ask(alone, [VisibleVideo(a, 0, 5.0), VisibleVideo(a, 0, 5.5)], "big "))
    assert alone.groups == [1, 1] and alone.held_after == [alone.item_bytes] * 2


def test_a_question_at_0s_is_a_generation_failure_that_says_nothing_is_visible(clips):
    from egotask import answers as answers_module

    model = FrameTimes(max_frames=4)
    docs_answers = ask(model, [VisibleVideo(str(clips[0]), 0, 0.0), VisibleVideo(str(clips[0]), 0, 3.0)])
    assert docs_answers[0] == "" and docs_answers[1]
    assert model.stats["failed"] == 1
    outcome = answers_module.take(model.task_dict[TASK][SPLIT][0])
    assert outcome.error.startswith("no frame in the visible interval: ") and "nothing is visible in [0.00, 0.00)" \
        in outcome.error


@pytest.mark.parametrize(("args", "message"), [
    ({"max_frames": "0"}, "max_frames='0': expected a whole number from 1 to 256"),
    ({"max_frames": "abc"}, "max_frames='abc': expected a whole number from 1 to 256"),
    ({"fps": "nan"}, "fps='nan': expected a number of frames per second above 0"),
    ({"max_pixels": "-5"}, "max_pixels='-5': expected a whole number of pixels per frame of at least 1024"),
    ({"frame_memory": "lots"}, "frame_memory='lots': expected a size of at least 1MB"),
])
def test_an_adapter_refuses_frame_settings_out_of_range_before_it_loads(args, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        FrameTimes(**args)
