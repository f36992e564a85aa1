"""Weights that are not there end in a few lines naming `pretrained=` and how to get them, not in
transformers' 90-line traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from egotask.lmms_bridge import MissingWeightsError, check_model_weights, check_weights, weights_hint


def test_a_path_that_does_not_exist_is_named_before_anything_loads(tmp_path):
    with pytest.raises(MissingWeightsError, match=rf"pretrained={tmp_path}/nope: no such folder"):
        check_model_weights("qwen3vl", f"pretrained={tmp_path}/nope,max_frames=4")


def test_a_hub_id_missing_from_the_cache_while_offline_says_how_to_download_it(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(MissingWeightsError) as err:
        check_weights("someone/NoSuchModel-2B")
    text = str(err.value)
    assert "pretrained=someone/NoSuchModel-2B: not a local folder and not in the Hugging Face cache" in text
    assert "hf download someone/NoSuchModel-2B" in text and "HF_HUB_OFFLINE" in text


def test_transformers_load_errors_become_one_line_naming_pretrained():
    exc = OSError("We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find them in "
                  "the cached files.\nCheck your internet connection or see how to run the library in offline mode.")
    hint = weights_hint(exc, "pretrained=Qwen/Qwen3-VL-2B-Instruct,max_frames=8")
    assert hint.startswith("the weights of pretrained=Qwen/Qwen3-VL-2B-Instruct could not be loaded (We couldn't")
    assert "hf download Qwen/Qwen3-VL-2B-Instruct" in hint
    assert weights_hint(ValueError("other"), "pretrained=x") is None


PROBE = """
import json, sys
from egotask.lmms_entry import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "torch": "torch" in sys.modules}))
"""


def test_lmms_eval_with_missing_weights_stops_in_a_few_lines_before_loading(sample_env, tmp_path):
    proc = subprocess.run([sys.executable, "-c", PROBE, "--tasks", "egotextvqa_indoor", "--model", "qwen3vl",
                           "--model_args", f"pretrained={tmp_path}/weights/none", "--judge", "heuristic"],
                          capture_output=True, text=True, env={**os.environ, **sample_env}, timeout=300)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"rc": 1, "torch": False}, proc.stderr
    assert f"pretrained={tmp_path}/weights/none: no such folder" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) <= 3
