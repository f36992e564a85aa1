"""Stand-in release folders in the official releases' formats, in our own words, for the importer's
tests: an EgoTextVQA clone (``mllm_prompt.json``, ``gpt_eval.py``) and an EgoTempo clone
(``gemini_eval.ipynb``). Their code would write a marker file if anything ever ran it."""

from __future__ import annotations

import json
from pathlib import Path

MARKER = "STANDIN_CODE_RAN"
FAMILY_PROMPTS = [
    {"model": "gpt-4o", "prompt": "Study these video stills and reply in a few words to: [Full Question]. "
                                  "Write it as Answer: [your reply]. Reply 'Unanswerable' with a reason if you must."},
    {"model": "qwen2-vl", "prompt": "You wear the camera in these stills. Reply very briefly."},
]
JUDGE_MODEL = "standin-grader-mini"
EGOTEMPO_JUDGE_MODEL = "standin-flash"

GPT_EVAL = f'''\
import ast
import pathlib

pathlib.Path("{MARKER}").write_text("imported")


def grade(qa):
    question = qa["q"]
    answer = qa["a"]
    model_pred = qa["p"]
    result = {{}}
    try:
        reply = client.chat.completions.create(
            model="{JUDGE_MODEL}",
            messages=[
                {{"role": "system",
                  "content": "You check a video answer against a key. "
                             "Same meaning counts; a different number does not."}},
                {{"role": "user",
                  "content": "Check this pair.\\n"
                             f"Question: {{question}}\\n"
                             f"Correct Answer: {{answer}}\\n"
                             f"Predicted Answer: {{model_pred}}\\n"
                             "Reply only with a dict like {{'pred': 'yes', 'score': 4}}."}},
            ],
        )
        result = ast.literal_eval(reply.choices[0].message.content)
    except Exception:
        pass
    return result


def main(samples):
    for s in samples:
        s["correct_answer"] = str(s["correct_answer"]).replace("\\n", "").lower()
        verdict = grade(s)
        s["acc"] = verdict.get("pred", "no")
'''


def _cell(source: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
            "source": source.splitlines(keepends=True)}


NOTEBOOK_CELLS = [
    {"cell_type": "markdown", "metadata": {}, "source": ["Fetch the clips"]},
    _cell("!pip install something-we-never-run\n"),
    _cell(f'import pathlib\npathlib.Path("{MARKER}").write_text("ran")\n\n'
          "class Questions:\n"
          "    def item(self, row):\n"
          "        question = row['question']\n"
          "        text = (\n"
          '            f"Here are stills from a clip. Answer this from what you see: {question}. "\n'
          '            f"Say something even when unsure."\n'
          "        )\n"
          "        return text\n"),
    _cell(f"MODEL_NAME = '{EGOTEMPO_JUDGE_MODEL}'\n\n"
          "def build_grading_prompt(q, a, pred):\n"
          '    return f"""Grade a clip answer. An unsure answer is wrong unless the key is unsure too.\n'
          "Question: {q}\n"
          "Ground truth correct Answer: {a}\n"
          "Predicted Answer: {pred}\n"
          "Give a dict with pred (correct or incorrect), score and reason.\n"
          '"""\n'),
]


def write_egotextvqa_release(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "mllm_prompt.json").write_text(json.dumps(FAMILY_PROMPTS, indent=1))
    (root / "gpt_eval.py").write_text(GPT_EVAL)
    return root


def write_egotempo_release(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    notebook = {"cells": NOTEBOOK_CELLS, "metadata": {}, "nbformat": 4, "nbformat_minor": 0}
    (root / "gemini_eval.ipynb").write_text(json.dumps(notebook, indent=1))
    return root
