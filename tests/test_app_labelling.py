"""The app's labelling view: its seeded, stratified sample, and labels written as they are made (driven
with Streamlit's AppTest here; test_app_browser.py drives it with the keyboard in a real browser)."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter

import pytest
from test_app import IN, STAMP, base_records, start_app, write_lmms_output

from egotask.app.labelling import item_key, sample, stratified_order
from egotask.labels import read_labels
from egotask.records import SampleRecord, Verdict


def items(n_by_stratum: dict[tuple[str, str], int]) -> list[SampleRecord]:
    out = []
    for (setting, qtype), n in n_by_stratum.items():
        task = {"indoor": "egotextvqa_indoor", "outdoor": "egotextvqa_outdoor"}[setting]
        out += [SampleRecord(task=task, benchmark=task, setting=setting, video_id=f"{setting}{qtype}{i // 3}",
                             question_id=str(i), question_type=qtype, question="q", answer="a", prediction="p",
                             verdict=Verdict("yes", 5, "heuristic", "heuristic-v1", "heuristic-v1"))
                for i in range(n)]
    return out


def test_every_prefix_of_the_sample_holds_each_stratum_in_proportion():
    sizes = {("indoor", "reading"): 60, ("indoor", "counting"): 30, ("outdoor", "reading"): 10}
    order = stratified_order(items(sizes), seed=7)
    assert len(order) == 100 and len({item_key(r) for r in order}) == 100
    for n in (1, 5, 10, 20, 37, 50, 100):
        counts = Counter((r.setting, r.question_type) for r in order[:n])
        for name, size in sizes.items():
            assert abs(counts[name] - n * size / 100) < 1 + 1e-9, (n, name, counts)


def test_the_sample_depends_on_the_seed_only_not_on_the_order_of_the_records():
    records = items({("indoor", "reading"): 20, ("outdoor", "signs"): 20})
    shuffled = records[:]
    random.Random(1).shuffle(shuffled)
    assert [item_key(r) for r in sample(records, 10, 3)] == [item_key(r) for r in sample(shuffled, 10, 3)]
    assert [item_key(r) for r in sample(records, 10, 3)] != [item_key(r) for r in sample(records, 10, 4)]
    # A larger sample extends the smaller one.
    assert sample(records, 15, 3)[:10] == sample(records, 10, 3)


def test_items_without_an_answer_are_not_offered_for_labelling():
    records = items({("indoor", "reading"): 4})
    records[0] = dataclasses.replace(records[0], generation_error="video could not be decoded")
    assert item_key(records[0]) not in {item_key(r) for r in stratified_order(records)}


@pytest.fixture
def base(tmp_path, sample_env):
    """An lmms-eval output folder of one run (six questions over three tasks), its videos findable."""
    return write_lmms_output(tmp_path / "base_output", base_records())


def test_the_label_view_hides_the_verdict_and_appends_each_label_as_it_is_made(base):
    at = start_app([base], view="Label", label_size="3")
    assert any("Type your name" in i.value for i in at.info)
    at.text_input(key="labeller").input("alice").run()
    assert not at.exception, [e.value for e in at.exception]
    text = " ".join(t.value for t in at.text)
    assert "question:" in text and "prediction:" in text and "verdict" not in text and "hand-made" not in text
    path = base / "models__base-qwen" / f"{STAMP}_alice.labels.jsonl"
    # A score before right/wrong writes nothing and says why.
    at.button(key="label_score_3").click().run()
    assert not path.exists() and any("Press Y (right) or N (wrong) first" in w.value for w in at.warning)
    shown = at.text[0].value
    at.button(key="label_yes").click().run()
    at.button(key="label_score_4").click().run()
    (label,) = read_labels(path)
    assert (label.pred, label.score, label.labeller) == ("yes", 4, "alice")
    assert f"prediction: {label.prediction}" in " ".join(shown.split()) or label.prediction in shown
    assert label.extra["run"].startswith("base-qwen") and label.setting and label.question_type
    assert at.text[0].value != shown  # the next item
    # A new session (a closed and reopened browser) resumes after the labelled item.
    again = start_app([base], view="Label", label_size="3", labeller="alice")
    assert again.text[0].value == at.text[0].value
    assert any("1 of 3 labelled by alice" in (p.text or "") for p in again.get("progress"))
    # Back, and label the first item again: a second line, the later one wins.
    resumed = again.text[0].value
    again.button(key="label_back_button").click().run()
    assert again.text[0].value == shown
    again.button(key="label_forward").click().run()  # F: back to the first unlabelled item, nothing written
    assert again.text[0].value == resumed and len(read_labels(path)) == 1
    again.button(key="label_back_button").click().run()
    again.button(key="label_no").click().run()
    again.button(key="label_score_1").click().run()
    first, second = read_labels(path)
    assert first.key == second.key and (second.pred, second.score) == ("no", 1)
    # A second person writes a second file.
    bob = start_app([base], view="Label", label_size="3", labeller="bob")
    bob.button(key="label_no").click().run()
    bob.button(key="label_score_0").click().run()
    assert [lab.labeller for lab in read_labels(path.with_name(f"{STAMP}_bob.labels.jsonl"))] == ["bob"]
    # The labels files are not runs: the app loads the same run, and no problem about them.
    after = start_app([base])
    assert not [w.value for w in after.warning if "labels" in w.value]
    assert {lab.task for lab in read_labels(path)} <= {IN, "egotextvqa_outdoor", "egotempo_openqa"}
