"""`egotask finetune` on generated clips and a tiny random-weight Qwen3-VL (CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from finetune_helpers import FAST, write_manifest  # tests/ is on sys.path

from egotask.cli import main as egotask_main
from egotask.data.sources import load_docs
from egotask.data.splits import load_manifest
from egotask.finetune import checkpoint
from egotask.finetune.collate import AnswerOnlyCollator
from egotask.finetune.data import DocDataset, split_docs
from egotask.finetune.prompts import question_text
from egotask.frames import sample_visual
from egotask.model_adapters.base import VideoPrompt
from egotask.tasklib import doc_to_visual


def finetune(args: list[str], capsys=None) -> tuple[int, str]:
    code = egotask_main(["finetune", *args])
    err = capsys.readouterr().err if capsys is not None else ""
    return code, err


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if line.strip()]


def answer(model_dir: Path, docs: list[dict], max_frames: int = 2, **kwargs) -> list[str]:
    """Greedy answers of the real qwen3vl adapter, on exactly what evaluation feeds it."""
    from egotask.model_adapters.qwen3vl import Qwen3VL

    model = Qwen3VL(pretrained=str(model_dir), max_frames=max_frames, **kwargs)
    prompts = [VideoPrompt(question_text(d), [sample_visual(doc_to_visual(d)[0], max_frames=max_frames)],
                           {"max_new_tokens": 32}) for d in docs]
    return [model.generate([p])[0].strip() for p in prompts]


@pytest.fixture(scope="module")
def lora_run(sample_data, tiny_qwen, tmp_path_factory):
    """One LoRA run on the 4 indoor clips, shared by the tests that inspect its output."""
    root = tmp_path_factory.mktemp("lora-run")
    manifest = write_manifest(root / "splits.json")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in sample_data.items():
            mp.setenv(key, value)
        code = egotask_main(["finetune", "--model-id", str(tiny_qwen), "--split-manifest", str(manifest),
                             "--train-datasets", "egotextvqa_indoor", "--output-dir", str(root / "out"),
                             "--max-steps", "40", "--learning-rate", "5e-3", "--merge", *FAST])
    assert code == 0
    return root / "out"


# --------------------------------------------------------------------------- training and outputs


def test_lora_run_on_four_clips_halves_the_loss_within_a_minute(lora_run):
    steps = [e for e in read_log(lora_run) if "loss" in e]
    first = steps[0]["loss"]
    halved = [e for e in steps if e["loss"] <= first / 2]
    assert halved, f"loss never fell to half of {first}: {[round(e['loss'], 3) for e in steps]}"
    assert halved[0]["seconds"] <= 60
    assert steps[-1]["loss"] < first / 10  # it memorises the four answers


def test_lora_output_folder_holds_adapter_processor_and_training_record(lora_run, tiny_qwen):
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "chat_template.jinja",
                 "merged/model.safetensors", "merged/config.json"):
        assert (lora_run / name).is_file(), name
    assert json.loads((lora_run / "adapter_config.json").read_text())["base_model_name_or_path"] == \
        str(tiny_qwen.resolve())
    record = json.loads((lora_run / "training.json").read_text())
    assert record["base_model"] == str(tiny_qwen.resolve())
    assert record["train_datasets"] == {"egotextvqa_indoor": 1.0}
    assert record["split_manifest"]["hash"] == load_manifest(lora_run.parent / "splits.json")["hash"]
    assert record["steps"] == 40 and record["hyperparameters"]["learning_rate"] == 5e-3
    assert record["saved_weights"] == "last step 40" and record["evaluate_with"]["max_frames"] == 2
    assert not (lora_run / "checkpoints").exists()  # resume state is dropped once the run finishes


def test_adapter_changes_predictions_to_the_trained_answers(lora_run, tiny_qwen, sample_env):
    docs = load_docs("egotextvqa_indoor")
    before = answer(tiny_qwen, docs)
    after = answer(lora_run, docs)
    assert after == [d["answer"] for d in docs]
    assert before != after


def test_merged_checkpoint_answers_like_the_adapter(lora_run, sample_env):
    docs = load_docs("egotextvqa_indoor")
    assert answer(lora_run / "merged", docs) == answer(lora_run, docs)


def test_folder_holds_the_best_validation_step_not_the_last(sample_env, tiny_qwen, tmp_path):
    from transformers import AutoProcessor

    from egotask.model_adapters.qwen3vl import Qwen3VL

    manifest = write_manifest(tmp_path / "splits.json")
    out = tmp_path / "best"
    # A learning rate this high overshoots, so validation loss is not monotonic.
    code, _ = finetune(["--model-id", str(tiny_qwen), "--split-manifest", str(manifest), "--train-datasets",
                        "egotextvqa_indoor", "--val-datasets", "egotextvqa_outdoor", "--output-dir", str(out),
                        "--max-steps", "6", "--eval-steps", "1", "--learning-rate", "0.3", *FAST])
    assert code == 0
    record = json.loads((out / "training.json").read_text())
    vals = [e["val_loss"] for e in read_log(out) if "val_loss" in e]
    assert len(vals) == 6 and record["final_val_loss"] == vals[-1]
    assert record["best_val_loss"] == min(vals) and record["best_step"] == 1 + vals.index(min(vals))
    assert record["best_step"] < 6
    # What pretrained=<out> loads scores the best validation loss.
    model = Qwen3VL(pretrained=str(out), max_frames=2).model
    docs = split_docs("egotextvqa_outdoor", "val", load_manifest(manifest))
    batch = AnswerOnlyCollator(AutoProcessor.from_pretrained(out))(list(DocDataset(docs, max_frames=2)))
    with torch.no_grad():
        assert float(model(**batch).loss) == pytest.approx(record["best_val_loss"], abs=1e-4)


@pytest.mark.slow
def test_lmms_eval_evaluates_the_lora_output_end_to_end(lora_run, sample_env, tmp_path, lmms_eval):
    run = lmms_eval(["--tasks", "egotextvqa_indoor", "--model", "qwen3vl", "--model_args",
                     f"pretrained={lora_run},max_frames=2", "--judge", "heuristic"], sample_env, tmp_path / "ev")
    assert run.returncode == 0, run.output
    assert run.results["results"]["egotextvqa_indoor"]["accuracy,none"] == 1.0
    # Finetuning asked each question exactly as evaluation did.
    docs = {d["video_id"]: d for d in load_docs("egotextvqa_indoor")}
    for sample in run.samples["egotextvqa_indoor"]:
        assert sample["input"] == question_text(docs[sample["details"]["video_id"]])


@pytest.mark.slow
def test_full_finetune_output_evaluates_with_lmms_eval(sample_env, tiny_qwen, tmp_path, lmms_eval):
    manifest = write_manifest(tmp_path / "splits.json")
    out = tmp_path / "full"
    code, _ = finetune(["--model-id", str(tiny_qwen), "--split-manifest", str(manifest), "--method", "full",
                        "--train-datasets", "egotextvqa", "egotempo", "--train-weights", "0.7", "0.3",
                        "--output-dir", str(out), "--max-steps", "8", "--learning-rate", "3e-3", *FAST])
    assert code == 0
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    losses = [e["loss"] for e in read_log(out) if "loss" in e]
    assert losses[-1] < losses[0]
    record = json.loads((out / "training.json").read_text())
    assert record["method"] == "full"
    assert record["train_datasets"] == pytest.approx({"egotextvqa_indoor": 0.35, "egotextvqa_outdoor": 0.35,
                                                      "egotempo_openqa": 0.3})
    run = lmms_eval(["--tasks", "egotextvqa_outdoor,egotempo_openqa", "--model", "qwen3vl", "--model_args",
                     f"pretrained={out},max_frames=2", "--limit", "2", "--judge", "heuristic"], sample_env,
                    tmp_path / "ev")
    assert run.returncode == 0, run.output
    assert run.results["results"]["egotextvqa_outdoor"]["details,none"]["n"] == 2


# --------------------------------------------------------------------------- resume


def checkpoint_step(out: Path) -> int:
    """The step of the last complete resume checkpoint (0 when none), read while a run may be writing it."""
    try:
        found = checkpoint.find_last(out)
        return json.loads((found / checkpoint.STATE_FILE).read_text())["step"] if found else 0
    except (FileNotFoundError, json.JSONDecodeError):
        return 0


def _command(tiny_qwen: Path, manifest: Path, out: Path, steps: int) -> list[str]:
    return ["--model-id", str(tiny_qwen), "--split-manifest", str(manifest), "--train-datasets", "egotextvqa",
            "--output-dir", str(out), "--max-steps", str(steps), "--save-steps", "2", "--learning-rate", "5e-3",
            *FAST]


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_checkpoint(sample_env, tiny_qwen, tmp_path):
    manifest = write_manifest(tmp_path / "splits.json")
    steps = 10
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "egotask.finetune", *_command(tiny_qwen, manifest, killed, 200)],
                            env={**os.environ, **sample_env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while checkpoint_step(killed) < 4:
        assert proc.poll() is None and time.time() < deadline, "the run ended before its checkpoint at step 4"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "training.json").exists()
    at = checkpoint_step(killed)

    # Rerun with the same flags; only the total changes (--max-steps may be changed on resume).
    assert finetune(_command(tiny_qwen, manifest, killed, steps))[0] == 0
    record = json.loads((killed / "training.json").read_text())
    assert record["resumed_at_steps"] == [at] and record["steps"] == steps
    logged = [e["step"] for e in read_log(killed) if "loss" in e]
    assert logged == list(range(1, steps + 1))  # no step lost or repeated

    # The resumed steps are exactly the steps an uninterrupted run takes.
    straight = tmp_path / "straight"
    assert finetune(_command(tiny_qwen, manifest, straight, steps))[0] == 0
    resumed = {e["step"]: e["loss"] for e in read_log(killed) if "loss" in e}
    for entry in (e for e in read_log(straight) if "loss" in e and e["step"] > at):
        assert resumed[entry["step"]] == pytest.approx(entry["loss"], abs=1e-4)


@pytest.mark.slow
def test_smolvlm2_lora_run_learns_and_evaluates_with_lmms_eval(sample_env, tiny_smolvlm, tmp_path, lmms_eval):
    manifest = write_manifest(tmp_path / "splits.json")
    out = tmp_path / "smol"
    code, _ = finetune(["--model-id", str(tiny_smolvlm), "--split-manifest", str(manifest),
                        "--train-datasets", "egotextvqa_indoor", "--output-dir", str(out),
                        "--max-steps", "30", "--learning-rate", "5e-3", *FAST])
    assert code == 0
    assert (out / "adapter_config.json").is_file() and (out / "training.json").is_file()
    losses = [e["loss"] for e in read_log(out) if "loss" in e]
    assert losses[-1] <= losses[0] / 2
    run = lmms_eval(["--tasks", "egotextvqa_indoor", "--model", "smolvlm2", "--model_args",
                     f"pretrained={out},max_frames=2", "--judge", "heuristic"], sample_env, tmp_path / "ev")
    assert run.returncode == 0, run.output
    assert run.results["results"]["egotextvqa_indoor"]["details,none"]["n_judged"] == 4


class _Planted:
    """Unpickling this creates a marker file: what a planted pickle could do instead."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _plant(folder: Path, marker: Path, identity: dict) -> None:
    folder.mkdir(parents=True)
    for name in ("weights.pt", "optimizer.pt", "scheduler.pt", "rng.pt"):
        torch.save(_Planted(marker), folder / name)
    (folder / checkpoint.STATE_FILE).write_text(json.dumps({"step": 2, "identity": identity}))


