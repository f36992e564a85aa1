"""`egotask judge agreement RUN --human LABELS.jsonl...`: judges measured against people's labels, on a
constructed label set whose kappas are worked out by hand here; and the labels files it reads."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from egotask.cli import main
from egotask.judges.agreement import cohen_kappa
from egotask.judges.human import CELLS, judge_agreement, kappa_ci, kappa_from_counts
from egotask.labels import HumanLabel, LabelError, append_label, labels_path, read_labels
from egotask.records import SampleRecord, Verdict, write_records

TASK = "egotextvqa_indoor"
N = 10
# Judge A against alice: 4 yes/yes, 1 yes/no, 1 no/yes, 4 no/no. Judge B: 4, 3, 1, 2.
ALICE = ["yes"] * 5 + ["no"] * 5
JUDGE_A = ["yes", "yes", "yes", "yes", "no", "yes", "no", "no", "no", "no"]
JUDGE_B = ["yes", "yes", "yes", "yes", "no", "yes", "yes", "yes", "no", "no"]
# Bob labels the first 8 items only: against alice 4 yes/yes, 1 yes/no (item 4), 1 no/yes (item 5), 2 no/no.
BOB = ["yes", "yes", "yes", "yes", "no", "yes", "no", "no"]


def kappa_by_hand(yy: int, yn: int, ny: int, nn: int) -> Fraction:
    """(p_o - p_e) / (1 - p_e), exactly."""
    n = yy + yn + ny + nn
    observed = Fraction(yy + nn, n)
    first, second = Fraction(yy + yn, n), Fraction(yy + ny, n)
    chance = first * second + (1 - first) * (1 - second)
    return (observed - chance) / (1 - chance)


def run_records(preds: list[str], judge: str) -> list[SampleRecord]:
    """Ten answered questions, two per video, judged ``preds`` by ``judge``."""
    return [SampleRecord(task=TASK, benchmark=TASK, setting="indoor", video_id=f"v{i // 2}", question_id=str(i),
                         question_type="reading", question=f"q{i}", answer=f"a{i}", prediction=f"p{i}",
                         model="m", verdict=Verdict(pred=p, score=5 if p == "yes" else 0, judge=judge,
                                                    judge_model=f"{judge}-model", prompt_version="v1"))
            for i, p in enumerate(preds)]


def write_labels(path: Path, labeller: str, preds: list[str]) -> Path:
    for i, p in enumerate(preds):
        append_label(path, HumanLabel(task=TASK, video_id=f"v{i // 2}", question_id=str(i), pred=p,
                                      score=4 if p == "yes" else 1, labeller=labeller, prediction=f"p{i}"))
    return path


@pytest.fixture
def labelled_run(tmp_path):
    """A run folder judged by two judges (the original and a re-judged records file), and two labels files."""
    run = tmp_path / "run"
    run.mkdir()
    write_records(run_records(JUDGE_A, "judge-a"), run / "a.records.jsonl")
    write_records(run_records(JUDGE_B, "judge-b"), run / "b.records.jsonl")
    alice = write_labels(labels_path(run / "a.records.jsonl", "alice", "m"), "alice", ALICE)
    bob = write_labels(labels_path(run / "a.records.jsonl", "bob", "m"), "bob", BOB)
    return run, alice, bob


def test_kappas_of_a_constructed_label_set_are_the_hand_computed_values(labelled_run):
    run, alice, bob = labelled_run
    # Judge A: p_o = 8/10, both say yes half the time, p_e = 1/2: kappa = (0.8 - 0.5) / 0.5 = 0.6.
    assert kappa_by_hand(4, 1, 1, 4) == Fraction(3, 5)
    # Judge B: p_o = 6/10, judge yes 7/10, alice 5/10, p_e = 0.35 + 0.15 = 0.5: kappa = 0.2.
    assert kappa_by_hand(4, 3, 1, 2) == Fraction(1, 5)
    # Alice and bob on their 8 common items: p_o = 6/8, both yes 5/8, p_e = 34/64: kappa = 7/15.
    assert kappa_by_hand(4, 1, 1, 2) == Fraction(7, 15)

    from egotask.reports.collect import collect_runs

    records = [r for in_run in collect_runs([run]) for r in in_run.records]
    judges, people = judge_agreement(records, read_labels(alice) + read_labels(bob))
    rows = {(a.first.split(" ")[0], a.second): a for a in judges}
    a_alice, b_alice, a_bob = rows[("judge-a", "alice")], rows[("judge-b", "alice")], rows[("judge-a", "bob")]
    assert (a_alice.n, a_alice.agreement, a_alice.kappa) == (10, 0.8, 0.6)
    assert a_alice.confusion == {("yes", "yes"): 4, ("yes", "no"): 1, ("no", "yes"): 1, ("no", "no"): 4}
    assert (a_alice.first_yes_rate, a_alice.second_yes_rate, a_alice.n_videos) == (0.5, 0.5, 5)
    assert (b_alice.n, b_alice.agreement, b_alice.kappa) == (10, 0.6, 0.2)
    assert b_alice.confusion == dict(zip(CELLS, (4, 3, 1, 2), strict=True))
    assert (b_alice.first_yes_rate, b_alice.second_yes_rate) == (0.7, 0.5)
    assert a_bob.n == 8
    # The scores: judge A gives 5 or 0 and alice 4 or 1, in the same order, so the weighted kappa is below 1.
    assert a_alice.score_weighted_kappa is not None and 0 < a_alice.score_weighted_kappa < 1
    (pair,) = people
    assert (pair.first, pair.second, pair.n) == ("alice", "bob", 8)
    assert pair.kappa == pytest.approx(7 / 15, abs=1e-4)
    assert pair.confusion == dict(zip(CELLS, (4, 1, 1, 2), strict=True))
    for row in (a_alice, b_alice, pair):
        low, high = row.kappa_ci
        assert low <= row.kappa <= high and -1 <= low < high <= 1


def test_the_command_prints_each_judge_against_each_person_and_the_people_against_each_other(labelled_run, capsys):
    run, alice, bob = labelled_run
    assert main(["judge", "agreement", str(run), "--human", str(alice), str(bob)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    a_alice = next(line for line in lines if line.startswith("judge-a") and " alice " in line).split()
    # judge, (model, prompt v1), human, n, videos, agree %, kappa, CI (2 parts), yes %, yes %, 4 cells, w-kappa, left
    assert a_alice[5:10] == ["10", "5", "80.0", "0.600", a_alice[9]] and a_alice[9].startswith("[")
    assert a_alice[11:17] == ["50.0", "50.0", "4", "1", "1", "4"]
    b_alice = next(line for line in lines if line.startswith("judge-b") and " alice " in line).split()
    assert b_alice[7:9] == ["60.0", "0.200"] and b_alice[11:17] == ["70.0", "50.0", "4", "3", "1", "2"]
    people = lines[lines.index("People against each other (on the items both labelled):") + 3].split()
    assert people[:6] == ["alice", "bob", "8", "4", "75.0", "0.467"]


def test_the_kappa_ci_resamples_videos_as_a_loop_over_the_same_draws_does():
    first, second = JUDGE_B, ALICE
    clusters = [i // 2 for i in range(N)]
    interval = kappa_ci(first, second, clusters, n_resamples=200, seed=3)
    rng = np.random.default_rng(3)
    draws = rng.integers(0, 5, size=(200, 5))
    kappas = []
    for draw in draws:
        items = [i for c in draw for i in range(N) if clusters[i] == c]
        kappas.append(cohen_kappa([first[i] for i in items], [second[i] for i in items], ["no", "yes"]))
    kappas = np.array(kappas)
    kappas = kappas[~np.isnan(kappas)]
    assert interval == pytest.approx(np.percentile(kappas, [2.5, 97.5], method="inverted_cdf"), abs=1e-12)
    assert np.isnan(kappa_from_counts(np.array([3, 0, 0, 0])))  # both always "yes": undefined, not 1 or 0


def test_a_bad_label_line_is_named_by_file_and_line(labelled_run, capsys):
    run, alice, _ = labelled_run
    with open(alice, "a") as fh:
        fh.write(json.dumps({"task": TASK, "video_id": "v0", "question_id": "0", "pred": "maybe", "score": 3,
                             "labeller": "alice"}) + "\n")
    assert main(["judge", "agreement", str(run), "--human", str(alice)]) == 2
    assert f"{alice}:11: field pred must be \"yes\" or \"no\", got 'maybe'" in capsys.readouterr().err
    bad = alice.with_name("x.labels.jsonl")
    bad.write_text('{"task": "t", "video_id": "v0", "question_id": "0", "pred": "yes", "labeller": "z"}\n{oops\n')
    with pytest.raises(LabelError, match=rf"{bad}:1: missing field\(s\) score"):
        read_labels(bad)
    bad.write_text(json.dumps({"task": TASK, "video_id": "v0", "question_id": "0", "pred": "yes", "score": 6,
                               "labeller": "z"}) + "\n")
    with pytest.raises(LabelError, match=rf"{bad}:1: field score must be an integer from 0 to 5, got 6"):
        read_labels(bad)


def test_labels_of_another_run_or_another_answer_are_refused_naming_the_line(labelled_run, capsys):
    run, _, _ = labelled_run
    other = run / "other.labels.jsonl"
    append_label(other, HumanLabel(task=TASK, video_id="v0", question_id="0", pred="yes", score=5,
                                   labeller="carol", prediction="p0"))
    append_label(other, HumanLabel(task=TASK, video_id="v0", question_id="1", pred="yes", score=5,
                                   labeller="carol", prediction="something else"))
    assert main(["judge", "agreement", str(run), "--human", str(other)]) == 2
    err = capsys.readouterr().err
    assert f"{other}:2: item {TASK}/v0/1 was labelled on the answer 'something else', but the run answered 'p1'" in err
    append_label(other.with_name("missing.labels.jsonl"), HumanLabel(
        task=TASK, video_id="v9", question_id="0", pred="no", score=0, labeller="carol"))
    assert main(["judge", "agreement", str(run), "--human", str(other.with_name("missing.labels.jsonl"))]) == 2
    assert f"missing.labels.jsonl:1: item {TASK}/v9/0 (task/video_id/question_id) is not in the run" in \
        capsys.readouterr().err


def test_a_later_label_of_the_same_item_by_the_same_person_wins(labelled_run):
    run, alice, _ = labelled_run
    append_label(alice, HumanLabel(task=TASK, video_id="v2", question_id="4", pred="no", score=0,
                                   labeller="alice", prediction="p4"))  # item 4: judge A said no, now alice too
    from egotask.reports.collect import collect_runs

    records = [r for in_run in collect_runs([run]) for r in in_run.records]
    judges, _ = judge_agreement(records, read_labels(alice))
    a_alice = next(a for a in judges if a.first.startswith("judge-a"))
    assert (a_alice.n, a_alice.agreement) == (10, 0.9)


def test_labels_files_sit_next_to_the_run_and_are_named_for_the_labeller(tmp_path):
    samples = tmp_path / "20260101_120000_samples_egotextvqa_indoor.jsonl"
    assert labels_path(samples, "Ann Lee") == tmp_path / "20260101_120000_Ann-Lee.labels.jsonl"
    assert labels_path(tmp_path / "legacy.records.jsonl", "bob", "/models/qwen") == \
        tmp_path / "legacy_qwen_bob.labels.jsonl"


def test_labels_pair_with_the_verdicts_of_the_answer_they_were_made_on_when_a_folder_holds_two_models(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    write_records(run_records(JUDGE_A, "judge-a"), run / "a.records.jsonl")  # model m, answers p0..p9
    other = [dataclasses.replace(r, model="m2", prediction=f"other{i}",
                                 verdict=dataclasses.replace(r.verdict, pred="no", score=0))
             for i, r in enumerate(run_records(JUDGE_A, "judge-a"))]
    other[9] = other[9].with_verdict(Verdict.failure(judge="judge-a", judge_model="judge-a-model",
                                                     prompt_version="v1", error="no reply"))
    write_records(other, run / "m2.records.jsonl")
    labels = [HumanLabel(task=TASK, video_id=f"v{i // 2}", question_id=str(i), pred=p, score=3, labeller="carol",
                         prediction=f"other{i}") for i, p in enumerate(ALICE)]
    from egotask.reports.collect import collect_runs

    records = [r for in_run in collect_runs([run]) for r in in_run.records]
    (row,), _ = judge_agreement(records, labels)
    # m2's judge said "no" to all nine it judged; carol said yes to items 0-4 (5 no/yes) and no to 5-8 (4 no/no).
    assert (row.n, row.n_left_out, row.first_yes_rate) == (9, 1, 0.0)
    assert row.confusion == dict(zip(CELLS, (0, 0, 5, 4), strict=True))
    assert row.kappa == 0.0  # the judge used one label only: chance agreement is all its agreement


def test_agreement_needs_both_the_run_and_labels_and_human_goes_with_agreement_only(labelled_run, capsys):
    run, alice, _ = labelled_run
    assert main(["judge", "agreement", str(run)]) == 2
    assert "give the run and its labels" in capsys.readouterr().err
    assert main(["judge", str(run), "--human", str(alice)]) == 2
    assert "--human goes with `egotask judge agreement RUN" in capsys.readouterr().err
