"""The plugin system: built-in and third-party plugins load alike through the `egotask` entry
points; a plugin installed at test time with pip is found; a broken one is named and skipped;
EGOTASK_DISABLE_PLUGINS blocks by name; an unknown --model lists egotask's adapters."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from wheels import build_wheel

from egotask import plugins
from egotask.lmms_bridge import UnknownModelError, check_model_name, model_manifests

EXTERNAL_PLUGIN = '''
from egotask.hookspecs import JudgeBackend, ModelAdapter, hookimpl

@hookimpl
def egotask_model_adapters():
    return [ModelAdapter("echo_frames", "extplug.model.Echo", "answers with its frame count")]

@hookimpl
def egotask_judges():
    from egotask.judges.heuristic import HeuristicJudge
    return [JudgeBackend("always_heuristic", HeuristicJudge, "the heuristic judge, again", llm=False)]
'''
# A plugin whose import fails, and one whose hook raises: neither may take the others down.
BROKEN_IMPORT = "import a_library_that_is_not_installed  # noqa\n"
BROKEN_HOOK = '''
from egotask.hookspecs import hookimpl

@hookimpl
def egotask_model_adapters():
    raise RuntimeError("adapter list unavailable")
'''


@pytest.fixture(autouse=True)
def fresh_plugin_manager():
    plugins.get_plugin_manager.cache_clear()
    yield
    plugins.get_plugin_manager.cache_clear()


def pip_install(wheel: Path, target: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--disable-pip-version-check", "--target", str(target), str(wheel)], check=True)
    return target


@pytest.fixture(scope="module")
def external_site(tmp_path_factory) -> Path:
    """A third-party plugin distribution, installed with pip into its own folder."""
    tmp = tmp_path_factory.mktemp("external")
    wheel = build_wheel(tmp / "dist", "egotask-echo", {"extplug/__init__.py": EXTERNAL_PLUGIN},
                        {"egotask": {"echo": "extplug"}})
    return pip_install(wheel, tmp / "site")


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("broken")
    wheel = build_wheel(tmp / "dist", "egotask-broken", {"broken_import.py": BROKEN_IMPORT,
                                                         "broken_hook.py": BROKEN_HOOK},
                        {"egotask": {"needs_gpu_lib": "broken_import", "flaky_hook": "broken_hook"}})
    return pip_install(wheel, tmp / "site")


def egotask_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "egotask.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_plugins_command_lists_builtin_adapters_the_ocr_plugin_and_judges():
    proc = egotask_cli("plugins", env={"COLUMNS": "400"})  # wide enough that no cell wraps
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[1]: line for line in proc.stdout.splitlines()[2:] if line.strip()}
    assert rows["qwen3vl"].split()[0] == "model" and " egotask " in rows["qwen3vl"]
    assert rows["smolvlm2"].split()[0] == "model" and " egotask " in rows["smolvlm2"]
    assert " egotask-ocr " in rows["ocr_baseline"]  # a separate distribution, found like any other
    assert rows["heuristic"].split()[0] == "judge"
    # And each adapter's --model_args, required ones marked, with an example.
    args = {line.split()[0]: line for line in proc.stdout.split("--model_args (`", 1)[1].splitlines()[3:] if line}
    assert args["qwen3vl"].split()[1:3] == ["pretrained", "(required),"] and "max_frames" in args["qwen3vl"]
    assert "pretrained=Qwen/Qwen3-VL-2B-Instruct" in args["qwen3vl"]
    assert "min_side" in args["ocr_baseline"] and "required" not in args["ocr_baseline"]
    # And the environment variables each judge reads, as its backend declares them.
    env = {line.split()[0]: line for line in proc.stdout.split("Each judge's settings", 1)[1].splitlines()[3:] if line}
    assert "GEMINI_API_KEY" in env["gemini"] and "GOOGLE_GEMINI_BASE_URL" in env["gemini"]
    assert "OPENAI_BASE_URL" in env["openai"] and env["heuristic"].split()[1:] == ["(none", "declared)"]


def test_lmms_eval_without_pretrained_says_what_to_pass_before_loading_anything(sample_env, lmms_eval):
    run = lmms_eval(["--tasks", "egotextvqa_indoor", "--model", "qwen3vl", "--model_args", "max_frames=2"], sample_env)
    assert run.returncode != 0 and "Traceback" not in run.output
    assert ("--model qwen3vl needs pretrained= in --model_args, for example --model_args "
            "pretrained=Qwen/Qwen3-VL-2B-Instruct,max_frames=32") in run.output
    run = lmms_eval(["--tasks", "egotextvqa_indoor", "--model", "smolvlm2", "--model_args", "pretrained=x,max_frame=2"],
                    sample_env)
    assert run.returncode != 0 and "unknown --model_args ['max_frame']" in run.output and "max_frames" in run.output


def test_builtin_adapters_register_through_the_same_entry_point_group():
    from importlib.metadata import entry_points

    names = {ep.name: ep.dist.name for ep in entry_points(group=plugins.ENTRY_POINT_GROUP)}
    assert names["egotask_qwen3vl"] == names["egotask_smolvlm2"] == "egotask"
    assert names["egotask_ocr"] == "egotask-ocr"
    assert {"egotask_qwen3vl", "egotask_smolvlm2", "egotask_ocr"} <= {
        name for name, _ in plugins.get_plugin_manager().list_name_plugin()}


def test_plugin_installed_with_pip_at_test_time_is_found_and_bridged_to_lmms_eval(external_site, monkeypatch):
    monkeypatch.syspath_prepend(str(external_site))
    provided = {p.item.name: p for p in plugins.provided_adapters()}
    assert provided["echo_frames"].distribution == "egotask-echo" and provided["echo_frames"].plugin == "echo"
    assert "always_heuristic" in plugins.judge_backends()
    manifests = {m.model_id: m for m in model_manifests()}
    assert manifests["echo_frames"].simple_class_path == "extplug.model.Echo"
    assert {"qwen3vl", "smolvlm2", "ocr_baseline"} <= set(manifests)
    # And from a fresh process, the way a user would see it.
    proc = egotask_cli("plugins", env={"PYTHONPATH": str(external_site)})
    assert "echo_frames" in proc.stdout and "egotask-echo" in proc.stdout


def test_broken_plugins_are_named_in_a_warning_and_the_others_still_load(broken_site, monkeypatch):
    monkeypatch.syspath_prepend(str(broken_site))
    with pytest.warns(plugins.PluginWarning) as caught:
        adapters = plugins.model_adapters()
    messages = "\n".join(str(w.message) for w in caught)
    assert "'needs_gpu_lib'" in messages and "a_library_that_is_not_installed" in messages
    assert "'flaky_hook'" in messages and "adapter list unavailable" in messages
    assert {"qwen3vl", "smolvlm2", "ocr_baseline"} <= set(adapters)
    proc = egotask_cli("plugins", env={"PYTHONPATH": str(broken_site)})
    assert proc.returncode == 0 and "qwen3vl" in proc.stdout
    assert "egotask plugin 'needs_gpu_lib'" in proc.stderr and "failed to load" in proc.stderr


def test_disable_plugins_blocks_the_named_plugins_only(monkeypatch):
    monkeypatch.setenv(plugins.DISABLE_VAR, "egotask_ocr, egotask_smolvlm2")
    adapters = plugins.model_adapters()
    assert "qwen3vl" in adapters and "ocr_baseline" not in adapters and "smolvlm2" not in adapters
    assert "heuristic" in plugins.judge_backends()


def test_unknown_adapter_name_lists_egotasks_adapters():
    with pytest.raises(UnknownModelError) as err:
        check_model_name("qwen3-vI")
    message = str(err.value)
    assert "unknown --model 'qwen3-vI'" in message
    for name in ("qwen3vl", "smolvlm2", "ocr_baseline"):
        assert f"  {name} " in message
    assert "Did you mean" in message and "qwen3-vl" in message
    check_model_name("qwen3vl")  # ours, and lmms-eval's own, pass
    check_model_name("qwen2_5_vl")


def test_lmms_eval_with_unknown_model_exits_non_zero_before_loading_anything(sample_env, lmms_eval):
    run = lmms_eval(["--tasks", "egotextvqa_indoor", "--model", "smolvlm3", "--limit", "1"], sample_env)
    assert run.returncode != 0
    assert "unknown --model 'smolvlm3'" in run.output and "smolvlm2" in run.output
    assert "Traceback" not in run.output


MISSPELLED_HOOK = '''
from egotask.hookspecs import ModelAdapter, hookimpl

@hookimpl
def egotask_model_adaptors():  # "adaptors": no such hook
    return [ModelAdapter("never_listed", "x.Y", "should have been listed")]
'''


def test_a_plugin_with_a_misspelled_hook_is_named_in_a_warning(tmp_path, monkeypatch):
    wheel = build_wheel(tmp_path / "dist", "egotask-typo", {"typoplug/__init__.py": MISSPELLED_HOOK},
                        {"egotask": {"typo": "typoplug"}})
    monkeypatch.syspath_prepend(str(pip_install(wheel, tmp_path / "site")))
    with pytest.warns(plugins.PluginWarning) as caught:
        adapters = plugins.model_adapters()
    messages = "\n".join(str(w.message) for w in caught)
    assert "plugin 'typo' implements 'egotask_model_adaptors', which is no egotask hook" in messages
    assert "egotask_model_adapters" in messages and "never_listed" not in adapters
