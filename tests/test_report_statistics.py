"""Numbers a reviewer accepts: clustered bootstrap CIs (by video), paired comparisons with McNemar's
exact test, both failure conventions, and runs with pending verdicts refused."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from egotask.cli import main
from egotask.records import SampleRecord, Verdict
from egotask.reports.collect import PendingVerdicts, collect_runs
from egotask.reports.paired import compare_records, mcnemar_exact
from egotask.reports.render import render_markdown
from egotask.reports.stats import bootstrap_ci, cluster_bootstrap_ci, video_cluster
from egotask.reports.tables import BootstrapOptions, record_cis

JUDGE = {"judge": "gemini", "judge_model": "gemini-2.5-flash", "prompt_version": "v1"}


def rec(video: str, qid: str, pred: str | None, score: int | None, *, model: str = "model-a",
        qtype: str = "kitchen", setting: str = "indoor") -> SampleRecord:
    benchmark = {"indoor": "egotextvqa_indoor", "egotempo": "egotempo_openqa"}[setting]
    verdict = Verdict(pred, score, **JUDGE) if pred else Verdict.failure(error="unparseable reply", **JUDGE)
    return SampleRecord(task=benchmark, benchmark=benchmark, setting=setting, video_id=video, question_id=qid,
                        question_type=qtype, question="q?", answer="a", prediction="p", verdict=verdict,
                        timestamp=1.0, visible=(0.0, 1.0), model=model)


def write(path: Path, records: list[SampleRecord]) -> Path:
    path.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in records))
    return path


def width(ci: tuple[float, float]) -> float:
    return ci[1] - ci[0]


# --------------------------------------------------------------------------- clustered intervals

def test_clustered_interval_widens_by_the_design_effect_when_a_videos_questions_share_one_verdict():
    """300 videos of m = 4 questions; half the videos get "yes" on every question, half "no". With an
    intra-video correlation of 1 the design effect is 1 + (m - 1) = 4: the variance of the mean is 4 times
    the independent one, so the clustered interval is sqrt(4) = 2 times as wide."""
    m, videos = 4, 300
    records = [rec(f"v{v}", str(q), "yes" if v % 2 else "no", 5 if v % 2 else 0)
               for v in range(videos) for q in range(m)]
    values = [float(r.verdict.pred == "yes") for r in records]
    opts = BootstrapOptions(n_resamples=4000, seed=1)
    naive = bootstrap_ci(values, opts.n_resamples, opts.seed)
    cis = record_cis(records, opts)
    clustered = cis["accuracy"]
    assert cis["n_clusters"] == videos
    assert width(clustered) / width(naive) == pytest.approx(math.sqrt(m), rel=0.08)
    # Against the normal approximation: 2 * 1.96 * sqrt(p (1 - p) / k) over k videos, and over n questions.
    assert width(clustered) == pytest.approx(2 * 1.96 * math.sqrt(0.25 / videos), rel=0.08)
    assert width(naive) == pytest.approx(2 * 1.96 * math.sqrt(0.25 / (videos * m)), rel=0.08)
    # Seeded: the same interval every time.
    assert record_cis(records, opts)["accuracy"] == clustered


def test_with_one_question_per_video_the_clustered_interval_is_the_question_level_one():
    values = [1.0, 0.0, 1.0, 1.0, 0.0] * 20
    assert cluster_bootstrap_ci(values, list(range(100)), 500, 3) == bootstrap_ci(values, 500, 3)
    assert cluster_bootstrap_ci([1.0, 0.0], ["v", "v"]) is None  # one video: no spread to resample


def test_egotempo_clips_of_one_ego4d_video_are_one_cluster():
    uid = "0d270946-95b0-4a2c-8c9d-1f2e3a4b5c6d"
    a = rec(f"{uid}_0.0_60.0", "1", "yes", 5, setting="egotempo")
    b = rec(f"{uid}_30.0_90.0", "2", "yes", 5, setting="egotempo")
    assert video_cluster(a) == video_cluster(b) == ("egotempo", uid)
    assert video_cluster(rec("odd-clip", "3", "no", 0, setting="egotempo")) == ("egotempo", "odd-clip")


def test_the_report_names_the_method_and_the_number_of_videos(tmp_path):
    records = [rec(f"v{v}", str(q), "yes" if (v + q) % 3 else "no", 4) for v in range(10) for q in range(3)]
    text = render_markdown(collect_runs([write(tmp_path / "r.records.jsonl", records)]),
                           opts=BootstrapOptions(n_resamples=200))
    assert "| model-a | egotextvqa_indoor | indoor | 10 | 66.7 |" in text  # 30 questions, 10 videos
    assert "95% CIs: percentile cluster bootstrap over videos, 200 resamples, seed 0" in text
    assert "Videos gives the number of clusters" in text


# --------------------------------------------------------------------------- paired comparisons

def paired_runs() -> tuple[list[SampleRecord], list[SampleRecord]]:
    """40 videos of 3 questions. A is right on all; B is wrong on the first question of videos 0-9 and
    right elsewhere, except two questions where B alone is right (A wrong)."""
    a, b = [], []
    for v in range(40):
        for q in range(3):
            qtype = "kitchen" if v < 20 else "shopping"
            a_right = not (v == 30 and q < 2)
            b_right = not (v < 10 and q == 0)
            a.append(rec(f"v{v}", str(q), "yes" if a_right else "no", 5 if a_right else 1, qtype=qtype))
            b.append(rec(f"v{v}", str(q), "yes" if b_right else "no", 5 if b_right else 1, qtype=qtype,
                         model="model-b"))
    return a, b


def test_paired_comparison_counts_discordant_pairs_and_gives_the_exact_mcnemar_p():
    a, b = paired_runs()
    result = compare_records(a, b, BootstrapOptions(n_resamples=1000))
    o = result.overall
    assert (o.n, o.n_clusters, o.a_only, o.b_only, o.both_right, o.both_wrong) == (120, 40, 10, 2, 108, 0)
    # Exact two-sided binomial on 12 discordant pairs: 2 * (C(12,0) + C(12,1) + C(12,2)) / 2^12
    assert o.mcnemar_p == pytest.approx(2 * (1 + 12 + 66) / 4096)
    assert o.accuracy_diff == pytest.approx(8 / 120) and o.score_diff == pytest.approx(8 * 4 / 120)
    assert o.accuracy_diff_ci[0] < o.accuracy_diff < o.accuracy_diff_ci[1]
    assert result.same_questions and set(result.by_type) == {"kitchen", "shopping"}
    kitchen, shopping = result.by_type["kitchen"], result.by_type["shopping"]
    assert (kitchen.a_only, kitchen.b_only, shopping.a_only, shopping.b_only) == (10, 0, 0, 2)
    assert kitchen.accuracy_significant and not shopping.accuracy_significant
    assert mcnemar_exact(0, 0) == 1.0 and mcnemar_exact(3, 3) == pytest.approx(1.0)


def test_paired_interval_resamples_videos_so_it_is_wider_than_one_over_questions():
    """B's misses come in whole videos (all 3 questions of videos 0-9): the paired differences of a video
    move together, so resampling videos gives a wider interval than resampling questions."""
    a = [rec(f"v{v}", str(q), "yes", 5) for v in range(40) for q in range(3)]
    b = [rec(f"v{v}", str(q), "no" if v < 10 else "yes", 0 if v < 10 else 5, model="model-b")
         for v in range(40) for q in range(3)]
    opts = BootstrapOptions(n_resamples=3000, seed=2)
    clustered = compare_records(a, b, opts).overall.accuracy_diff_ci
    diffs = [float(x.verdict.pred == "yes") - float(y.verdict.pred == "yes") for x, y in zip(a, b, strict=True)]
    naive = bootstrap_ci(diffs, opts.n_resamples, opts.seed)
    assert width(clustered) / width(naive) == pytest.approx(math.sqrt(3), rel=0.12)


def test_pairs_either_run_failed_on_are_left_out_and_counted():
    a = [rec("v1", "1", "yes", 5), rec("v2", "1", None, None), rec("v3", "1", "no", 1)]
    b = [rec("v1", "1", "no", 0), rec("v2", "1", "yes", 5), rec("v3", "1", "yes", 4), rec("v4", "1", "yes", 5)]
    result = compare_records(a, b)
    assert (result.n_a, result.n_b, result.n_common, result.overall.n, result.overall.n_left_out) == (3, 4, 3, 2, 1)
    assert not result.same_questions and (result.overall.a_only, result.overall.b_only) == (1, 1)


def test_report_compares_runs_holding_the_same_questions_and_marks_differences_whose_ci_excludes_zero(tmp_path):
    a, b = paired_runs()
    path = write(tmp_path / "both.records.jsonl", a + b)
    other = write(tmp_path / "other.records.jsonl", [rec("w1", "1", "yes", 5, model="model-c")])  # other questions
    text = render_markdown(collect_runs([path, other]), opts=BootstrapOptions(n_resamples=500))
    row = next(line for line in text.splitlines() if line.startswith("| indoor | model-a | model-b |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3:8] == ["120", "40", "98.3", "91.7", "+6.7†"] and cells[11:] == ["0.039", "10", "2"]
    assert "model-c" not in row and "| indoor | model-a | model-c |" not in text  # not the same questions
    assert "| kitchen | +16.7† | +0.67† |" in text and "| shopping | -3.3 | -0.13 |" in text
    assert "† the paired 95% CI excludes 0." in text


def test_compare_option_pairs_the_runs_of_two_inputs_on_their_common_questions(tmp_path, capsys):
    a, b = paired_runs()
    first = write(tmp_path / "a.records.jsonl", a)
    second = write(tmp_path / "b.records.jsonl", b[:90])  # B holds 90 of A's 120 questions
    assert main(["report", str(first), str(second), "--compare", "--format", "console"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("indoor "))
    assert "model-a" in line and "model-b" in line and "90 of 120 / 90" in line and "+11.1†" in line
    assert main(["report", str(first), "--compare"]) == 2
    assert "--compare takes exactly two inputs" in capsys.readouterr().err
    elsewhere = write(tmp_path / "c.records.jsonl", [rec("w1", "1", "yes", 5, model="model-c")])
    assert main(["report", str(first), str(elsewhere), "--compare"]) == 2
    assert "share no question" in capsys.readouterr().err


def test_a_run_reached_through_a_folder_and_its_subfolder_counts_once(tmp_path, capsys):
    a, b = paired_runs()
    (tmp_path / "out" / "sub").mkdir(parents=True)
    write(tmp_path / "out" / "a.records.jsonl", a)
    write(tmp_path / "out" / "sub" / "b.records.jsonl", b)
    out, sub = tmp_path / "out", tmp_path / "out" / "sub"
    assert [run.model for run in collect_runs([out, sub])] == ["model-a", "model-b"]
    assert "already read through another input; counted once" in capsys.readouterr().err
    # --compare out out/sub: model-b is B's only, so A's model-a is compared with it, never model-b with itself.
    assert main(["report", str(out), str(sub), "--compare", "--format", "console"]) == 0
    captured = capsys.readouterr()
    pairs = [x for x in captured.out.splitlines() if x.startswith("indoor ")]
    assert len(pairs) == 1 and "model-a" in pairs[0] and "model-b" in pairs[0]
    assert "it is compared as B only" in captured.err


# --------------------------------------------------------------------------- pending verdicts

def test_a_run_with_pending_verdicts_is_refused_not_scored(tmp_path, capsys):
    pending = Verdict.deferred(**JUDGE)
    records = [rec("v1", "1", "yes", 5), SampleRecord(**{**rec("v2", "1", None, None).__dict__, "verdict": pending})]
    path = write(tmp_path / "deferred.records.jsonl", records)
    with pytest.raises(PendingVerdicts, match=r"model-a/egotextvqa_indoor: 1 of 2 verdicts pending"):
        collect_runs([path])
    assert main(["report", str(path)]) == 2
    err = capsys.readouterr().err
    assert "--judge-mode defer" in err and f"egotask judge {tmp_path} --batch" in err
