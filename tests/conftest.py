"""Shared fixtures: real things built small at test time (clips, annotations, checkpoints)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from egotask import settings
from egotask.fixtures import build_sample_data, build_tiny_qwen3vl, build_tiny_smolvlm2
from egotask.testing.vendor import FakeJudgeServer

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
DATA_VARS = ("EGOTEXTVQA_ANNOTATIONS", "EGOTEXTVQA_VIDEO_DIR", "EGOTEMPO_ANNOTATIONS", "EGOTEMPO_VIDEO_DIR",
             "EGOTEXTVQA_DATASET", "EGOTASK_SPLIT_MANIFEST")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path_factory):
    """No test reads the user's data variables, cache or judge settings, or reaches the Hub."""
    for var in (*DATA_VARS, "EGOTASK_MISSING_VIDEOS", "EGOTASK_DISABLE_PLUGINS", "GEMINI_API_KEY", "GOOGLE_API_KEY",
                "GOOGLE_GEMINI_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "EGOTASK_JUDGE_MODEL",
                "EGOTASK_JUDGE_CONCURRENCY", "EGOTASK_JUDGE_RPM", "EGOTASK_JUDGE_CACHE", "EGOTASK_JUDGE_TIMEOUT",
                "EGOTASK_JUDGE_MAX_ATTEMPTS", "EGOTASK_JUDGE_BACKOFF", "EGOTASK_COUNT_FAILED_AS_WRONG",
                "EGOTASK_JUDGE_DEADLINE", "EGOTASK_JUDGE_RETRY_AFTER_MAX", "EGOTASK_JUDGE_BUDGET",
                "EGOTASK_JUDGE_MODE", "EGOTASK_PROTOCOL", "EGOTASK_PROMPT_FAMILY"):
        monkeypatch.delenv(var, raising=False)
    # The default judge (gemini) needs the network; tests use the offline one unless they say otherwise.
    monkeypatch.setenv("EGOTASK_JUDGE", "heuristic")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("EGOTASK_CACHE_DIR", str(tmp_path_factory.mktemp("egotask-cache")))
    # Settings are read once per process; each test starts from its own variables. A test that changes
    # a variable after egotask has read them calls egotask.settings.reset() itself.
    settings.reset()
    yield
    settings.reset()


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory) -> dict[str, str]:
    """The demo's data set (clips with rendered text + annotations); returns its variables."""
    return build_sample_data(tmp_path_factory.mktemp("sample"))


@pytest.fixture
def sample_env(monkeypatch, sample_data) -> dict[str, str]:
    for key, value in sample_data.items():
        monkeypatch.setenv(key, value)
    return sample_data


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory) -> Path:
    return build_tiny_qwen3vl(tmp_path_factory.mktemp("tiny-qwen3vl"))


@pytest.fixture(scope="session")
def tiny_thinking_qwen(tmp_path_factory) -> Path:
    """A Thinking-template Qwen3-VL whose weights make greedy decoding reply
    ``the sign</think>kornflake`` (reasoning, then the first indoor sample's answer)."""
    return build_tiny_qwen3vl(tmp_path_factory.mktemp("tiny-qwen3vl-thinking"), thinking=True,
                              reply=THINKING_REPLY)


THINKING_REPLY = "the sign</think>kornflake"


@pytest.fixture(scope="session")
def tiny_smolvlm(tmp_path_factory) -> Path:
    return build_tiny_smolvlm2(tmp_path_factory.mktemp("tiny-smolvlm2"))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


FAKE_JUDGE_KEY = "sk-egotask-test-SECRET-0123456789"


@pytest.fixture
def fake_judge(monkeypatch):
    """``start(**server_options)`` starts a fake Gemini/OpenAI server on 127.0.0.1 and points the real
    clients and a test key (``FAKE_JUDGE_KEY``) at it."""
    servers: list[FakeJudgeServer] = []

    def start(**options) -> FakeJudgeServer:
        server = FakeJudgeServer(**{"hang": 2.0, **options}).start()
        servers.append(server)
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", server.url)
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("GEMINI_API_KEY", FAKE_JUDGE_KEY)
        monkeypatch.setenv("OPENAI_API_KEY", FAKE_JUDGE_KEY)
        monkeypatch.setenv("EGOTASK_JUDGE_BACKOFF", "0.01")
        monkeypatch.setenv("EGOTASK_JUDGE_TIMEOUT", "10")
        return server

    yield start
    for server in servers:
        server.stop()


@dataclass
class LmmsRun:
    returncode: int
    output: str
    results: dict | None
    samples: dict[str, list[dict]]


def run_lmms_eval(args: list[str], env: dict[str, str], output: Path | None = None,
                  timeout: int = 600) -> LmmsRun:
    """Run the real `lmms_eval` entry in a subprocess and read what it wrote."""
    cmd = [sys.executable, "-m", "egotask.lmms_entry", *args, "--verbosity", "WARNING"]
    if output is not None:
        cmd += ["--output_path", str(output), "--log_samples"]
    proc = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout)
    results, samples = None, {}
    if output is not None and output.exists():
        found = sorted(output.rglob("*_results.json"))
        if found:
            results = json.loads(found[-1].read_text())
        for path in output.rglob("*_samples_*.jsonl"):
            task = path.stem.split("_samples_", 1)[1]
            samples[task] = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return LmmsRun(proc.returncode, proc.stdout + proc.stderr, results, samples)


@pytest.fixture
def lmms_eval():
    return run_lmms_eval


@pytest.fixture
def full_disk(tmp_path):
    """``make(size_kib)``: a folder on a tmpfs of that size (a disk that fills up), unmounted afterwards.
    Mounting needs root (or CAP_SYS_ADMIN); elsewhere the test skips, saying so."""
    mounted: list[Path] = []

    def make(size_kib: int = 64) -> Path:
        folder = tmp_path / f"small-disk-{len(mounted)}"
        folder.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {proc.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield make
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path, leave_bytes: int = 0) -> None:
    """Fill the disk under ``folder`` until at most ``leave_bytes`` are free."""
    stat = os.statvfs(folder)
    free = stat.f_bavail * stat.f_frsize
    fd = os.open(folder / ".filler", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        left = max(0, free - leave_bytes)
        while left > 0:
            left -= os.write(fd, b"\0" * min(left, 1 << 20))
    except OSError:
        pass
    finally:
        os.close(fd)
