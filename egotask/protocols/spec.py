"""What a protocol is: the inference prompt (per model family), the answer extraction and the judge.

A protocol is a YAML file (see ``docs`` "Protocols" and :data:`FIELDS`); :func:`read_protocol` checks
every field and names the file and field when one is wrong. Its two hashes identify it in records,
results and caches:

- ``inference_sha256``: the chosen prompt's template and answer prefix;
- ``judge_sha256``: the judge's system and user templates, with everything else that changes a verdict
  (reply format, temperature, lowercasing, newline removal).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# The placeholders a template may hold. Nothing else in a template is special, so literal braces
# (an official prompt's "{'pred': 'yes'}") pass through untouched.
QUESTION, ANSWER, PREDICTION, ITEM = "{question}", "{answer}", "{prediction}", "{item}"
# {item} becomes one JSON object between these lines, so quotes and newlines in a prediction are
# escaped and cannot close the block or pass as instructions.
ITEM_BEGIN, ITEM_END = "<<<ITEM", "ITEM>>>"
REPLY_FORMATS = ("json-schema", "free")  # replies constrained to egotask's JSON schema, or free text
FAILURE_RULES = ("excluded", "wrong")  # a failed judge call is left out, or counted as no/0


class ProtocolError(ValueError):
    """A protocol file that cannot be used; the message names the file and the field."""


def _sha256(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()


def _identity(text: str) -> str:
    """A model name reduced to letters and digits, for matching prompt families: "Qwen/Qwen2-VL-7B" ->
    "qwenqwen2vl7b" holds "qwen2vl"."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


@dataclass(frozen=True)
class Prompt:
    """The inference prompt of one model family."""

    family: str
    template: str  # holds {question}
    answer_prefix: str | None = None  # e.g. "Answer:": the answer is what follows its last occurrence

    def render(self, question: str) -> str:
        return self.template.replace(QUESTION, question)

    @property
    def sha256(self) -> str:
        return _sha256(self.template, self.answer_prefix)

    def extract(self, response: str) -> str:
        """The answer in a response: the text after the last answer prefix (case-insensitive), when the
        prompt asks for one and the response has it; else the whole response."""
        if not self.answer_prefix:
            return response
        at = response.lower().rfind(self.answer_prefix.lower())
        if at < 0:
            return response
        return response[at + len(self.answer_prefix):].strip() or response


