"""``lmms_eval ... --plan`` (and ``egotask plan``): what a run would do, counted before it runs.

The plan builds the run's tasks and requests as lmms-eval does (the same task YAMLs, ``--limit``,
``--gen_kwargs``) and, for egotask's adapters, the adapter itself without its weights, so that each
item's answer-cache key is the one the run will look up. It then reads the answer and verdict caches
(read-only, :func:`egotask.sqlite_store.keys_present`) and counts, per task: the items, the answers
already cached, the visible-interval cuts still to make, the frames to decode, the verdicts cached,
settled by rule or still to ask for, and the judge's tokens, cost and time. It writes nothing: no
cut, no cache entry, no output folder; lmms-eval's loading of the tasks' packaged one-line stub goes
to a temporary HF datasets cache removed at exit.

What is exact and what is assumed:

- items, cached answers and verdicts, cuts, frames: exact (the frames as egotask's sampler counts them);
- an item whose answer is not cached yet has no prediction to judge: it is counted as one request
  ("at most": a shortcut may settle it), with the reference standing in for the prediction's text;
- tokens in: the judge prompts rendered for each request, at :data:`CHARS_PER_TOKEN` characters a
  token (Gemini's documented rule of thumb), rounded up per request; tokens out: the
  ``plan_output_tokens`` setting a verdict; no retries;
- time: requests / concurrency x the ``plan_latency`` setting (or ``--plan-latency``), slower when
  ``EGOTASK_JUDGE_RPM`` caps it; generation time is not estimated (it depends on the model and machine).
"""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CHARS_PER_TOKEN = 4  # "a token is about 4 characters" for Gemini models (ai.google.dev, tokens)
WIDTH = 110  # the sentences under the table are wrapped to the table's width
COST_DIGITS = 3  # significant figures the plan shows a cost with, and the rounding a test holds it to

_active = False


def planning_active() -> bool:
    """Whether this process is planning: task loading then checks and cuts nothing, and adapters load
    no weights and start no workers."""
    return _active


@contextlib.contextmanager
def planning() -> Iterator[None]:
    global _active
    _active = True
    try:
        yield
    finally:
        _active = False


@contextlib.contextmanager
def scratch_datasets_cache() -> Iterator[None]:
    """HF datasets' cache in a temporary folder (for the stub lmms-eval loads per task), when
    ``datasets`` has not read its variable yet; removed afterwards."""
    import sys

    from egotask.settings import set_vendor_value, vendor_value

    if "datasets" in sys.modules:
        yield
        return
    before = vendor_value("HF_DATASETS_CACHE")
    with tempfile.TemporaryDirectory(prefix="egotask-plan-datasets-") as folder:
        set_vendor_value("HF_DATASETS_CACHE", folder)
        try:
            yield
        finally:
            set_vendor_value("HF_DATASETS_CACHE", before or None)


