"""What a non-editable install gets: the wheel built from pyproject.toml holds every module of the source
folders and the package data the tasks and reports read, and setuptools warns about no folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Source folder -> where it installs (pyproject's package-dir).
INSTALLED_AS = {"egotask": "egotask", "model_adapters": "egotask/model_adapters", "finetune": "egotask/finetune",
                "reports": "egotask/reports"}
DATA = ("*.yaml", "_default_template_yaml", "_stub.jsonl", "*.json", "*.j2")


def source_files(patterns: tuple[str, ...]) -> set[str]:
    """Paths the wheel must hold: every file matching ``patterns`` in the source folders, as installed."""
    found = set()
    for folder, target in INSTALLED_AS.items():
        for pattern in patterns:
            for path in (REPO / folder).rglob(pattern):
                if "__pycache__" not in path.parts:
                    found.add(f"{target}/{path.relative_to(REPO / folder).as_posix()}")
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[set[str], str]:
    """Build the wheel with pip, as `pip install .` would, from a copy of the tree (the build writes
    build/ and *.egg-info next to pyproject.toml); returns its members and the build log."""
    pytest.importorskip("setuptools", minversion="68")  # the build backend, used without build isolation
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    for folder in INSTALLED_AS:
        shutil.copytree(REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
                           "--disable-pip-version-check", str(src), "-w", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (built,) = out.glob("egotask-*.whl")
    with zipfile.ZipFile(built) as whl:
        return set(whl.namelist()), proc.stdout + proc.stderr


def test_wheel_holds_every_module_of_the_source_folders(wheel):
    members, _ = wheel
    missing = source_files(("*.py",)) - members
    assert not missing, f"not in the wheel (add their folders to [tool.setuptools] packages): {sorted(missing)}"
    assert {"egotask/cli.py", "egotask/commands/demo.py", "egotask/model_adapters/qwen3vl.py",
            "egotask/reports/render.py", "egotask/finetune/train.py"} <= members
    assert not any(m.startswith(("model_adapters/", "finetune/", "reports/")) for m in members)  # no bare top level


def test_wheel_holds_the_task_yamls_templates_and_default_splits(wheel):
    members, _ = wheel
    data = source_files(DATA)
    assert {"egotask/tasks/_default_template_yaml", "egotask/tasks/_stub.jsonl",
            "egotask/tasks/egotextvqa/egotextvqa_indoor.yaml",
            "egotask/tasks/egotextvqa/egotextvqa_indoor_fullvideo.yaml",
            "egotask/tasks/egotempo_openqa/egotempo_openqa.yaml", "egotask/reports/templates/report.md.j2",
            "egotask/data/splits_default.json"} <= data
    assert not data - members, f"package data not in the wheel: {sorted(data - members)}"


def test_wheel_build_warns_about_no_undeclared_package(wheel):
    _, log = wheel
    assert "Package would be ignored" not in log and "as an importable package" not in log, log
