"""`egotask protocol import`: the official releases' protocols, read from local clones.

The releases' prompts are their authors' text, so egotask ships none of them: this module reads them
from a clone on the user's disk and writes a protocol file under ``EGOTASK_CACHE_DIR/protocols``. It
parses the code (Python's ``ast``, the notebook's JSON) and never executes it.

- EgoTextVQA (``git clone https://github.com/zhousheng97/EgoTextVQA``): ``mllm_prompt.json`` is a list
  of ``{"model", "prompt"}``, one inference prompt per model family, ``[Full Question]`` marking the
  question; ``gpt_eval.py`` calls ``client.chat.completions.create(model=..., messages=[system, user])``,
  whose contents are string literals and f-strings over the question, the reference and the prediction.
- EgoTempo (``git clone https://github.com/google-research-datasets/egotempo``): ``gemini_eval.ipynb``
  builds the inference prompt as an f-string around ``{question}`` and the judge prompt in a function
  returning an f-string over the question, the reference and the prediction.

Each written protocol names its source files with their sha256, and whether they are byte-identical
to the release egotask was built against (:data:`RELEASE_SHA256`).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from egotask.protocols.spec import (
    ANSWER,
    PREDICTION,
    QUESTION,
    JudgeSpec,
    Prompt,
    Protocol,
    ProtocolError,
    dump_protocol,
)

EGOTEXTVQA, EGOTEMPO = "egotextvqa-official", "egotempo-official"
# The releases' files as published (EgoTextVQA at d5d7ccd, 2025-06-19; EgoTempo at 7022ba7, 2026-06-19).
RELEASE_SHA256 = {
    "mllm_prompt.json": "33c0d259438ff9c2a25d1f455b1a3f0fa4d3b9027f7bc96c8c4d6302e10f1f4c",
    "gpt_eval.py": "23da36c4797e0e98a2a5b0169cfad886cb6c43f724d56a2168328d8c26be0d40",
    "gemini_eval.ipynb": "e5304983b49f9743af68979edf4d7b019f6d62a299d173b1ed0073cc74e6eed8",
}
QUESTION_MARK = "[Full Question]"  # where mllm_prompt.json's prompts put the question
_ANSWER_FORM = re.compile(r"\bAnswer:\s*\[")  # a prompt that asks for "Answer: [Full answer]"

EGOTEXTVQA_NOTES = (
    "Prompts without a [Full Question] mark do not say where the question goes; egotask puts it on the line "
    "after the prompt.",
    "The scorer lowercases the reference and the prediction, removes their newlines, and counts a failed or "
    "unreadable judge call as no/0; the judge request sets no temperature (the vendor's default).",
    "The release's 6 fps conversion keeps every int(fps/6)-th frame and writes the result at 6 fps, so a "
    "29.97 fps source plays 1.25x longer; egotask samples by time from the original video.",
)
EGOTEMPO_NOTES = (
    "The notebook sends the judge prompt, its system and user parts together, as one user message, and drops "
    "items whose judging failed.",
    "The notebook extracts 32 frames per clip but sends only the first to the model.",
    "The official clips are cut with ffmpeg stream copy, so they start on a keyframe before the clip's start.",
)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _source(path: Path) -> dict[str, str]:
    digest = _sha256(path)
    return {"file": path.name, "path": str(path.resolve()), "sha256": digest,
            "release": "yes" if RELEASE_SHA256.get(path.name) == digest else "no"}


# --------------------------------------------------------------------------- Python source to templates

def _role(name: str) -> str:
    """The placeholder a variable of the official code stands for, from its name."""
    n = name.lower()
    if "pred" in n:
        return PREDICTION
    if n in ("q", "question") or "question" in n:
        return QUESTION
    if n in ("a", "gt", "ground_truth", "reference", "correct") or "answer" in n:
        return ANSWER
    raise ValueError(name)


def _template(node: ast.AST, where: str) -> str:
    """The text of a string expression (literals, f-strings over plain names, ``+``), with each name
    replaced by its placeholder."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_template(part, where) for part in node.values)
    if isinstance(node, ast.FormattedValue):
        if isinstance(node.value, ast.Name):
            try:
                return _role(node.value.id)
            except ValueError:
                pass
        raise ProtocolError(f"{where}:{node.lineno}: cannot tell what {ast.unparse(node.value)!r} in the prompt is "
                            "(the question, the reference or the prediction)")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _template(node.left, where) + _template(node.right, where)
    raise ProtocolError(f"{where}:{getattr(node, 'lineno', '?')}: the prompt is not a string literal or f-string "
                        f"({type(node).__name__})")


def _calls(tree: ast.AST, attr: str) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == attr:
            yield node


def _constant_args(call: ast.Call) -> list[object]:
    return [a.value for a in call.args if isinstance(a, ast.Constant)]