@dataclass(frozen=True)
class JudgeSpec:
    """How answers are judged."""

    system: str
    user: str  # holds {prediction} and {answer} (or {item}), usually {question}
    backend: str | None = None  # None: the EGOTASK_JUDGE setting (or --judge) decides
    model: str | None = None  # None: the backend's default
    temperature: float | None = 0.0  # None: the request sends none (the vendor's default)
    reply: str = "json-schema"
    lowercase: bool = False  # reference and prediction lowercased before judging
    strip_newlines: bool = False  # newlines removed from reference and prediction
    failures: str = "excluded"
    # Exact matches and shared abstentions are judged right without a request (egotask.judges.shortcuts).
    # Not in the hash: it changes which items are asked, never what an asked item's verdict is.
    shortcuts: bool = False
    version: str | None = None  # a readable label for egotask's own prompts ("egotask-judge-v2")
    protocol: str = ""  # the protocol's name (not part of the hash)

    @property
    def sha256(self) -> str:
        return _sha256(self.system, self.user, self.reply, self.temperature, self.lowercase, self.strip_newlines)

    @property
    def prompt_version(self) -> str:
        """What verdicts record as their prompt version."""
        return self.version or f"{self.protocol}@{self.sha256[:12]}"

    def prepare(self, text: str) -> str:
        """A reference or prediction as this protocol hands it to the judge."""
        if self.strip_newlines:
            text = text.replace("\n", "")
        return text.lower() if self.lowercase else text

    def render_user(self, question: str, answer: str, prediction: str) -> str:
        answer, prediction = self.prepare(answer), self.prepare(prediction)
        if ITEM in self.user:
            payload = {"question": question, "reference": answer, "prediction": prediction}
            item = f"{ITEM_BEGIN}\n{json.dumps(payload, ensure_ascii=False)}\n{ITEM_END}"
            text = self.user.replace(ITEM, item)
        else:
            text = self.user
        # The prediction goes in last, so text it holds is never read as another placeholder.
        return text.replace(QUESTION, question).replace(ANSWER, answer).replace(PREDICTION, prediction)


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    prompts: tuple[Prompt, ...]  # the first is the default
    judge: JudgeSpec
    frames: str | None = None  # the frame preset its published numbers used (egotask.presets), if any
    sources: tuple[dict[str, str], ...] = ()  # imported protocols: {file, sha256, release}
    notes: tuple[str, ...] = ()
    path: Path | None = field(default=None, compare=False)

    def prompt_for(self, family: str | None = None, model_identity: str | None = None) -> Prompt:
        """The prompt of ``family`` if given; else the family whose name the model's identity (its
        name and arguments) contains, the longest such; else the default (the first)."""
        if family:
            for prompt in self.prompts:
                if prompt.family == family:
                    return prompt
            raise ProtocolError(f"protocol {self.name!r} has no prompt for family {family!r}; it has: "
                                f"{', '.join(p.family for p in self.prompts)}")
        if model_identity:
            ident = _identity(model_identity)
            matches = [p for p in self.prompts if _identity(p.family) and _identity(p.family) in ident]
            if matches:
                return max(matches, key=lambda p: len(_identity(p.family)))
        return self.prompts[0]

    @property
    def release_verified(self) -> bool:
        """Imported from files identical to the published release (every source checked)."""
        return bool(self.sources) and all(s.get("release") == "yes" for s in self.sources)

    def to_dict(self) -> dict[str, Any]:
        j = self.judge
        return {
            "name": self.name, "description": self.description,
            "prompts": [{"family": p.family, "template": p.template,
                         **({"answer_prefix": p.answer_prefix} if p.answer_prefix else {})} for p in self.prompts],
            "judge": {"backend": j.backend, "model": j.model, "temperature": j.temperature, "reply": j.reply,
                      "lowercase": j.lowercase, "strip_newlines": j.strip_newlines, "failures": j.failures,
                      "shortcuts": j.shortcuts,
                      **({"version": j.version} if j.version else {}), "system": j.system, "user": j.user},
            **({"frames": self.frames} if self.frames else {}),
            **({"sources": list(self.sources)} if self.sources else {}),
            **({"notes": list(self.notes)} if self.notes else {}),
        }

    def record(self, prompt: Prompt) -> dict[str, Any]:
        """What a sample record keeps of the protocol it was asked under (its verdict names the judge
        prompt it was judged under, which re-judging may change)."""
        return {"name": self.name, "prompt_family": prompt.family, "inference_sha256": prompt.sha256,
                **({"release_verified": self.release_verified} if self.sources else {})}


# --------------------------------------------------------------------------- reading and writing

