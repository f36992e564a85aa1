"""The table `lmms_eval` prints after a run is read with the run's samples, as `egotask report` reads
its files: the footer says what the model saw from the records' `seen`, and CIs only when there are any."""

from __future__ import annotations

import argparse

from egotask import scoring
from egotask.lmms_entry import print_results
from egotask.records import SampleRecord, Verdict
from egotask.reports.tables import NOT_MEASURED, REAL_TIME


def demo_like_run() -> tuple[dict, dict]:
    """Four indoor questions asked at 4 s, each shown frames from 0.5 s to 3.5 s, as lmms-eval returns
    them: the results dict (summary under ``details,none``) and the samples (records under ``details``)."""
    verdict = Verdict(pred="yes", score=5, judge="heuristic", judge_model="heuristic", prompt_version="heuristic-v2")
    records = [SampleRecord(task="egotextvqa_indoor", benchmark="egotextvqa_indoor", setting="indoor",
                            video_id=f"v{i % 2}", question_id=str(i), question_type="kitchen", question="q?",
                            answer="a", prediction="a", verdict=verdict, timestamp=4.0, visible=(0.0, 4.0),
                            seen=(0.5, 3.5)) for i in range(4)]
    summary = scoring.summarize(records, count_failed_as_wrong=False)
    results = {"results": {"egotextvqa_indoor": {"alias": "egotextvqa_indoor", "accuracy,none": 1.0,
                                                 "details,none": summary}},
               "config": {"model": "ocr_baseline", "limit": None}, "model_name": "ocr_baseline"}
    samples = {"egotextvqa_indoor": [{"doc_id": i, "details": r.to_dict()} for i, r in enumerate(records)]}
    return results, samples


def printed(capsys, samples: dict | None) -> str:
    results, logged = demo_like_run()
    args = argparse.Namespace(model="ocr_baseline", model_args="", limit=None, batch_size=1, output_path=None)
    print_results(args, results, lambda res, key="results": "", logged if samples is not None else None)
    return capsys.readouterr().out


def test_the_footer_after_a_run_says_real_time_from_the_samples_seen(capsys):
    out = printed(capsys, samples={})
    assert REAL_TIME in out and NOT_MEASURED.strip(" ()") not in out
    assert "95% CIs" in out and "[100.0, 100.0]" in out  # the CIs the footer speaks of are in the table


def test_a_run_without_logged_samples_mentions_no_cis_it_does_not_show(capsys):
    out = printed(capsys, samples=None)
    assert "95% CI" not in out
