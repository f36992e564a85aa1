"""`--model_args frames=paper`: the EgoTextVQA paper's frame counts per setting, resolved for each
request by the adapters' base class."""

from __future__ import annotations

import pytest
from lmms_eval.api.instance import Instance

from egotask.model_adapters.base import FramesModel, VideoPrompt
from egotask.presets import PAPER_FRAMES, max_frames_for, parse_frames
from egotask.reports.paper import load_paper
from egotask.tasklib import doc_to_text, doc_to_visual, make_process_docs


def test_paper_presets_are_the_papers_frame_counts():
    assert [max_frames_for("paper", s, 8) for s in ("outdoor", "indoor", "egotempo")] == [32, 60, 8]
    assert [max_frames_for("paper-open", s, 8) for s in ("outdoor", "indoor", "egotempo")] == [16, 48, 8]
    assert max_frames_for(24, "indoor", 8) == 24 and max_frames_for(None, "indoor", 8) == 8


def test_the_paper_rows_frame_counts_agree_with_the_presets():
    for row in load_paper()["rows"]:
        if row["model"] in ("GPT-4o", "Gemini 1.5 Pro", "Gemini 1.5 Flash") and row["frames"] is not None:
            assert row["frames"] == PAPER_FRAMES["paper"][row["table"]], row
        if row["model"] == "Qwen2-VL" and row["frames"] is not None:
            assert row["frames"] == PAPER_FRAMES["paper-open"][row["table"]], row


@pytest.mark.parametrize("value, parsed", [("paper", "paper"), ("PAPER-open", "paper-open"), ("32", 32), (16, 16),
                                           (None, None), ("", None)])
def test_frames_argument_takes_a_preset_or_a_count(value, parsed):
    assert parse_frames(value) == parsed


@pytest.mark.parametrize("value", ["papr", "0", "-4", "many"])
def test_a_bad_frames_argument_names_the_choices(value):
    with pytest.raises(ValueError, match=r"frames=.*expected paper or paper-open .*or a number of frames"):
        parse_frames(value)


class FrameCounter(FramesModel):
    """An adapter that answers with how many frames it was shown."""

    def generate(self, batch: list[VideoPrompt]) -> list[str]:
        return [str(len(p.videos[0].frames)) for p in batch]


def answers(model: FramesModel, task: str, docs) -> list[str]:
    model.task_dict = {task: {"test": docs}}
    return model.generate_until([
        Instance("generate_until", (doc_to_text(docs[i]), {}, doc_to_visual, i, task, "test"), idx=0,
                 metadata={"task": task, "doc_id": i, "repeats": 1}) for i in range(len(docs))])


def test_frames_paper_samples_the_papers_count_for_each_setting(sample_env):
    indoor = make_process_docs("egotextvqa_indoor")(None)
    outdoor = make_process_docs("egotextvqa_outdoor")(None)
    tempo = make_process_docs("egotempo_openqa")(None)
    paper = FrameCounter(frames="paper", max_frames=4)
    assert set(answers(paper, "egotextvqa_indoor", indoor)) == {"60"}
    assert set(answers(paper, "egotextvqa_outdoor", outdoor)) == {"32"}
    assert set(answers(paper, "egotempo_openqa", tempo)) == {"4"}  # not in the paper: max_frames
    assert set(answers(FrameCounter(frames="paper-open"), "egotextvqa_indoor", indoor)) == {"48"}
    assert set(answers(FrameCounter(frames=6), "egotextvqa_outdoor", outdoor)) == {"6"}
    assert set(answers(FrameCounter(), "egotextvqa_outdoor", outdoor)) == {"8"}  # the default


def test_an_adapter_refuses_a_bad_frames_argument_when_built():
    with pytest.raises(ValueError, match="frames='papers'"):
        FrameCounter(frames="papers")
