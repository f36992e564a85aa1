"""Issue 24's smaller frictions: the plugins table fits the terminal, a rule-based judge costs $0, one
install form for the app extra, and `egotask finetune` names the --model that loads its output."""

from __future__ import annotations

from pathlib import Path

from egotask.cli import main
from egotask.commands.finetune import adapter_of
from egotask.judges.prices import estimate_cost
from egotask.reports.judging import judging_line

REPO = Path(__file__).resolve().parents[1]


def test_the_plugins_tables_fit_a_100_column_terminal(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert any(line.startswith("model   qwen3vl") for line in lines)


def test_a_judge_that_sent_no_tokens_cost_nothing():
    assert estimate_cost("heuristic", "heuristic", 0, 0)["usd"] == 0.0
    line = judging_line({"mode": "synchronous", "requests": 0, "cache_hits": 0, "tokens_in": 0, "tokens_out": 0,
                         "estimated_cost": estimate_cost("heuristic", "heuristic", 0, 0)})
    assert line.endswith("estimated cost: $0.0000")
    assert estimate_cost("gemini", "no-such-model", 10, 1)["usd"] is None  # unpriced stays unknown


def test_the_app_extra_is_installed_one_way_everywhere():
    source = (REPO / "egotask" / "commands" / "app.py").read_text(encoding="utf-8")
    assert "egotask[app]" not in source and "pip install -e \\\".[app]\\\"" in source
    assert "pip install -e \".[app]\"" in (REPO / "docs" / "app.md").read_text(encoding="utf-8")


def test_finetune_names_the_adapter_of_the_base_checkpoint(tmp_path):
    from egotask.fixtures import build_tiny_qwen3vl

    build_tiny_qwen3vl(tmp_path / "tiny")
    assert adapter_of(str(tmp_path / "tiny")) == "qwen3vl"
    assert adapter_of(str(tmp_path / "missing")) == "<qwen3vl|smolvlm2>"


def test_make_install_filters_the_editable_installation_banner():
    import re
    import subprocess
    import sys

    dry = subprocess.run(["make", "-n", "-B", "install"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    editable = [line for line in dry.splitlines() if re.search(r" install -q -e ", line)]
    assert len(editable) == 2  # egotask itself and the OCR plugin
    setting = 'PYTHONWARNINGS="ignore:Editable installation"'
    assert all(line.startswith(setting) for line in editable), editable
    # The filter matches setuptools' warning as it is raised (its message starts with those words).
    warn = "import warnings; warnings.warn('Editable installation.\\n\\n!!\\nPlease be careful ...')"
    proc = subprocess.run([sys.executable, "-c", warn], capture_output=True, text=True,
                          env={"PYTHONWARNINGS": setting.split("=", 1)[1].strip('"')})
    assert proc.returncode == 0 and proc.stderr == ""
