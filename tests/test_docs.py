"""The README and the documentation site: generated pages current, the record page complete, the README
short, every shell block either run here (against the demo's data) or marked with why it cannot be."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from egotask import reference_docs
from egotask.records import Generation, SampleRecord, Verdict

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
RUNNABLE = "<!-- runnable -->"
NOT_RUNNABLE = re.compile(r"^<!-- not runnable: \S.* -->$")
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>\w*)\s*$")


def pages() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]


def shell_blocks(path: Path) -> list[tuple[int, str, str]]:
    """(line, marker line, code) of every ```bash block of a markdown file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        if match["lang"] in ("bash", "sh", "shell", "console"):
            marker = lines[i - 1].strip() if i else ""
            indent = len(match["indent"])
            blocks.append((i + 1, marker, "\n".join(line[indent:] for line in lines[i + 1:end])))
        i = end + 1
    return blocks


def test_the_generated_reference_pages_are_current():
    for name, render in reference_docs.PAGES.items():
        page = DOCS / "reference" / name
        assert page.read_text(encoding="utf-8") == render(), (
            f"{page.relative_to(REPO)} differs from the code; regenerate it with python -m egotask.reference_docs")


def test_the_cli_page_holds_every_subcommand_and_the_lmms_eval_additions():
    text = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    for heading in ("`egotask demo`", "`egotask data resample`", "`egotask judge`", "`egotask finetune`",
                    "`egotask report`", "`lmms_eval`"):
        assert f"# {heading}\n" in text, heading
    assert "--judge-mode MODE" in text and "--model openai_vlm" in text


def test_the_record_page_names_every_field_of_the_record_the_verdict_and_the_generation():
    text = (DOCS / "reference" / "records.md").read_text(encoding="utf-8")
    for cls in (SampleRecord, Verdict, Generation):
        missing = [f.name for f in dataclasses.fields(cls) if f"| `{f.name}` |" not in text]
        assert not missing, f"docs/reference/records.md lacks {cls.__name__} field(s) {missing}"


def test_the_readme_fits_in_200_lines_and_links_into_the_site():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    for target in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (REPO / target).is_file(), target


def test_every_shell_block_is_runnable_or_says_why_not():
    unmarked = [f"{path.relative_to(REPO)}:{line}" for path in pages() for line, marker, _ in shell_blocks(path)
                if marker != RUNNABLE and not NOT_RUNNABLE.match(marker)]
    assert not unmarked, ("shell blocks without <!-- runnable --> or <!-- not runnable: REASON --> on the line "
                          f"before: {unmarked}")
    assert sum(marker == RUNNABLE for path in pages() for _, marker, _ in shell_blocks(path)) >= 3


@pytest.mark.slow  # the demo three times (OCR, served, tiny Qwen3-VL), a finetune and an evaluation
def test_the_runnable_blocks_run_in_order_on_the_demo_data(tmp_path):
    """What a newcomer pastes, in a fresh folder with the venv's programs on PATH and none of the data
    variables set: each block must exit 0."""
    bin_dir = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("EGOTEXTVQA_", "EGOTEMPO_", "EGOTASK_", "HF_HUB_OFFLINE"))}
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["EGOTASK_CACHE_DIR"] = str(tmp_path / "cache")  # the user's caches stay out of it
    ran = []
    for path in pages():
        for line, marker, code in shell_blocks(path):
            if marker != RUNNABLE:
                continue
            where = f"{path.relative_to(REPO)}:{line}"
            proc = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=900)
            assert proc.returncode == 0, (
                f"{where} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
            ran.append(where)
    assert ran
