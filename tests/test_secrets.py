"""No secret given on the command line reaches egotask's screen output: --model_args values whose key
names a secret, and vendor-key-looking strings, are printed as [redacted]."""

from __future__ import annotations

from argparse import Namespace

import pytest

from egotask.judges.secrets import redact_secrets
from egotask.lmms_entry import print_results

KEY = "sk-proj-0123456789abcdefghijklmnop"


def test_the_summary_line_never_shows_an_api_key_given_in_model_args(capsys):
    args = Namespace(model="openai", model_args=f"model_version=gpt-4o,api_key={KEY},max_frames_num=8",
                     limit=4, batch_size=1, output_path=None)
    results = {"results": {"mme": {"alias": "mme", "acc,none": 1.0}}}
    print_results(args, results, lambda data, key="results": f"table of {sorted(data[key])}")
    out = capsys.readouterr().out
    assert KEY not in out
    assert "openai (model_version=gpt-4o,api_key=[redacted],max_frames_num=8), limit: 4" in out


@pytest.mark.parametrize("text, shown", [
    (f"base_url=http://h/v1,api_key={KEY}", "base_url=http://h/v1,api_key=[redacted]"),
    ("pretrained=org/m,hf_token=abc,token=xyz", "pretrained=org/m,hf_token=[redacted],token=[redacted]"),
    ("client_secret=s3,password=p,key=k,max_frames=8", "client_secret=[redacted],password=[redacted],key=[redacted],"
                                                       "max_frames=8"),
    (f"TypeError: __init__(openai_api_key='{KEY}')", "TypeError: __init__(openai_api_key='[redacted]')"),
    (f"Authorization: Bearer {KEY}", "Authorization: Bearer [redacted]"),
    ("monkey=1,author=me,max_pixels=65536", "monkey=1,author=me,max_pixels=65536"),
])
def test_secret_looking_values_are_redacted_and_nothing_else(text, shown):
    assert redact_secrets(text) == shown


def test_the_results_file_never_holds_an_api_key_given_in_model_args(tmp_path):
    from egotask.lmms_outputs import tracker_class

    tracker = tracker_class()(output_path=str(tmp_path))
    tracker.general_config_tracker.model_name_sanitized = "served"
    results = {"config": {"model_args": f"base_url=http://h/v1,api_key={KEY},model=m"}, "results": {}}
    tracker.save_results_aggregated(results=results, samples=None, datetime_str="2026-01-01T00:00:00")
    (written,) = tmp_path.rglob("*_results.json")
    text = written.read_text()
    assert KEY not in text and '"model_args": "base_url=http://h/v1,api_key=[redacted],model=m"' in text
