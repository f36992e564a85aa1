"""Evaluation protocols: the prompt, the answer extraction and the judge are the benchmark's, named and
recorded. The official releases' protocols are imported from stand-in release folders in their formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_lmms_eval
from protocol_standins import (
    EGOTEMPO_JUDGE_MODEL,
    JUDGE_MODEL,
    MARKER,
    write_egotempo_release,
    write_egotextvqa_release,
)

from egotask import settings
from egotask.cli import main as egotask_main
from egotask.judges import JudgeItem, build_judge
from egotask.judges.cache import VerdictCache, cache_key
from egotask.protocols import ProtocolError, load_protocol, read_protocol
from egotask.protocols.official import import_releases
from egotask.records import SampleRecord, Verdict, write_records
from egotask.reports.collect import collect_runs
from egotask.reports.paper import load_paper, protocol_differences
from egotask.settings import configure
from egotask.tasklib import doc_to_text

EGOTASK_YAML = Path(__file__).resolve().parents[1] / "egotask" / "protocols" / "egotask.yaml"


@pytest.fixture
def imported(tmp_path, monkeypatch):
    """Both stand-in releases imported into this test's cache folder; returns the written protocols."""
    monkeypatch.chdir(tmp_path)  # a stand-in's code, if anything ran it, would write its marker here
    a, b = write_egotextvqa_release(tmp_path / "EgoTextVQA"), write_egotempo_release(tmp_path / "egotempo")
    assert egotask_main(["protocol", "import", str(a), str(b)]) == 0
    return {name: load_protocol(name) for name in ("egotextvqa-official", "egotempo-official")}


# --------------------------------------------------------------------------- the protocol file

def test_egotask_protocol_is_the_default_and_round_trips_through_its_yaml(tmp_path):
    protocol = load_protocol("egotask")
    assert protocol.path == EGOTASK_YAML and protocol.judge.prompt_version == "egotask-judge-v2"
    assert protocol.prompts[0].render("What does the sign say?").startswith("What does the sign say?\nAnswer briefly")
    assert "say that you cannot see it" in protocol.prompts[0].template
    from egotask.protocols import dump_protocol

    (tmp_path / "copy.yaml").write_text(dump_protocol(protocol))
    copy = read_protocol(tmp_path / "copy.yaml")
    assert (copy.prompts, copy.judge) == (protocol.prompts, protocol.judge)
    assert copy.judge.sha256 == protocol.judge.sha256


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["prompts"][0].update(template="no placeholder"), "prompts[0]: field template must hold {question}"),
    (lambda d: d["judge"].update(reply="xml"), "judge: field reply: must be one of json-schema, free"),
    (lambda d: d["judge"].update(user="{question} only"), "judge: field user must hold {prediction}"),
    (lambda d: d.update(colour="blue"), "unknown field(s) colour"),
    (lambda d: d["judge"].update(lowercase="yes"), "judge: field lowercase must be true or false"),
    (lambda d: d.pop("prompts"), "missing field prompts"),
])
def test_protocol_file_errors_name_the_file_and_field(tmp_path, edit, message):
    import yaml

    data = yaml.safe_load(EGOTASK_YAML.read_text())
    edit(data)
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProtocolError) as err:
        read_protocol(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value)


