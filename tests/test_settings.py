"""One settings object: every variable read in one place, checked with an error naming it, overridden
by flags without touching the environment, and documented by a table generated from it."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from egotask import settings
from egotask.lmms_entry import pop_option
from egotask.settings import Settings, SettingsError, configure, get_settings

REPO = Path(__file__).resolve().parents[1]
LIBRARY = ("egotask", "model_adapters", "finetune", "reports")


def test_defaults_and_typed_values_come_from_the_variables():
    s = Settings.from_env({"EGOTASK_JUDGE_CONCURRENCY": "4", "EGOTASK_JUDGE_RPM": "30", "EGOTASK_CACHE_DIR": "~/c",
                           "EGOTASK_COUNT_FAILED_AS_WRONG": "yes", "EGOTASK_DISABLE_PLUGINS": " a, b ,",
                           "EGOTASK_JUDGE_CACHE": "REFRESH", "EGOTEMPO_VIDEO_DIR": "/clips"})
    # No judge set: the protocol's backend is used (egotask's names none, so gemini; see selected_judge_name).
    assert (s.judge, s.protocol, s.judge_concurrency, s.judge_rpm, s.judge_timeout) == (None, "egotask", 4, 30.0, 60.0)
    assert s.cache_dir == Path.home() / "c" and s.count_failed_as_wrong is True
    assert s.disable_plugins == ("a", "b") and s.judge_cache == "refresh"
    assert s.egotempo_video_dir == Path("/clips") and s.egotextvqa_video_dir is None
    assert Settings.from_env({}) == Settings()


@pytest.mark.parametrize(("var", "value", "says"), [
    ("EGOTASK_JUDGE_CONCURRENCY", "0", "positive integer"),
    ("EGOTASK_JUDGE_CONCURRENCY", "many", "int"),
    ("EGOTASK_JUDGE_TIMEOUT", "nan", "positive number"),
    ("EGOTASK_JUDGE_BACKOFF", "-1", ">= 0"),
    ("EGOTASK_JUDGE_CACHE", "sometimes", "on, off, refresh"),
    ("EGOTASK_MISSING_VIDEOS", "ignore", "error, skip"),
    ("EGOTASK_COUNT_FAILED_AS_WRONG", "maybe", "1/true/yes/on"),
])
def test_a_bad_value_is_an_error_naming_the_variable(var, value, says):
    with pytest.raises(SettingsError, match=rf"^{var}='{value}': .*{says}"):
        Settings.from_env({var: value})


def test_flags_override_fields_without_writing_the_environment(monkeypatch):
    monkeypatch.setenv("EGOTASK_JUDGE_MODEL", "from-env")
    before = dict(os.environ)
    assert get_settings().judge_model == "from-env"
    configure(judge="openai", judge_concurrency=3, judge_model=None)
    assert (get_settings().judge, get_settings().judge_concurrency, get_settings().judge_model) == ("openai", 3, None)
    assert dict(os.environ) == before
    with pytest.raises(SettingsError, match="EGOTASK_JUDGE_CONCURRENCY='0'"):
        configure(judge_concurrency=0)
    with pytest.raises(TypeError, match="unknown setting 'judge_modle'"):
        configure(judge_modle="x")


def test_settings_are_read_once_per_process(monkeypatch):
    assert get_settings().judge == "heuristic"  # conftest's choice
    monkeypatch.setenv("EGOTASK_JUDGE", "gemini")
    assert get_settings().judge == "heuristic"
    settings.reset()
    assert get_settings().judge == "gemini"


def test_a_child_process_gets_the_flags_as_variables(monkeypatch):
    configure(judge_cache="off", count_failed_as_wrong=True, disable_plugins=("x", "y"), egotempo_video_dir=None)
    env = settings.child_env(EXTRA="1")
    assert (env["EGOTASK_JUDGE_CACHE"], env["EGOTASK_COUNT_FAILED_AS_WRONG"], env["EGOTASK_DISABLE_PLUGINS"]) == \
        ("off", "1", "x,y")
    assert "EGOTEMPO_VIDEO_DIR" not in env and env["EXTRA"] == "1"
    assert Settings.from_env(env) == get_settings()


def test_the_settings_page_is_the_generated_one():
    page = (REPO / "docs" / "reference" / "settings.md").read_text(encoding="utf-8")
    assert settings.variables_markdown() in page, (
        "docs/reference/settings.md differs from egotask/settings.py; regenerate it with\n"
        "  python -m egotask.reference_docs")
    assert all(f"| `{var}` |" in page for var in settings.VARIABLES)


def _environ_uses(path: Path) -> list[int]:
    """Lines of a module that touch os.environ or os.getenv."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv", "unsetenv")
            and isinstance(node.value, ast.Name) and node.value.id == "os"]


def test_only_the_settings_module_reads_the_environment():
    found = {str(p.relative_to(REPO)): lines for folder in LIBRARY for p in sorted((REPO / folder).rglob("*.py"))
             if (lines := _environ_uses(p))}
    assert set(found) == {"egotask/settings.py"}, found


def test_lmms_entry_pops_its_own_options_and_keeps_the_rest():
    argv = ["--tasks", "t", "--judge", "gemini", "--judge-cache=off", "--model", "m", "--judge", "heuristic"]
    rest, judge = pop_option(argv, "--judge")
    assert judge == "heuristic" and rest == ["--tasks", "t", "--judge-cache=off", "--model", "m"]
    rest, cache = pop_option(rest, "--judge-cache")
    assert cache == "off" and rest == ["--tasks", "t", "--model", "m"]
    assert pop_option(["--judgement", "x"], "--judge") == (["--judgement", "x"], None)
    with pytest.raises(SystemExit, match="--judge needs a value"):
        pop_option(["--tasks", "t", "--judge"], "--judge")


def test_lmms_entry_rejects_a_bad_judge_cache_flag_before_loading_anything(capsys):
    from egotask.lmms_entry import main

    assert main(["--tasks", "egotextvqa_indoor", "--model", "x", "--judge-cache", "sometimes"]) == 2
    assert "EGOTASK_JUDGE_CACHE='sometimes': must be one of on, off, refresh" in capsys.readouterr().err