def _field(data: dict[str, Any], name: str, kind: type | tuple[type, ...], where: str, *, required: bool = False,
           default: Any = None) -> Any:
    if name not in data or data[name] is None:
        if required:
            raise ProtocolError(f"{where}: missing field {name}")
        return default
    value = data[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # YAML's true/false are ints to Python: a number field must not take them.
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise ProtocolError(f"{where}: field {name} must be {_kind_name(kind)}, got {value!r}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "text", bool: "true or false", int: "a number", float: "a number", list: "a list", dict: "a mapping"}
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


def _choice(value: str, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise ProtocolError(f"{where}: must be one of {', '.join(choices)}, got {value!r}")
    return value


def protocol_from_dict(data: Any, where: str, path: Path | None = None) -> Protocol:
    if not isinstance(data, dict):
        raise ProtocolError(f"{where}: a protocol file holds a mapping, got {type(data).__name__}")
    unknown = set(data) - {"name", "description", "prompts", "judge", "frames", "sources", "notes"}
    if unknown:
        raise ProtocolError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    name = _field(data, "name", str, where, required=True).strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ProtocolError(f"{where}: field name must be letters, digits, '.', '_' or '-', got {name!r}")
    raw_prompts = _field(data, "prompts", list, where, required=True)
    if not raw_prompts:
        raise ProtocolError(f"{where}: field prompts must list at least one prompt")
    prompts = []
    for i, p in enumerate(raw_prompts):
        at = f"{where}: prompts[{i}]"
        if not isinstance(p, dict):
            raise ProtocolError(f"{at}: must be a mapping with family and template")
        template = _field(p, "template", str, at, required=True)
        if QUESTION not in template:
            raise ProtocolError(f"{at}: field template must hold {QUESTION}, where the question goes")
        prompts.append(Prompt(family=str(_field(p, "family", str, at, required=True)), template=template,
                              answer_prefix=_field(p, "answer_prefix", str, at) or None))
    families = [p.family for p in prompts]
    if len(set(families)) != len(families):
        raise ProtocolError(f"{where}: prompts: each family may appear once ({', '.join(families)})")
    j = _field(data, "judge", dict, where, required=True)
    at = f"{where}: judge"
    user = _field(j, "user", str, at, required=True)
    if PREDICTION not in user and ITEM not in user:
        raise ProtocolError(f"{at}: field user must hold {PREDICTION} (or {ITEM})")
    if ANSWER not in user and ITEM not in user:
        raise ProtocolError(f"{at}: field user must hold {ANSWER} (or {ITEM})")
    # No field: greedy (0). An explicit null: the request sends none, so the vendor's default applies.
    temperature = 0.0 if "temperature" not in j else (
        None if j["temperature"] is None else float(_field(j, "temperature", (int, float), at)))
    judge = JudgeSpec(
        system=_field(j, "system", str, at, default=""), user=user,
        backend=_field(j, "backend", str, at), model=_field(j, "model", str, at),
        temperature=temperature,
        reply=_choice(_field(j, "reply", str, at, default="json-schema"), REPLY_FORMATS, f"{at}: field reply"),
        lowercase=_field(j, "lowercase", bool, at, default=False),
        strip_newlines=_field(j, "strip_newlines", bool, at, default=False),
        failures=_choice(_field(j, "failures", str, at, default="excluded"), FAILURE_RULES, f"{at}: field failures"),
        shortcuts=_field(j, "shortcuts", bool, at, default=False),
        version=_field(j, "version", str, at), protocol=name,
    )
    sources = _field(data, "sources", list, where, default=[])
    return Protocol(name=name, description=str(_field(data, "description", str, where, default="")),
                    prompts=tuple(prompts), judge=judge, frames=_field(data, "frames", str, where),
                    sources=tuple({str(k): str(v) for k, v in s.items()} for s in sources if isinstance(s, dict)),
                    notes=tuple(str(n) for n in _field(data, "notes", list, where, default=[])), path=path)


def read_protocol(path: Path) -> Protocol:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProtocolError(f"{path}: cannot read the protocol file ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise ProtocolError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    return protocol_from_dict(data, str(path), path)


class _Literal(str):
    """A string written as a YAML block (``|``), so long prompts stay readable in the file."""


yaml.SafeDumper.add_representer(
    _Literal, lambda dumper, s: dumper.represent_scalar("tag:yaml.org,2002:str", s, style="|"))


def _blocks(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _blocks(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_blocks(v) for v in value]
    # A block keeps its text exactly only without trailing spaces on a line and without tabs.
    if isinstance(value, str) and "\n" in value and not re.search(r"[ \t]\n|\t|[ \t]$", value):
        return _Literal(value)
    return value


def dump_protocol(protocol: Protocol) -> str:
    return yaml.safe_dump(_blocks(protocol.to_dict()), sort_keys=False, allow_unicode=True, width=110)