def test_a_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nprompts: [\n  - oops: {\n")
    with pytest.raises(ProtocolError, match=rf"{path}, line \d+: not valid YAML"):
        read_protocol(path)


def test_unknown_protocol_names_what_exists_and_how_to_import_the_official_ones():
    with pytest.raises(ProtocolError) as err:
        load_protocol("egotextvqa-official")
    text = str(err.value)
    assert "available: egotask" in text and "git clone https://github.com/zhousheng97/EgoTextVQA" in text
    assert "egotask protocol import PATH" in text


def test_answer_extraction_takes_the_text_after_the_last_answer_prefix(imported):
    gpt4o, qwen = imported["egotextvqa-official"].prompts
    assert gpt4o.extract("The frames show a shop.\nAnswer: Bakery") == "Bakery"
    assert gpt4o.extract("answer: first guess. Answer:  Sunrise Bakery ") == "Sunrise Bakery"
    assert gpt4o.extract("Unanswerable: the sign is blurred") == "Unanswerable: the sign is blurred"
    assert qwen.answer_prefix is None and qwen.extract("Answer: x") == "Answer: x"


def test_prompt_family_follows_the_model_name_or_the_setting(imported):
    protocol = imported["egotextvqa-official"]
    assert protocol.prompt_for(None, "openai_vlm base_url=http://x/v1,model=gpt-4o-2024-08-06").family == "gpt-4o"
    assert protocol.prompt_for(None, "qwen3vl pretrained=Qwen/Qwen2-VL-7B-Instruct").family == "qwen2-vl"
    assert protocol.prompt_for(None, "smolvlm2 pretrained=HuggingFaceTB/SmolVLM2").family == "gpt-4o"  # the first
    assert protocol.prompt_for("qwen2-vl", "gpt-4o").family == "qwen2-vl"
    with pytest.raises(ProtocolError, match="has no prompt for family 'llava'"):
        protocol.prompt_for("llava")


def test_task_config_prompts_are_refused_because_the_protocol_owns_the_prompt():
    doc = {"question": "What is written on the door?"}
    assert doc_to_text(doc, {"pre_prompt": "", "post_prompt": ""}).startswith("What is written on the door?\n")
    with pytest.raises(ValueError, match="lmms_eval_specific_kwargs post_prompt: egotask's prompt belongs to the "
                                         "protocol"):
        doc_to_text(doc, {"post_prompt": "\nOne word."})


# --------------------------------------------------------------------------- importing the releases

def test_import_reads_the_stand_in_releases_without_running_their_code(imported, tmp_path, capsys):
    assert not (tmp_path / MARKER).exists()
    tv, tempo = imported["egotextvqa-official"], imported["egotempo-official"]
    gpt4o, qwen = tv.prompts
    assert gpt4o.family == "gpt-4o" and gpt4o.answer_prefix == "Answer:"
    assert gpt4o.render("Which shop?") == (
        "Study these video stills and reply in a few words to: Which shop?. Write it as Answer: [your reply]. "
        "Reply 'Unanswerable' with a reason if you must.")
    assert qwen.render("Which shop?") == "You wear the camera in these stills. Reply very briefly.\nWhich shop?"
    j = tv.judge
    assert (j.backend, j.model, j.temperature, j.reply, j.lowercase, j.strip_newlines, j.failures) == (
        "openai", JUDGE_MODEL, None, "free", True, True, "wrong")
    assert j.system == "You check a video answer against a key. Same meaning counts; a different number does not."
    assert j.user == ("Check this pair.\nQuestion: {question}\nCorrect Answer: {answer}\nPredicted Answer: "
                      "{prediction}\nReply only with a dict like {'pred': 'yes', 'score': 4}.")
    assert tv.frames == "paper" and [s["file"] for s in tv.sources] == ["mllm_prompt.json", "gpt_eval.py"]
    assert not tv.release_verified and all(len(s["sha256"]) == 64 and s["release"] == "no" for s in tv.sources)
    assert tempo.prompts[0].template == ("Here are stills from a clip. Answer this from what you see: {question}. "
                                         "Say something even when unsure.")
    assert (tempo.judge.backend, tempo.judge.model, tempo.judge.temperature, tempo.judge.system,
            tempo.judge.failures) == ("gemini", EGOTEMPO_JUDGE_MODEL, None, "", "excluded")
    assert "Ground truth correct Answer: {answer}" in tempo.judge.user
    assert any("sends only the first" in note for note in tempo.notes)
    assert egotask_main(["protocol", "import", str(tmp_path / "EgoTextVQA")]) == 0  # again: the same file
    out = capsys.readouterr().out
    assert "egotextvqa-official.yaml: 2 prompt(s), judge openai standin-grader-mini" in out
    assert "NOT identical to the published release" in out
    assert egotask_main(["protocol", "list"]) == 0
    listing = capsys.readouterr().out
    assert "egotextvqa-official  imported, NOT the release  openai standin-grader-mini" in listing


def test_import_errors_name_the_file_and_line(tmp_path):
    release = write_egotextvqa_release(tmp_path / "r")
    source = (release / "gpt_eval.py").read_text().replace('f"Question: {question}', 'f"Question: {qa.get(1)}')
    (release / "gpt_eval.py").write_text(source)
    with pytest.raises(ProtocolError, match=rf"{release / 'gpt_eval.py'}:\d+: cannot tell what 'qa.get\(1\)'"):
        import_releases([release], tmp_path / "out")
    with pytest.raises(ProtocolError, match="needs both mllm_prompt.json and gpt_eval.py; missing gpt_eval.py"):
        import_releases([release / "mllm_prompt.json"], tmp_path / "out")
    with pytest.raises(ProtocolError, match="no release files"):
        import_releases([tmp_path / "out"] if (tmp_path / "out").mkdir() is None else [], tmp_path / "out")


# --------------------------------------------------------------------------- judging under a protocol

def test_official_judge_request_is_the_stand_ins_lowercased_with_its_model_and_no_temperature(
        imported, fake_judge, monkeypatch):
    server = fake_judge()
    monkeypatch.delenv("EGOTASK_JUDGE")
    settings.reset()  # read the variables again: no judge named, so the protocol's backend judges
    configure(protocol="egotextvqa-official")
    judge = build_judge()
    verdict = judge.judge(JudgeItem("Which shop?", "Sunrise\nBAKERY", "The SUNRISE BAKERY"))
    body = server.bodies[-1]
    assert judge.name == "openai" and body["model"] == JUDGE_MODEL
    assert "temperature" not in body and "response_format" not in body
    assert body["messages"][0] == {"role": "system", "content": imported["egotextvqa-official"].judge.system}
    assert body["messages"][1]["content"].splitlines()[1:4] == [
        "Question: Which shop?", "Correct Answer: sunrisebakery", "Predicted Answer: the sunrise bakery"]
    assert (verdict.protocol, verdict.prompt_sha256) == ("egotextvqa-official", judge.spec.sha256)
    assert verdict.prompt_version == f"egotextvqa-official@{judge.spec.sha256[:12]}"


def test_egotempo_judge_sends_one_prompt_and_no_generation_settings(imported, fake_judge, monkeypatch):
    server = fake_judge()
    monkeypatch.delenv("EGOTASK_JUDGE")
    settings.reset()  # read the variables again: no judge named, so the protocol's backend judges
    configure(protocol="egotempo-official")
    judge = build_judge()
    judge.judge(JudgeItem("What did I pick up?", "a cup", "A cup"))
    body = server.bodies[-1]
    assert judge.name == "gemini" and judge.model == EGOTEMPO_JUDGE_MODEL
    assert "systemInstruction" not in body and not body.get("generationConfig")  # the SDK may send {}
    assert "Ground truth correct Answer: a cup\nPredicted Answer: A cup" in body["contents"][-1]["parts"][0]["text"]


def test_verdicts_cached_under_the_old_prompt_version_are_never_reused(fake_judge):
    server = fake_judge()
    item = JudgeItem("What does the sign say?", "not found", "I cannot see a sign.")
    cache = VerdictCache()
    old = Verdict(pred="no", score=0, judge="gemini", judge_model="gemini-2.5-flash", prompt_version="egotask-judge-v1")
    cache.put(cache_key("gemini", "gemini-2.5-flash", "egotask-judge-v1", item), item, old)
    judge = build_judge("gemini")
    judge.cache = cache
    verdict = judge.judge(item)
    assert server.requests == 1 and verdict.prompt_version == "egotask-judge-v2"


# --------------------------------------------------------------------------- report --paper

def _record(protocol: dict | None, judge_model: str, frames: dict | None, pred: str = "yes") -> SampleRecord:
    verdict = Verdict(pred=pred, score=4, judge="openai", judge_model=judge_model, prompt_version="x",
                      protocol=(protocol or {}).get("name"), prompt_sha256="ab" * 32)
    return SampleRecord(task="egotextvqa_outdoor_realtime", benchmark="egotextvqa_outdoor", setting="outdoor",
                        video_id="11", question_id="8.1", question_type="location", question="q?", answer="a",
                        prediction="p", verdict=verdict, timestamp=8.0, visible=(0.0, 8.0), frames=frames,
                        model="m", protocol=protocol)


def test_report_paper_sets_a_run_beside_the_paper_only_when_measured_the_papers_way(tmp_path):
    official = {"name": "egotextvqa-official", "prompt_family": "gpt-4o", "inference_sha256": "cd" * 32,
                "release_verified": True}
    paper_frames = {"max_frames": 32, "fps": None, "max_pixels": None, "preset": "paper", "n_frames": 32}
    write_records([_record(official, "gpt-4o-mini", paper_frames)], tmp_path / "same.records.jsonl")
    [run] = collect_runs([tmp_path / "same.records.jsonl"])
    run.summary["failed_counted_as_wrong"] = True  # what a run under the official failure rule records
    assert protocol_differences(run, load_paper()["measured_under"]) == []

    egotask = {"name": "egotask", "prompt_family": "default", "inference_sha256": "ef" * 32}
    write_records([_record(egotask, "gemini-2.5-flash", {"max_frames": 8, "fps": 2.0, "n_frames": 8})],
                  tmp_path / "default.records.jsonl")
    [other] = collect_runs([tmp_path / "default.records.jsonl"])
    assert protocol_differences(other, load_paper()["measured_under"]) == [
        "prompt from protocol egotask (paper: egotextvqa-official)",
        "judge prompt from protocol egotask (paper: egotextvqa-official)",
        "frames fps=2.0, max_frames=8 (paper: frames=paper or paper-open, the paper's #F per setting)",
        "judge model gemini-2.5-flash (paper: gpt-4o-mini)",
        "failed judge calls left out (paper: counted as no/0)"]


# --------------------------------------------------------------------------- end to end

@pytest.fixture
def two_questions(tmp_path) -> dict[str, str]:
    from time_coded import write_time_coded_clip

    from egotask.fixtures import write_egotextvqa_annotations

    video = "0a1b2c3d-0000-4000-8000-0000000000c1"
    write_time_coded_clip(tmp_path / "videos" / "EgoTextVQA-Indoor" / f"{video}.mp4")
    rows = [{"video_id": video, "question_id": str(i), "question_type": "others", "question": f"Which shop {i}?",
             "correct_answer": "Sunrise Bakery", "timestamp": 2.0 + i, "video_url": ""} for i in range(2)]
    write_egotextvqa_annotations(tmp_path / "annotations", rows, [])
    return {"EGOTEXTVQA_ANNOTATIONS": str(tmp_path / "annotations"),
            "EGOTEXTVQA_VIDEO_DIR": str(tmp_path / "videos")}


@pytest.mark.slow
def test_a_served_run_under_the_official_protocol_is_asked_judged_and_recorded_by_it(
        imported, fake_judge, two_questions, tmp_path, capsys):
    from egotask.testing.vendor import FakeVLMServer, texts

    judge_server = fake_judge()
    spec = imported["egotextvqa-official"]
    with FakeVLMServer(reply="The frames show a storefront.\nAnswer: SUNRISE Bakery") as vlm:
        args = ["--tasks", "egotextvqa_indoor", "--model", "openai_vlm", "--limit", "2", "--model_args",
                f"base_url={vlm.url}/v1,model=gpt-4o-2024-08-06,max_frames=4"]
        official = run_lmms_eval([*args, "--protocol", "egotextvqa-official"], {**two_questions, "EGOTASK_JUDGE": ""},
                                 tmp_path / "official")
        assert official.returncode == 0, official.output
        asked = [t for body in vlm.bodies for t in texts(body) if "Which shop" in t]
        # The stand-in's gpt-4o prompt, chosen from the model's name, with the question in place.
        assert sorted(asked) == [spec.prompts[0].render(f"Which shop {i}?") for i in range(2)]
        default = run_lmms_eval([*args, "--judge", "heuristic"], two_questions, tmp_path / "default")
        assert default.returncode == 0, default.output
    judged = [b for b in judge_server.bodies if "Which shop" in b["messages"][-1]["content"]]
    assert {b["model"] for b in judged} == {JUDGE_MODEL} and all("temperature" not in b for b in judged)
    assert all("Correct Answer: sunrise bakery\nPredicted Answer: sunrise bakery" in b["messages"][-1]["content"]
               for b in judged)  # the extracted answer, lowercased with the reference
    samples = official.samples["egotextvqa_indoor"]
    for sample in samples:
        d = sample["details"]
        assert d["prediction"] == "SUNRISE Bakery" and d["response"].startswith("The frames show a storefront.")
        assert d["protocol"] == {"name": "egotextvqa-official", "prompt_family": "gpt-4o",
                                 "inference_sha256": spec.prompts[0].sha256, "release_verified": False}
        assert (d["verdict"]["protocol"], d["verdict"]["prompt_sha256"], d["verdict"]["judge_model"]) == (
            "egotextvqa-official", spec.judge.sha256, JUDGE_MODEL)
    summary = official.results["results"]["egotextvqa_indoor"]["details,none"]
    assert summary["protocol"]["name"] == "egotextvqa-official" and summary["failed_counted_as_wrong"] is True
    assert summary["protocol"]["judge_sha256"] == spec.judge.sha256
    # The default run: egotask's prompt, recorded as such; the report footer names both protocols.
    d = default.samples["egotextvqa_indoor"][0]["details"]
    assert d["protocol"]["name"] == "egotask" and d["prediction"].startswith("The frames show")
    capsys.readouterr()
    assert egotask_main(["report", str(tmp_path / "official"), str(tmp_path / "default"), "--no-plots"]) == 0
    report = capsys.readouterr().out
    assert f"egotextvqa-official: prompt gpt-4o (sha256 {spec.prompts[0].sha256[:12]})" in report
    assert "egotask: prompt default (sha256" in report
    assert egotask_main(["report", str(tmp_path / "default"), "--no-plots", "--paper"]) == 0
    paper = capsys.readouterr().out
    assert "protocol differs: prompt from protocol egotask (paper: egotextvqa-official)" in paper
    assert "(egotask, the paper's protocol)" not in paper
    line = next(x for x in paper.splitlines() if "protocol differs" in x)
    assert "judge model heuristic-v3 (paper: gpt-4o-mini)" in line and "frames max_frames=4" in line


def test_lmms_eval_refuses_an_unknown_protocol_before_loading_anything(tmp_path):
    run = run_lmms_eval(["--tasks", "egotextvqa_indoor", "--model", "qwen3vl", "--protocol", "nonesuch"], {})
    assert run.returncode == 2
    assert "unknown protocol 'nonesuch' (EGOTASK_PROTOCOL or --protocol); available: egotask" in run.output


def test_protocol_show_prints_the_yaml_and_hashes(capsys):
    assert egotask_main(["protocol", "show", "egotask"]) == 0
    out = capsys.readouterr().out
    protocol = load_protocol("egotask")
    assert out.startswith("name: egotask\n") and f"# judge prompt sha256: {protocol.judge.sha256}" in out
    assert json.dumps(protocol.prompts[0].sha256)[1:-1] in out


def test_a_deferred_run_is_judged_under_the_protocol_it_was_asked_under(imported, fake_judge, monkeypatch,
                                                                        tmp_path, capsys):
    server = fake_judge()
    monkeypatch.delenv("EGOTASK_JUDGE")
    settings.reset()
    spec = imported["egotextvqa-official"].judge
    pending = Verdict.deferred(judge="openai", judge_model=JUDGE_MODEL, prompt_version=spec.prompt_version,
                               protocol="egotextvqa-official", prompt_sha256=spec.sha256)
    record = _record({"name": "egotextvqa-official", "prompt_family": "gpt-4o", "inference_sha256": "cd" * 32},
                     JUDGE_MODEL, None).with_verdict(pending)
    run = tmp_path / "out" / "m"
    run.mkdir(parents=True)
    stamp = "2026-01-02T03-04-05.123456"
    (run / f"{stamp}_samples_egotextvqa_outdoor_realtime.jsonl").write_text(json.dumps({"details": record.to_dict()}))
    (run / f"{stamp}_results.json").write_text(json.dumps({"model_name": "m", "config": {}, "results": {
        "egotextvqa_outdoor_realtime": {"details,none": {}}}}))
    assert egotask_main(["judge", str(tmp_path / "out")]) == 0
    assert "judging under protocol egotextvqa-official, which the deferred run was asked under" in \
        capsys.readouterr().err
    asked = [b for b in server.bodies if "Question: q?" in b["messages"][-1]["content"]]
    assert [b["model"] for b in asked] == [JUDGE_MODEL]
