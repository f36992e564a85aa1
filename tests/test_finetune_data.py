"""Finetuning's inputs: dataset names and weights, split manifests, the mixture, prompts, answer-only
labels, and the errors bad input gives (all before any model loads)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from finetune_helpers import OUTDOOR_TEST_VIDEO, write_manifest

from egotask.cli import main as egotask_main
from egotask.data.sources import DataError, load_docs
from egotask.data.splits import load_manifest, video_split
from egotask.finetune.collate import IGNORE_INDEX, AnswerOnlyCollator
from egotask.finetune.config import FinetuneError, expand_datasets
from egotask.finetune.data import DocDataset, MixtureStream, split_docs
from egotask.finetune.prompts import question_text
from egotask.paths import tasks_path

# --------------------------------------------------------------------------- names and weights


def test_egotextvqa_stands_for_both_splits_sharing_its_weight():
    assert expand_datasets(["egotextvqa", "egotempo"], [0.7, 0.3], "--train-datasets") == [
        ("egotextvqa_indoor", pytest.approx(0.35)), ("egotextvqa_outdoor", pytest.approx(0.35)),
        ("egotempo_openqa", pytest.approx(0.3))]


def test_weights_are_normalised_and_default_to_equal():
    assert expand_datasets(["egotextvqa_indoor", "egotempo_openqa"], [3, 1], "--train-datasets") == [
        ("egotextvqa_indoor", 0.75), ("egotempo_openqa", 0.25)]
    assert [w for _, w in expand_datasets(["egotextvqa_outdoor", "egotempo"], None, "--val-datasets")] == [0.5, 0.5]


def test_unknown_dataset_name_is_an_error_listing_known_names():
    with pytest.raises(FinetuneError, match=r"--train-datasets: unknown dataset 'egovqa'.*egotempo_openqa"):
        expand_datasets(["egovqa"], None, "--train-datasets")


def test_weight_count_must_match_dataset_count():
    with pytest.raises(FinetuneError, match=r"--val-weights: got 1 weight\(s\) for 2 dataset\(s\)"):
        expand_datasets(["egotextvqa", "egotempo"], [1.0], "--val-datasets")


# --------------------------------------------------------------------------- the mixture


def test_sampled_dataset_shares_follow_the_weights():
    draws = MixtureStream([40, 7, 500], [0.6, 0.3, 0.1], seed=3).take(0, 6000)
    shares = Counter(d for d, _ in draws)
    for dataset, weight in enumerate([0.6, 0.3, 0.1]):
        assert shares[dataset] / len(draws) == pytest.approx(weight, abs=0.02)
    # Every item of a small dataset comes round before any repeats.
    small = [i for d, i in draws if d == 1]
    assert sorted(small[:7]) == list(range(7))


def test_the_stream_from_any_position_continues_the_same_sequence():
    stream = MixtureStream([5, 9], [0.5, 0.5], seed=1)
    whole = stream.take(0, 9000)
    assert stream.take(4100, 50) == whole[4100:4150]  # across a chunk boundary, as a resumed run reads it
    assert MixtureStream([5, 9], [0.5, 0.5], seed=2).take(0, 50) != whole[:50]


# --------------------------------------------------------------------------- splits


def test_training_never_reads_test_split_videos(sample_env, tmp_path):
    manifest = load_manifest(write_manifest(tmp_path / "splits.json"))
    # The test video is gone from the folder: reading it would fail.
    videos = tmp_path / "videos"
    shutil.copytree(sample_env["EGOTEXTVQA_VIDEO_DIR"], videos)
    (videos / "EgoTextVQA-Outdoor" / f"{OUTDOOR_TEST_VIDEO}.mp4").unlink()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EGOTEXTVQA_VIDEO_DIR", str(videos))
        train = split_docs("egotextvqa_outdoor", "train", manifest)
        val = split_docs("egotextvqa_outdoor", "val", manifest)
        for doc in DocDataset(train + val, max_frames=2):
            assert doc.video_id != OUTDOOR_TEST_VIDEO
    assert {d["video_id"] for d in train} == {"101", "102"} and {d["video_id"] for d in val} == {"103"}
    with pytest.raises(ValueError, match="never reads the test split"):
        split_docs("egotextvqa_outdoor", "test", manifest)


def test_manifest_reader_knows_each_videos_split(tmp_path):
    manifest = load_manifest(write_manifest(tmp_path / "splits.json"))
    assert video_split(manifest, "egotextvqa_outdoor", "104") == "test"
    assert video_split(manifest, "egotextvqa_outdoor", 101) == "train"
    with pytest.raises(DataError, match="video.s. of egotextvqa_outdoor are in no split of the split manifest: '999'"):
        video_split(manifest, "egotextvqa_outdoor", "999")


# --------------------------------------------------------------------------- prompts and labels


def test_prompt_is_the_protocols_prompt_as_in_evaluation(tmp_path):
    from egotask.protocols import load_protocol
    from egotask.settings import configure

    doc = {"benchmark": "egotempo_openqa", "question": "what happened?"}
    assert question_text(doc) == load_protocol("egotask").prompts[0].render("what happened?")
    assert question_text(doc).startswith("what happened?\nAnswer briefly")
    mine = tmp_path / "mine.yaml"  # a protocol of one's own is what finetuning asks too
    mine.write_text((tasks_path().parent / "protocols" / "egotask.yaml").read_text().replace(
        "Answer briefly", "Reply briefly"))
    configure(protocol=str(mine))
    assert question_text(doc).startswith("what happened?\nReply briefly")


def test_labels_cover_only_the_answer_and_end_of_turn(sample_env, tiny_qwen):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_qwen)
    docs = load_docs("egotextvqa_indoor")[:2]
    examples = [DocDataset(docs, max_frames=2)[i] for i in range(2)]
    collator = AnswerOnlyCollator(processor)
    batch = collator(examples)
    tok = processor.tokenizer
    for i, (doc, example) in enumerate(zip(docs, examples, strict=True)):
        labels = batch["labels"][i]
        kept = labels[labels != IGNORE_INDEX]
        assert tok.decode(kept) == doc["answer"] + "<|im_end|>"
        # Everything before the answer is the exact prompt evaluation builds (video tokens expanded).
        alone = processor(text=[collator.prompt(example.text)], padding=True, return_tensors="pt",
                          **collator.visual_inputs([example]))["input_ids"][0]
        n = len(alone)
        assert batch["input_ids"][i][:n].tolist() == alone.tolist()
        assert (labels[:n] == IGNORE_INDEX).all()
        assert processor.tokenizer.convert_tokens_to_ids("<|video_pad|>") in alone.tolist()


# --------------------------------------------------------------------------- errors before the model loads


def _cli(args: list[str], capsys) -> tuple[int, str]:
    code = egotask_main(["finetune", "--model-id", "/nonexistent/never-loaded", "--output-dir", "/tmp/unused",
                         *args])
    return code, capsys.readouterr().err


def test_cli_unknown_dataset_exits_2_naming_it(sample_env, tmp_path, capsys):
    code, err = _cli(["--split-manifest", str(write_manifest(tmp_path / "s.json")), "--train-datasets", "egotemp"],
                     capsys)
    assert code == 2 and "unknown dataset 'egotemp'" in err


def test_cli_weight_mismatch_exits_2(sample_env, tmp_path, capsys):
    code, err = _cli(["--split-manifest", str(write_manifest(tmp_path / "s.json")), "--train-datasets",
                      "egotextvqa", "egotempo", "--train-weights", "0.7", "0.2", "0.1"], capsys)
    assert code == 2 and "--train-weights: got 3 weight(s) for 2 dataset(s)" in err


def test_cli_missing_training_video_exits_2_naming_the_file(sample_env, tmp_path, capsys):
    videos = tmp_path / "videos"
    shutil.copytree(sample_env["EGOTEXTVQA_VIDEO_DIR"], videos)
    (videos / "EgoTextVQA-Outdoor" / "102.mp4").unlink()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EGOTEXTVQA_VIDEO_DIR", str(videos))
        code, err = _cli(["--split-manifest", str(write_manifest(tmp_path / "s.json")), "--train-datasets",
                          "egotextvqa_outdoor"], capsys)
    assert code == 2 and str(Path("EgoTextVQA-Outdoor") / "102.mp4") in err and "train split" in err


def test_cli_missing_manifest_exits_2(sample_env, tmp_path, capsys):
    code, err = _cli(["--split-manifest", str(tmp_path / "none.json"), "--train-datasets", "egotempo"], capsys)
    assert code == 2 and "split manifest not found" in err