def tokens_of(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def round_cost(usd: float) -> float:
    """``usd`` to :data:`COST_DIGITS` significant figures, as the plan shows it."""
    if usd <= 0:
        return 0.0
    return round(usd, COST_DIGITS - 1 - math.floor(math.log10(usd)))


@dataclass
class TaskPlan:
    task: str
    items: int = 0
    answers_cached: int | None = None  # None: the model keeps no egotask answer cache
    to_generate: int = 0
    cuts_to_make: int = 0
    cuts_cached: int = 0
    frames: int | None = None  # frames the sampler will decode for the answers to generate; None: not egotask's
    videos: int = 0  # distinct videos opened to answer them
    verdicts_cached: int = 0
    settled_by_rule: int = 0
    requests_known: int = 0  # answered items whose verdict needs a request
    requests_unknown: int = 0  # items not answered yet: a request each at most
    tokens_in: int = 0
    tokens_out: int = 0

    @property
    def requests(self) -> int:
        return self.requests_known + self.requests_unknown


@dataclass
class Plan:
    model: str
    judge: str
    judge_model: str
    judge_mode: str
    llm_judge: bool
    tasks: list[TaskPlan] = field(default_factory=list)
    preflight_requests: int = 0  # the preflight's test request
    preflight_tokens_in: int = 0
    output_tokens_each: int = 0
    concurrency: int = 1
    rpm: float | None = None
    latency: float = 0.0
    latency_source: str = ""
    cost_sync: dict[str, Any] = field(default_factory=dict)
    cost_batch: dict[str, Any] = field(default_factory=dict)
    prices_checked: str = ""
    notes: list[str] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(getattr(t, name) or 0 for t in self.tasks)

    @property
    def requests(self) -> int:
        """Judge requests the run sends (the preflight's included), at most."""
        return self.total("requests") + self.preflight_requests

    @property
    def tokens_in(self) -> int:
        return self.total("tokens_in") + self.preflight_tokens_in

    @property
    def tokens_out(self) -> int:
        return self.total("tokens_out") + self.preflight_requests * self.output_tokens_each

    @property
    def judge_seconds(self) -> float:
        rounds = math.ceil(self.requests / max(self.concurrency, 1)) * self.latency
        return max(rounds, self.requests / self.rpm * 60) if self.rpm else rounds

    @property
    def estimated_usd(self) -> float | None:
        """The synchronous cost (what a run with ``--judge-mode sync`` pays), unrounded."""
        return self.cost_sync.get("usd")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for task, data in zip(self.tasks, out["tasks"], strict=True):
            data["requests"] = task.requests
        out.update(requests=self.requests, tokens_in=self.tokens_in, tokens_out=self.tokens_out,
                   judge_seconds=self.judge_seconds)
        return out


# --------------------------------------------------------------------------- building it

def build_plan(args: Any, latency: float | None = None, scratch: bool = True) -> Plan:
    """The plan of the run lmms-eval's parsed ``args`` describe (``--tasks``, ``--model``,
    ``--model_args``, ``--limit``, ``--gen_kwargs``, ``--include_path``), under egotask's settings.
    ``scratch``: HF datasets' cache goes to a temporary folder (a plan alone; not for a run that
    follows in this process, whose ``datasets`` would keep the removed folder)."""
    from egotask.judges import JudgeNotReady, get_judge
    from egotask.judges.llm import LLMJudge
    from egotask.settings import get_settings

    settings = get_settings()
    judge = get_judge()
    llm = isinstance(judge, LLMJudge)
    plan = Plan(model=args.model, judge=judge.name, judge_model=judge.model, judge_mode=settings.judge_mode,
                llm_judge=llm, output_tokens_each=settings.plan_output_tokens if llm else 0,
                concurrency=settings.judge_concurrency, rpm=settings.judge_rpm if llm else None,
                latency=latency if latency is not None else settings.plan_latency,
                latency_source="--plan-latency" if latency is not None else "EGOTASK_PLAN_LATENCY")
    try:
        judge.check_ready()
    except JudgeNotReady as exc:  # the plan still counts; the run would stop at its preflight
        plan.notes.append(f"note: the run would stop before the model loads: {exc.explain('--judge')}")
    with planning(), (scratch_datasets_cache() if scratch else contextlib.nullcontext()):
        if scratch:  # a plan alone: the one-line stub's "Generating test split" bars say nothing
            import datasets

            datasets.disable_progress_bars()
        lm, tasks = _requests(args)
        for name, task, instances in tasks:
            plan.tasks.append(_task_plan(name, task, instances, lm, judge, plan))
    if llm and settings.judge_mode == "sync":
        from egotask.judges.llm import PROBE_ITEM

        system, user = judge.prompts(PROBE_ITEM)
        plan.preflight_requests, plan.preflight_tokens_in = 1, tokens_of(system + user)
    _price(plan)
    return plan


def _requests(args: Any) -> tuple[Any, list[tuple[str, Any, list[Any]]]]:
    """(the model as far as the plan needs it, or None; each task's name, object and instances),
    built as lmms-eval's evaluator builds them."""
    from lmms_eval import models
    from lmms_eval.evaluator_utils import get_sample_size, get_task_list
    from lmms_eval.tasks import TaskManager, get_task_dict
    from lmms_eval.utils import simple_parse_args_string

    from egotask.model_adapters.base import FramesModel

    cls = models.get_model(args.model, getattr(args, "force_simple", False))
    lm = None
    if isinstance(cls, type) and issubclass(cls, FramesModel):
        # The adapter as lmms-eval builds it, so that its answer-cache keys are the run's; planning
        # loads no weights.
        lm = cls.create_from_arg_string(args.model_args or "", {
            "batch_size": args.batch_size, "max_batch_size": getattr(args, "max_batch_size", None),
            "device": args.device})
    manager = TaskManager(args.verbosity, include_path=args.include_path, model_name=args.model)
    task_dict = get_task_dict(args.tasks.split(","), manager, "simple" if lm is None or lm.is_simple else "chat")
    gen_kwargs = simple_parse_args_string(args.gen_kwargs) if args.gen_kwargs else None
    out = []
    for task_output in get_task_list(task_dict):
        task, name = task_output.task, task_output.task_name
        if task is None:
            continue
        if lm is not None:
            lm.task_dict[name] = task.dataset
        if gen_kwargs and "generate_until" in task.get_config("output_type"):
            task.set_config(key="generation_kwargs", value=gen_kwargs, update=True)
        if task.get_config("num_fewshot") is None:
            task.set_config(key="num_fewshot", value=0)
        task.build_all_requests(limit=get_sample_size(task, args.limit), offset=getattr(args, "offset", 0) or 0)
        out.append((name, task, list(task.instances)))
    return lm, out


def _task_plan(name: str, task: Any, instances: list[Any], lm: Any, judge: Any, plan: Plan) -> TaskPlan:
    from egotask.data.sources import resolve_video

    out = TaskPlan(name, items=len(instances))
    # Each request names its doc by (split, id) in the task's dataset, where the adapters look it up.
    docs = [task.dataset[inst.args[5]][inst.args[3]] for inst in instances]
    out.cuts_to_make, out.cuts_cached = _cuts(docs, resolve_video, lm is None)
    if lm is not None:
        predictions = _cached_predictions(task, instances, lm, out)
    else:
        predictions = [None] * len(instances)
        out.to_generate = len(instances)
        plan.notes.append(f"{plan.model} is not an egotask adapter: it keeps no answer cache and samples its own "
                          "frames, so every item is generated and its frames are not counted")
    if plan.llm_judge:
        _judging(docs, predictions, judge, plan, out)
    return out


def _cached_predictions(task: Any, instances: list[Any], lm: Any, out: TaskPlan) -> list[str | None]:
    """Each item's prediction where the answer cache holds its answer (as the run would extract it), else
    None; fills the task plan's answer and frame counts."""
    from lmms_eval.api.reasoning import parse_reasoning_tags_config, strip_reasoning_tags

    from egotask import tasklib
    from egotask.answers import FILENAME as ANSWERS_FILE
    from egotask.model_adapters.base import is_greedy
    from egotask.settings import get_settings
    from egotask.sqlite_store import values_for

    settings = get_settings()
    predictions: list[str | None] = [None] * len(instances)
    pending = [lm.prepare(inst) for inst in instances]
    reusable = settings.answer_cache == "on"
    keys = [p.key for p in pending if is_greedy(p.gen_kwargs)] if reusable else []
    answers = {key: json.loads(outcome)["text"] for key, outcome in
               values_for(settings.cache_dir / ANSWERS_FILE, "answers", keys, "answer").items()}
    tags = parse_reasoning_tags_config(cli_value=None, task_value=getattr(task.config, "reasoning_tags", None))
    for i, p in enumerate(pending):
        if p.key in answers:
            text = answers[p.key]
            predictions[i] = tasklib.prediction_of(strip_reasoning_tags(text, tags) if tags else text)
    out.answers_cached = sum(p is not None for p in predictions)
    todo = [p for p, pred in zip(pending, predictions, strict=True) if pred is None]
    out.to_generate = len(todo)
    out.frames, out.videos = _frames(todo)
    return predictions


def _judging(docs: list[dict[str, Any]], predictions: list[str | None], judge: Any, plan: Plan,
             out: TaskPlan) -> None:
    """The task plan's verdict counts, requests and tokens. A known prediction is settled by rule, found in
    the verdict cache, or asked; an item still to generate is asked at most once (the reference stands in
    for its prediction's text)."""
    from egotask.judges import JudgeItem, settled_verdict
    from egotask.sqlite_store import keys_present

    cache_reads = judge.cache is not None and judge.cache.reads
    items = [JudgeItem(d["question"], d["answer"], pred if pred is not None else d["answer"], d["question_type"])
             for d, pred in zip(docs, predictions, strict=True)]
    known = [pred is not None for pred in predictions]
    settled = [k and settled_verdict(judge, item) is not None for item, k in zip(items, known, strict=True)]
    ask = [i for i, k in enumerate(known) if k and not settled[i]]
    keys = [judge.item_key(items[i]) for i in ask]
    cached = keys_present(judge.cache.path, "verdicts", keys) if cache_reads else set()
    out.settled_by_rule = sum(settled)
    out.verdicts_cached = sum(k in cached for k in keys)
    requests = [i for i, k in zip(ask, keys, strict=True) if k not in cached]
    unknown = [i for i, k in enumerate(known) if not k]
    out.requests_known, out.requests_unknown = len(requests), len(unknown)
    for i in requests + unknown:
        system, user = judge.prompts(items[i])
        out.tokens_in += tokens_of(system + user)
    out.tokens_out = out.requests * plan.output_tokens_each


def _cuts(docs: list[dict[str, Any]], resolve: Any, needed: bool) -> tuple[int, int]:
    """(cuts still to make, cuts already made) of the visible intervals, for a model that opens files."""
    from egotask import visible_clips

    if not needed:
        return 0, 0
    jobs = {(str(resolve(d)), float(d["visible_start"]), float(d["visible_end"]))
            for d in docs if d.get("visible_end") is not None}
    made = 0
    for src, start, end in jobs:
        try:
            clip = visible_clips.clip_path(Path(src), start, end)
        except OSError:
            continue  # the run stops at this video before the model loads, and says so
        made += clip.is_file() and clip.with_suffix(".json").is_file()
    return len(jobs) - made, made


def _frames(todo: list[Any]) -> tuple[int, int]:
    """(frames egotask's sampler decodes for these items, distinct videos): a fixed count per item, or
    ``fps`` frames a second of the visible interval capped by ``max_frames`` (the video's duration read
    from its header where the interval runs to the end)."""
    from egotask.frames import VideoError, frames_for, probe_video

    total, videos, durations = 0, set(), {}
    for item in todo:
        settings = item.frames
        for visual in item.visuals:
            source = str(getattr(visual, "source", None) or visual)
            videos.add(source)
            start, end = float(getattr(visual, "start", 0.0) or 0.0), getattr(visual, "end", None)
            if end is None or settings.get("fps"):
                if source not in durations:
                    try:
                        durations[source] = probe_video(source).duration
                    except VideoError:
                        durations[source] = None
                duration = durations[source]
                end = duration if end is None else (min(float(end), duration) if duration else float(end))
            if end is None:
                continue
            total += frames_for(start, float(end), num_frames=None if settings.get("fps") else settings["max_frames"],
                                fps=settings.get("fps"), max_frames=settings["max_frames"])
    return total, len(videos)


def _price(plan: Plan) -> None:
    from egotask.judges.prices import estimate_cost, prices_checked

    plan.prices_checked = prices_checked()
    plan.cost_sync = estimate_cost(plan.judge, plan.judge_model, plan.tokens_in, plan.tokens_out)
    plan.cost_batch = estimate_cost(plan.judge, plan.judge_model, plan.tokens_in, plan.tokens_out, batch=True)


# --------------------------------------------------------------------------- showing it

def _usd(cost: dict[str, Any]) -> str:
    usd = cost.get("usd")
    return "no price" if usd is None else f"${round_cost(usd):.{max(COST_DIGITS, 2)}g}" if usd else "$0"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def render_plan(plan: Plan) -> str:
    from tabulate import tabulate

    def n(value: int | None) -> str:
        return "-" if value is None else str(value)

    rows = [[t.task, t.items, n(t.answers_cached), t.to_generate, t.cuts_to_make, n(t.frames),
             t.verdicts_cached, t.settled_by_rule, t.requests, t.tokens_in, t.tokens_out] for t in plan.tasks]
    known_frames = [t.frames for t in plan.tasks if t.frames is not None]
    rows.append(["total", plan.total("items"),
                 n(sum(t.answers_cached for t in plan.tasks) if all(t.answers_cached is not None for t in plan.tasks)
                   else None),
                 plan.total("to_generate"), plan.total("cuts_to_make"),
                 n(sum(known_frames) if len(known_frames) == len(plan.tasks) else None),
                 plan.total("verdicts_cached"), plan.total("settled_by_rule"), plan.total("requests"),
                 plan.total("tokens_in"), plan.total("tokens_out")])
    headers = ["task", "items", "answers\ncached", "to\ngenerate", "cuts to\nmake", "frames to\ndecode",
               "verdicts\ncached", "settled\nby rule", "judge\nrequests", "tokens\nin", "tokens\nout"]
    lines = [f"egotask plan (nothing was run or written): model {plan.model}, judge {plan.judge} "
             f"({plan.judge_model}), judge mode {plan.judge_mode}", "",
             tabulate(rows, headers=headers, tablefmt="simple"), ""]
    unknown = plan.total("requests_unknown")
    if not plan.llm_judge:
        lines.append(f"judge: {plan.judge} is rule-based: no requests, no tokens, no cost.")
    else:
        when = ("later, by `egotask judge OUTPUT [--batch]` (--judge-mode defer)" if plan.judge_mode == "defer"
                else "during the run")
        may = " (a shortcut may settle some of these without a request)" if unknown else ""
        lines.append(f"judge requests: {plan.requests}{' at most' if unknown else ''}, {when}: "
                     f"{plan.total('requests_known')} for answers already cached, {unknown} for answers still to "
                     f"generate{may}, {plan.preflight_requests} preflight test request; no retries assumed.")
        stand_in = "; the reference stands in for answers not generated yet" if unknown else ""
        lines.append(f"tokens: {plan.tokens_in} in (the rendered judge prompts, {CHARS_PER_TOKEN} characters a token, "
                     f"rounded up per request{stand_in}), "
                     f"{plan.tokens_out} out ({plan.output_tokens_each} a verdict, EGOTASK_PLAN_OUTPUT_TOKENS).")
        lines.append(f"cost: {_usd(plan.cost_sync)} synchronous, {_usd(plan.cost_batch)} batch "
                     f"(`egotask judge --batch`), rounded to {COST_DIGITS} significant figures; prices from "
                     f"egotask/judges/prices.json, checked {plan.prices_checked}"
                     + (f" ({plan.cost_sync['source']})" if plan.cost_sync.get("source") else "")
                     + (f"; {plan.cost_sync['note']}" if plan.cost_sync.get("usd") is None else "") + ".")
        rpm = f", at most {plan.rpm:g} a minute (EGOTASK_JUDGE_RPM)" if plan.rpm else ""
        lines.append(f"time: judging about {_duration(plan.judge_seconds)} ({plan.requests} requests, "
                     f"{plan.concurrency} at once (EGOTASK_JUDGE_CONCURRENCY){rpm}, {plan.latency:g} s each: "
                     f"assumed, {plan.latency_source}); generation: not estimated, it depends on the model "
                     f"and the machine ({plan.total('to_generate')} answers to generate).")
    if plan.total("to_generate") and any(t.frames for t in plan.tasks):
        lines.append(f"frames: what egotask's sampler picks for the answers to generate, from "
                     f"{plan.total('videos')} video(s); a video's questions are decoded in one pass, so frames they "
                     "share are decoded once.")
    lines.extend(dict.fromkeys(plan.notes))
    head, prose = lines[:4], lines[4:]  # the title and the table as they are; the sentences wrapped
    return "\n".join(head + [textwrap.fill(line, width=WIDTH, subsequent_indent="  ",
                                                   break_on_hyphens=False, break_long_words=False) for line in prose])