def test_resume_never_unpickles_a_planted_checkpoint(sample_env, tiny_qwen, tmp_path, capsys):
    from egotask.cli import build_parser
    from egotask.commands.finetune import config_from_args

    manifest = write_manifest(tmp_path / "splits.json")
    out, marker = tmp_path / "out", tmp_path / "code-was-run"
    args = _command(tiny_qwen, manifest, out, 4)
    identity = config_from_args(build_parser().parse_args(["finetune", *args])).identity()
    _plant(checkpoint.last_dir(out), marker, identity)
    code, err = finetune(args, capsys)
    assert code == 2 and "holds pickle files (weights.pt, optimizer.pt, scheduler.pt, rng.pt)" in err
    assert not marker.exists()
    # A checkpoint of another run is refused on its state.json alone: its tensor files are never opened.
    folder = checkpoint.last_dir(out)
    for name in ("weights.pt", "optimizer.pt", "scheduler.pt", "rng.pt"):
        (folder / name).unlink()
    (folder / checkpoint.WEIGHTS).write_bytes(b"not a safetensors file")
    (folder / checkpoint.STATE_FILE).write_text(json.dumps({"step": 2, "identity": {**identity, "seed": 7}}))
    code, err = finetune(args, capsys)
    assert code == 2 and "the interrupted run used other settings (seed)" in err


