"""A misspelt `--tasks` name is refused before lmms-eval indexes its tasks (or torch is imported), with
the nearest of egotask's names; every name lmms-eval itself indexes is accepted."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from egotask.taskindex import UnknownTaskError, check_task_names, known_task_names

PROBE = """
import json, sys
from egotask.lmms_entry import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "imported": [m for m in ("torch", "lmms_eval.tasks", "lmms_eval.evaluator")
                                         if m in sys.modules]}))
"""


def test_a_misspelt_task_gets_a_suggestion_and_exit_2_without_lmms_eval_indexing_its_tasks():
    proc = subprocess.run([sys.executable, "-c", PROBE, "--tasks", "egotextvqa_indor", "--model", "qwen3vl",
                           "--model_args", "pretrained=x"], capture_output=True, text=True, timeout=120)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"rc": 2, "imported": []}, proc.stderr
    assert "unknown task 'egotextvqa_indor'; did you mean egotextvqa_indoor" in proc.stderr
    assert "Try lmms-eval --tasks list" not in proc.stderr and "Traceback" not in proc.stderr


def test_each_unknown_name_is_named_and_known_ones_pass():
    check_task_names(["egotextvqa_indoor", "egotempo_openqa", "egotextvqa", "mme", "list"])
    with pytest.raises(UnknownTaskError) as err:
        check_task_names(["egotextvqa_indoor", "egotempo_opnqa", "zzzz_no_such_task"])
    text = str(err.value)
    assert "unknown task 'egotempo_opnqa'; did you mean egotempo_openqa" in text
    assert "unknown task 'zzzz_no_such_task'." in text and "egotextvqa_indoor'" not in text.split("\n")[0]


def test_a_task_of_an_include_path_is_known(tmp_path):
    (tmp_path / "mine.yaml").write_text("task: my_own_task\ndataset_path: json\n")
    check_task_names(["my_own_task"], [tmp_path])
    with pytest.raises(UnknownTaskError):
        check_task_names(["my_own_task"])


@pytest.mark.slow  # lmms-eval's own task index: about 10-30 s
def test_every_name_lmms_eval_indexes_is_known():
    from lmms_eval.tasks import TaskManager

    from egotask.paths import tasks_path

    indexed = set(TaskManager("ERROR", include_path=[str(tasks_path())]).all_tasks)
    assert len(indexed) > 1000 and indexed - known_task_names() == set()
