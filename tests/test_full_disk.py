"""A disk that fills up while egotask writes: every file is whole or untouched, the command exits
non-zero, and the error names the file (a real small tmpfs, filled; skipped where it cannot be mounted)."""

from __future__ import annotations

import json

import pytest
from conftest import fill, run_lmms_eval
from judge_fakes import make_items, write_samples
from test_reports import SMALL, write_records
from test_served_engines import timed_data  # noqa: F401 - a fixture

from egotask.atomic import WriteError, write_text
from egotask.cli import main as egotask_main
from egotask.reports.readme import END, START
from egotask.testing.vendor import FakeVLMServer

RUN = "2026-01-02T03-04-05.123456"


def test_a_write_that_does_not_fit_leaves_the_old_file_and_no_temporary(full_disk):
    disk = full_disk(64)
    target = disk / "kept.txt"
    target.write_text("old\n")
    fill(disk, leave_bytes=4096)
    with pytest.raises(WriteError, match=f"cannot write {target}: No space left on device; the file is left as"):
        write_text(target, "x" * 200_000)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in disk.iterdir()) == [".filler", "kept.txt"]


def test_report_readme_on_a_full_disk_keeps_the_whole_readme_and_fails_naming_it(full_disk, tmp_path, capsys):
    disk = full_disk(128)
    readme = disk / "README.md"
    original = f"# Title\n\n{START}\n{END}\n\n" + "".join(f"tail line {i}\n" for i in range(20))
    readme.write_text(original)
    records = write_records(tmp_path / "small.records.jsonl", SMALL)
    fill(disk, leave_bytes=0)
    status = egotask_main(["report", str(records), "--readme", str(readme), "--no-plots"])
    assert status != 0
    assert f"cannot write {readme}: No space left on device" in capsys.readouterr().err
    assert readme.read_text() == original
    assert sorted(p.name for p in disk.iterdir()) == [".filler", "README.md"]


def test_judge_on_a_full_disk_leaves_no_half_written_samples_and_exits_1(full_disk, capsys):
    disk = full_disk(256)
    folder = disk / "run"
    folder.mkdir()
    samples = write_samples(folder / f"{RUN}_samples_egotextvqa_indoor.jsonl", make_items(120))
    (folder / f"{RUN}_results.json").write_text(json.dumps({"model_name": "m", "config": {}}))
    before = sorted(p.name for p in folder.iterdir())
    stat = samples.stat().st_size
    fill(disk, leave_bytes=stat // 3)  # room for a third of the re-judged samples
    assert egotask_main(["judge", str(folder), "--judge", "heuristic"]) == 1
    err = capsys.readouterr().err
    assert "cannot write" in err and "_rejudged-heuristic" in err and "No space left on device" in err
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing half-written, no temporary left


@pytest.mark.slow
def test_lmms_eval_output_on_a_full_disk_exits_1_naming_the_file_and_leaves_no_cut_file(full_disk, timed_data):  # noqa: F811
    disk = full_disk(256)
    out = disk / "out"
    with FakeVLMServer() as srv:
        fill(disk, leave_bytes=8 * 1024)  # room for a little, not for the samples and results
        run = run_lmms_eval(["--tasks", "egotextvqa_indoor", "--model", "openai_vlm", "--limit", "8",
                             "--model_args", f"base_url={srv.url}/v1,model=m,max_frames=2"], timed_data, out)
    assert run.returncode == 1, run.output
    assert "lmms_eval: exit status 1: could not write" in run.output and "No space left on device" in run.output
    assert "egotextvqa_indoor" in run.output  # the numbers are still shown
    named = run.output.split("could not write ", 1)[1]
    assert str(out) in named
    files = [p for p in out.rglob("*") if p.is_file()]
    assert not [p for p in out.rglob("*") if ".egotask-writing" in str(p) or p.name.endswith(".tmp")]
    for path in files:  # whatever was written is whole
        if path.suffix == ".json":
            json.loads(path.read_text())
        else:
            assert len(path.read_text().splitlines()) == 8 and str(path) not in named


def test_a_verdict_that_cannot_be_stored_stops_judging_at_once_naming_the_cache(full_disk, fake_judge, monkeypatch):
    from egotask import settings
    from egotask.judges import build_judge
    from egotask.judges.cache import CacheStoreError

    disk = full_disk(512)
    monkeypatch.setenv("EGOTASK_CACHE_DIR", str(disk))
    monkeypatch.setenv("EGOTASK_JUDGE_CONCURRENCY", "4")
    server = fake_judge()
    settings.reset()
    judge = build_judge("gemini")
    judge.cache.check_writable()  # what the preflight checks: the disk fills up after it
    fill(disk)
    items = make_items(40)
    with pytest.raises(CacheStoreError, match=f"cannot store a verdict in the judge cache {disk}/judge_cache.sqlite3 "
                                              r"\(database or disk is full\)"):
        judge.judge_many(items[:37])
    assert server.requests <= 4  # only the requests already in flight; none retried, no more sent
    # lmms-eval's process_results threads call judge() per item: each stops before any request.
    with pytest.raises(CacheStoreError):
        judge.judge(items[39])
    assert server.requests <= 4