def _parse(path: Path, source: str | None = None) -> ast.Module:
    try:
        return ast.parse(source if source is not None else path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        raise ProtocolError(f"{path}:{exc.lineno}: not Python this importer can read ({exc.msg})") from None


# --------------------------------------------------------------------------- EgoTextVQA

def egotextvqa_prompts(path: Path) -> tuple[Prompt, ...]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(data, list) or not data:
        raise ProtocolError(f"{path}: expected a list of {{\"model\", \"prompt\"}} objects")
    prompts = []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict) or not isinstance(entry.get("model"), str) or not isinstance(
                entry.get("prompt"), str):
            raise ProtocolError(f"{path}: entry {i}: needs text fields model and prompt")
        text = entry["prompt"]
        template = text.replace(QUESTION_MARK, QUESTION) if QUESTION_MARK in text else f"{text}\n{QUESTION}"
        prompts.append(Prompt(family=entry["model"], template=template,
                              answer_prefix="Answer:" if _ANSWER_FORM.search(text) else None))
    return tuple(prompts)


def egotextvqa_judge(path: Path) -> JudgeSpec:
    tree = _parse(path)
    create = next((c for c in _calls(tree, "create") if any(k.arg == "messages" for k in c.keywords)), None)
    if create is None:
        raise ProtocolError(f"{path}: no chat.completions.create(..., messages=...) call found")
    kw = {k.arg: k.value for k in create.keywords}
    if not isinstance(kw.get("model"), ast.Constant):
        raise ProtocolError(f"{path}:{create.lineno}: the judge model is not a literal")
    temperature = kw.get("temperature")
    if temperature is not None and not isinstance(temperature, ast.Constant):
        raise ProtocolError(f"{path}:{create.lineno}: the temperature is not a literal")
    messages = kw["messages"]
    if not isinstance(messages, ast.List):
        raise ProtocolError(f"{path}:{create.lineno}: messages is not a list literal")
    parts: dict[str, str] = {}
    for message in messages.elts:
        if not isinstance(message, ast.Dict):
            raise ProtocolError(f"{path}:{message.lineno}: a message is not a dict literal")
        fields = {k.value: v for k, v in zip(message.keys, message.values, strict=True) if isinstance(k, ast.Constant)}
        role = fields.get("role")
        if not isinstance(role, ast.Constant) or "content" not in fields:
            raise ProtocolError(f"{path}:{message.lineno}: a message without a literal role and a content")
        parts[str(role.value)] = _template(fields["content"], str(path))
    if "user" not in parts:
        raise ProtocolError(f"{path}:{create.lineno}: no user message")
    lowers = any("correct_answer" in ast.unparse(c.func.value) for c in _calls(tree, "lower"))  # type: ignore[attr-defined]
    newlines = any(_constant_args(c)[:2] == ["\n", ""] for c in _calls(tree, "replace"))
    as_no = any(_constant_args(c)[:2] == ["pred", "no"] for c in _calls(tree, "get"))
    return JudgeSpec(system=parts.get("system", ""), user=parts["user"], backend="openai", model=str(kw["model"].value),
                     temperature=None if temperature is None else float(temperature.value), reply="free",  # type: ignore[attr-defined]
                     lowercase=lowers, strip_newlines=newlines, failures="wrong" if as_no else "excluded",
                     protocol=EGOTEXTVQA)


def egotextvqa_protocol(prompt_file: Path, eval_file: Path) -> Protocol:
    return Protocol(
        name=EGOTEXTVQA, description="The EgoTextVQA release's protocol: its per-model inference prompts "
        "(mllm_prompt.json) and its GPT judge (gpt_eval.py), as the paper's numbers were measured.",
        prompts=egotextvqa_prompts(prompt_file), judge=egotextvqa_judge(eval_file), frames="paper",
        sources=(_source(prompt_file), _source(eval_file)), notes=EGOTEXTVQA_NOTES)


# --------------------------------------------------------------------------- EgoTempo

