"""A disk that fills up while egotask writes: every file is whole or untouched, the command exits
non-zero, and the error names the file (a real small tmpfs, filled; skipped where it cannot be mounted)."""

from __future__ import annotations

import json

import pytest
from conftest import fill
from judge_fakes import make_items, write_samples
from test_reports import SMALL, write_records

from egotask.atomic import WriteError, write_text
from egotask.cli import main as egotask_main
from egotask.reports.readme import END, START

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