def test_the_resume_state_round_trips_through_safetensors_and_json(tmp_path):
    import random

    import numpy as np
    from transformers import get_scheduler

    def build():
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 3)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        return model, optimizer, get_scheduler("linear", optimizer, num_warmup_steps=2, num_training_steps=10)

    model, optimizer, scheduler = build()
    for _ in range(3):
        model(torch.randn(2, 4)).sum().backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    path = checkpoint.save(tmp_path, weights=dict(model.state_dict()), optimizer=optimizer, scheduler=scheduler,
                           state={"step": 3, "identity": {}})
    assert not [p.name for p in path.iterdir() if p.suffix not in (".json", ".safetensors")]
    expected = (random.random(), np.random.rand(), torch.rand(3))
    saved = checkpoint.load(path)
    model2, optimizer2, scheduler2 = build()
    optimizer2.load_state_dict(saved["optimizer"])
    scheduler2.load_state_dict(saved["scheduler"])
    checkpoint.restore_rng(saved["rng"])
    assert (random.random(), np.random.rand()) == expected[:2] and torch.equal(torch.rand(3), expected[2])
    assert scheduler2.get_last_lr() == scheduler.get_last_lr()
    for key, value in optimizer.state_dict()["state"].items():
        for name, tensor in value.items():
            assert torch.equal(optimizer2.state_dict()["state"][key][name], tensor)
    assert all(torch.equal(saved["weights"][k], v) for k, v in model.state_dict().items())