def _notebook_cells(path: Path) -> Iterator[tuple[int, ast.Module]]:
    """(cell index, parsed code) of each code cell; shell and magic lines (``!pip``, ``%time``) are
    blanked so the line numbers stay, and cells that are still not Python are passed over."""
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        cells = notebook["cells"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ProtocolError(f"{path}: not a readable Jupyter notebook ({exc})") from None
    for i, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        lines = ["" if line.lstrip().startswith(("!", "%")) else line for line in source.split("\n")]
        try:
            yield i, ast.parse("\n".join(lines))
        except SyntaxError:
            continue


def _placeholders(node: ast.JoinedStr) -> set[str]:
    roles = set()
    for part in node.values:
        if isinstance(part, ast.FormattedValue) and isinstance(part.value, ast.Name):
            try:
                roles.add(_role(part.value.id))
            except ValueError:
                roles.add("?")
    return roles


def egotempo_protocol(path: Path) -> Protocol:
    inference: str | None = None
    judge: JudgeSpec | None = None
    for index, tree in _notebook_cells(path):
        where = f"{path} (cell {index})"
        for node in ast.walk(tree):
            if inference is None and isinstance(node, ast.Assign) and isinstance(node.value, ast.JoinedStr) \
                    and _placeholders(node.value) == {QUESTION}:
                inference = _template(node.value, where)
            if judge is None and isinstance(node, ast.FunctionDef):
                returned = [r.value for r in ast.walk(node) if isinstance(r, ast.Return)
                            and isinstance(r.value, ast.JoinedStr)]
                if returned and {ANSWER, PREDICTION} <= _placeholders(returned[0]):
                    judge = _notebook_judge(tree, _template(returned[0], where), where)
    if inference is None:
        raise ProtocolError(f"{path}: no inference prompt found (an f-string over {{question}} alone)")
    if judge is None:
        raise ProtocolError(f"{path}: no judge prompt found (a function returning an f-string over the reference "
                            "and the prediction)")
    return Protocol(
        name=EGOTEMPO, description="The EgoTempo release's protocol: its question template and its Gemini judge "
        "(gemini_eval.ipynb).", prompts=(Prompt(family="gemini", template=inference),), judge=judge,
        sources=(_source(path),), notes=EGOTEMPO_NOTES)


def _notebook_judge(cell: ast.Module, user: str, where: str) -> JudgeSpec:
    """The judge of the cell that builds the judge prompt: its model constant, and a temperature only
    where the cell sets one."""
    model = None
    temperature: float | None = None
    for node in ast.walk(cell):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            if any(isinstance(t, ast.Name) and "MODEL" in t.id.upper() for t in node.targets):
                model = node.value.value
        if isinstance(node, ast.keyword) and node.arg == "temperature" and isinstance(node.value, ast.Constant):
            temperature = float(node.value.value)
    if model is None:
        raise ProtocolError(f"{where}: the judge's model name is not a literal in the judge's cell")
    return JudgeSpec(system="", user=user, backend="gemini", model=model, temperature=temperature, reply="free",
                     failures="excluded", protocol=EGOTEMPO)


# --------------------------------------------------------------------------- import

def find_releases(paths: list[Path]) -> dict[str, tuple[Path, ...]]:
    """Which release each path is (a clone's folder, or the files themselves): protocol name -> files."""
    files: dict[str, Path] = {}
    for path in paths:
        if path.is_dir():
            for name in RELEASE_SHA256:
                if (path / name).is_file():
                    files[name] = path / name
        elif path.is_file() and path.name in RELEASE_SHA256:
            files[path.name] = path
        elif path.exists():
            raise ProtocolError(f"{path}: not one of the releases' files ({', '.join(RELEASE_SHA256)}) or a folder "
                                "holding them")
        else:
            raise ProtocolError(f"{path} does not exist")
    found: dict[str, tuple[Path, ...]] = {}
    if "mllm_prompt.json" in files or "gpt_eval.py" in files:
        missing = [n for n in ("mllm_prompt.json", "gpt_eval.py") if n not in files]
        if missing:
            raise ProtocolError(f"the EgoTextVQA release needs both mllm_prompt.json and gpt_eval.py; missing "
                                f"{', '.join(missing)}")
        found[EGOTEXTVQA] = (files["mllm_prompt.json"], files["gpt_eval.py"])
    if "gemini_eval.ipynb" in files:
        found[EGOTEMPO] = (files["gemini_eval.ipynb"],)
    if not found:
        raise ProtocolError(f"no release files in {', '.join(map(str, paths))}: expected a clone of EgoTextVQA "
                            "(mllm_prompt.json, gpt_eval.py) or of egotempo (gemini_eval.ipynb)")
    return found


def import_releases(paths: list[Path], dest: Path) -> list[Protocol]:
    """Read every release among ``paths`` and write its protocol to ``dest/<name>.yaml``."""
    protocols = [egotextvqa_protocol(*files) if name == EGOTEXTVQA else egotempo_protocol(*files)
                 for name, files in find_releases(paths).items()]
    dest.mkdir(parents=True, exist_ok=True)
    for protocol in protocols:
        target = dest / f"{protocol.name}.yaml"
        header = ("# Written by `egotask protocol import` from the files under `sources`. The prompts are the "
                  "release\n# authors' text: keep this file to yourself rather than committing it.\n")
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(header + dump_protocol(protocol), encoding="utf-8")
        os.replace(tmp, target)  # whole or not at all
    return protocols
