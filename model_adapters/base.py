"""What every egotask video-QA adapter shares: lmms-eval plumbing, checkpoint loading (full, LoRA,
merged LoRA), frame sampling through the one sampler, batching, stop strings and reasoning tags.

:class:`FramesModel` is the base of any adapter that answers from sampled frames; :class:`VideoQAModel`
adds transformers checkpoints. A subclass implements ``generate`` (and a VLM sets ``family`` and
``default_max_new_tokens``).
"""

from __future__ import annotations

import inspect
import json
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from loguru import logger as eval_logger
from tqdm import tqdm

from egotask import answers as answers_module
from egotask.answers import AnswerStore, Outcome, answer_key, file_identity
from egotask.frames import (
    SAMPLER_VERSION,
    NothingVisible,
    SampledFrames,
    VideoError,
    check_force_frames,
    check_frame_count,
    check_frame_settings,
    sample_visual,
    sample_visuals,
)
from egotask.presets import max_frames_for, parse_frames
from egotask.reasoning import THINK_CLOSE, THINK_OPEN
from egotask.records import Generation


def output_file(path: Path) -> bool:
    """Whether a checkpoint folder's file may change what the model answers: every file but hidden
    ones, documentation and licences (folders such as a finetune run's ``checkpoints/`` hold no file
    the model loads)."""
    name = path.name.lower()
    return (path.is_file() and not name.startswith(".") and not name.endswith(".md")
            and not name.startswith(("readme", "license", "licence", "notice")))


@dataclass
class VideoPrompt:
    """One request, ready for a model: the question text and the sampled frames of each video."""

    text: str
    videos: list[SampledFrames]
    gen_kwargs: dict[str, Any]
    doc: dict[str, Any] | None = None  # the task's document, for adapters that read fields (e.g. question)
    decode_s: float | None = None  # seconds its frames took to decode (a shared decode: this item's share)


class Reply(str):
    """A reply's text that also carries what the backend reported about making it: prompt and completion
    tokens, and when its request (or batch) went in and how long it took. It is a ``str`` everywhere else,
    so an adapter's :meth:`FramesModel.generate` may return either; a plain ``str`` is timed by its batch."""

    prompt_tokens: int | None
    completion_tokens: int | None
    latency_s: float | None
    started: float | None

    def __new__(cls, text: str, *, prompt_tokens: int | None = None, completion_tokens: int | None = None,
                latency_s: float | None = None, started: float | None = None) -> Reply:
        obj = super().__new__(cls, text)
        obj.prompt_tokens, obj.completion_tokens = prompt_tokens, completion_tokens
        obj.latency_s, obj.started = latency_s, started
        return obj

    def timed(self, started: float, latency_s: float) -> Reply:
        """This reply with the timing of its request, unless the backend timed it itself."""
        if self.latency_s is not None:
            return self
        return Reply(self, prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
                     latency_s=latency_s, started=started)


def as_reply(text: str) -> Reply:
    return text if isinstance(text, Reply) else Reply(text)


def generated_lengths(new_ids: torch.Tensor, eos_ids: set[int]) -> list[int]:
    """Tokens each row of a batch generated: up to and including its first end-of-sequence token (a
    finished row is padded after it while the others go on), else all of them (it ran out of tokens)."""
    lengths = []
    for row in new_ids.tolist():
        ends = [i for i, token in enumerate(row) if token in eos_ids]
        lengths.append(ends[0] + 1 if ends else len(row))
    return lengths


def chat_messages(text: str, n_videos: int = 1) -> list[dict[str, Any]]:
    """One user turn: the videos, then the question (what the chat templates expect)."""
    content = [{"type": "video"} for _ in range(n_videos)] + [{"type": "text", "text": text}]
    return [{"role": "user", "content": content}]


def video_metadata(video: SampledFrames) -> Any:
    """The processors' ``VideoMetadata`` for pre-sampled frames (the HF and vLLM backends both use it).

    The processors need the frames' real times (Qwen3-VL otherwise assumes 24 fps; SmolVLM2 writes
    "Frame from MM:SS" from them) and the clip length, which is the end of what the model may see,
    not the length of the file.
    """
    from transformers.video_utils import VideoMetadata

    return VideoMetadata(total_num_frames=len(video.frames), fps=video.fps, frames_indices=video.frame_indices(),
                         duration=video.end)


def video_inputs(videos: list[SampledFrames]) -> dict[str, Any]:
    """Processor arguments for pre-sampled frames, shared by evaluation and finetuning."""
    if not videos:
        return {}
    return {"videos": [v.frames for v in videos], "video_metadata": [video_metadata(v) for v in videos],
            "do_sample_frames": False}


def cap_frame_pixels(processor: Any) -> None:
    """Qwen-VL video processors leave ``cap_pixels_per_frame`` unset and then warn, on every run, that
    they do not cap each frame's pixels as the reference implementation (qwen-vl-utils) does, and that
    the cap becomes the default. Adopt it: each frame gets at most ``max_video_tokens`` vision tokens and
    an even share of the video's pixel budget, as in the models' own recipe (egotask's ``max_pixels``
    shrinks the frames before that). Evaluation and finetuning both call this. Other processors have no
    such setting and are left alone."""
    video_processor = getattr(processor, "video_processor", None)
    if video_processor is not None and getattr(video_processor, "cap_pixels_per_frame", False) is None:
        video_processor.cap_pixels_per_frame = True


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).strip().lower() in ("1", "true", "yes", "on"):
        return True
    if str(value).strip().lower() in ("0", "false", "no", "off", "none", ""):
        return False
    raise ValueError(f"expected a boolean, got {value!r}")


def is_lora_dir(path: str) -> bool:
    return (Path(path) / "adapter_config.json").is_file()


def has_processor(path: str) -> bool:
    return any((Path(path) / name).is_file() for name in ("processor_config.json", "preprocessor_config.json"))


def lora_base(path: str, base: str | None) -> str:
    """The base checkpoint of a LoRA folder: ``base=`` wins, else its ``base_model_name_or_path``."""
    if base:
        return base
    config_path = Path(path) / "adapter_config.json"
    found = json.loads(config_path.read_text()).get("base_model_name_or_path")
    if not found:
        raise ValueError(f"{config_path}: no base_model_name_or_path; pass base=<checkpoint> in --model_args")
    return found


def split_reasoning(text: str, thinking: bool) -> str:
    """Normalise a reply to ``<think>reasoning</think>answer`` so lmms-eval's ``reasoning_tags`` hand
    only the answer to the judge, while the samples keep both. A Thinking template pre-fills
    ``<think>`` in the prompt, so the reply often starts inside the block; an unclosed block means
    generation stopped before the answer, and stays visibly unclosed."""
    if not thinking:
        return text.strip()
    body = text.strip()
    if body.startswith(THINK_OPEN):
        body = body[len(THINK_OPEN):]
    if THINK_CLOSE in body:
        reasoning, answer = body.split(THINK_CLOSE, 1)
        return f"{THINK_OPEN}{reasoning.strip()}{THINK_CLOSE}{answer.strip()}"
    return f"{THINK_OPEN}{body}"


def apply_stops(reply: str, until: str | list[str] | None) -> str:
    """Cut the answer at the first stop string; the reasoning block is left whole."""
    head, sep, answer = reply.rpartition(THINK_CLOSE) if THINK_CLOSE in reply else ("", "", reply)
    if reply.startswith(THINK_OPEN) and not sep:
        return reply  # unfinished reasoning: there is no answer to cut
    for stop in [until] if isinstance(until, str) else (until or []):
        if stop:
            answer = answer.split(stop)[0]
    return f"{head}{sep}{answer.strip()}"


def _known_args(cls: type) -> list[str]:
    """Every keyword an adapter's ``__init__`` chain accepts, for the unknown-argument error."""
    names: list[str] = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            names += [p.name for p in inspect.signature(init).parameters.values()
                      if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return list(dict.fromkeys(names))


def _missing_pretrained(cls: type) -> str:
    """The error for a missing ``pretrained=``, with the example of the adapter that names ``cls``."""
    from egotask.plugins import model_adapters

    path = f"{cls.__module__}.{cls.__qualname__}"
    for adapter in model_adapters().values():
        if adapter.class_path == path and adapter.example:
            return adapter.missing_args({}) or ""
    return (f"{cls.__name__} needs pretrained=<local folder or hub id> in --model_args; `egotask plugins` lists "
            "every adapter's arguments")


class GenerationFailure(Exception):
    """This item got no answer (an unreadable video, an empty frame set, a request that finally failed).
    It is recorded as a generation failure, counted apart, never judged and never scored as wrong; the
    other items go on."""

    replied = False  # a served endpoint's own reply said so (a refusal, a filter): the endpoint is up
    started: float | None = None  # Unix time its first request (or its batch) went in, where it got that far
    latency_s: float | None = None  # from then until it failed (retries included)


NO_FRAMES = "no frame in the visible interval"


def unreadable(exc: Exception) -> GenerationFailure:
    """The failure of an item whose video could not be read (named in ``exc``), or in whose visible
    interval nothing is visible (a question at 0 s)."""
    if isinstance(exc, NothingVisible):
        return GenerationFailure(f"{NO_FRAMES}: {exc}")
    return GenerationFailure(f"frames could not be read: {exc}")


DEFAULT_FRAME_MEMORY = 2 << 30  # bytes of decoded frames held ahead of the model (``frame_memory=``)


def parse_bytes(value: Any, name: str = "frame_memory") -> int:
    """A size in bytes: a whole number, or one with a unit (``512MB``, ``2GiB``; K/M/G are powers of 1024)."""
    text = str(value).strip().upper().replace(" ", "")
    units = {"": 1, "B": 1, "K": 1 << 10, "KB": 1 << 10, "KIB": 1 << 10, "M": 1 << 20, "MB": 1 << 20,
             "MIB": 1 << 20, "G": 1 << 30, "GB": 1 << 30, "GIB": 1 << 30}
    number = text.rstrip("KMGIB")
    try:
        size = int(float(number) * units[text[len(number):]])
    except (ValueError, KeyError):
        size = -1
    if size < 1 << 20:
        raise ValueError(f"{name}={value!r}: expected a size of at least 1MB, in bytes or with a unit (512MB, 2GB)")
    return size


class FramesModel(lmms):
    """Base for any adapter that answers from the sampled frames of a task's videos: lmms-eval
    plumbing, ``accelerate`` rank sharding, frame sampling in a background pool, the answer cache,
    per-item failures, batching, stop strings and reasoning.

    A subclass implements :meth:`generate` for a batch; it need not be a transformers model (see the
    OCR plugin). Engines that schedule requests themselves (served models, vLLM) override :meth:`answer`.
    """

    family = "frames"
    backend = "frames"  # part of the answer cache key: the same checkpoint on another engine may differ
    thinking = False  # True: replies carry <think>...</think>, normalised for lmms-eval's reasoning_tags
    decode_workers = 4  # frame sampling threads (PyAV releases the GIL while decoding)

    def __new__(cls, *args: Any, **kwargs: Any) -> FramesModel:
        obj = super().__new__(cls)
        # Every --model_args value can change an answer, so all of them (but where it runs) key the cache.
        obj._init_args = {k: str(v) for k, v in sorted(kwargs.items())
                          if k not in ("device", "batch_size", "frame_memory", "force_frames")}
        return obj

    def __init__(self, device: str | None = None, batch_size: int | str = 1, max_frames: int | str = 8,
                 fps: float | str | None = None, max_pixels: int | str | None = None,
                 frames: int | str | None = None, force_frames: bool | str = False,
                 frame_memory: int | str = DEFAULT_FRAME_MEMORY, **kwargs: Any) -> None:
        super().__init__()
        # Usage errors first, before anything loads; each names the argument and its range.
        force = check_force_frames(force_frames)
        checked = check_frame_settings(max_frames, fps, max_pixels, force_frames=force)
        self.frames = parse_frames(frames)  # "paper"/"paper-open": the paper's #F per setting (egotask.presets)
        if isinstance(self.frames, int):
            check_frame_count(self.frames, "frames", force=force)
        self.frame_memory = parse_bytes(frame_memory)
        if kwargs:
            raise ValueError(f"{type(self).__name__}: unknown --model_args {sorted(kwargs)}; "
                             f"known: {', '.join(_known_args(type(self)))}")
        from accelerate import Accelerator

        self.accelerator = Accelerator()
        if self.accelerator.num_processes > 1:  # data parallel: lmms-eval shards requests by rank
            device = f"cuda:{self.accelerator.local_process_index}"
            self._rank = self.accelerator.local_process_index
            self._world_size = self.accelerator.num_processes
        self._device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.batch_size_per_gpu = int(batch_size)
        self.max_frames, self.fps, self.max_pixels = checked.max_frames, checked.fps, checked.max_pixels
        self.answers = AnswerStore()
        self.stats: dict[str, float] = {"cached": 0, "generated": 0, "failed": 0, "frame_wait_s": 0.0}

    # ----------------------------------------------------------------- lmms-eval API

    @property
    def batch_size(self) -> int:
        return self.batch_size_per_gpu

    @property
    def device(self) -> torch.device:
        return self._device

    def model_id(self) -> str:
        """The model as records and the answer cache name it (a checkpoint path or an endpoint's model)."""
        return str(getattr(self, "pretrained", None) or self.family)

    def model_fingerprint(self) -> list[Any]:
        """What makes two runs the same model for the answer cache: a checkpoint with any file changed,
        added or removed (weights, config, tokenizer, chat template, processor, custom code) is a new
        model; only its documentation and hidden files are left out."""
        ident: list[Any] = [type(self).__qualname__, self.backend, getattr(self, "_init_args", {})]
        for name in ("pretrained", "base"):
            folder = getattr(self, name, None)
            if folder and Path(folder).is_dir():
                ident.append([file_identity(p) for p in sorted(Path(folder).iterdir()) if output_file(p)])
        return ident

    def frame_settings(self, doc: dict[str, Any] | None = None) -> dict[str, Any]:
        """The frame settings this item is sampled with (recorded with every answer)."""
        max_frames = max_frames_for(self.frames, (doc or {}).get("setting"), self.max_frames)
        return {"max_frames": max_frames, "fps": self.fps, "max_pixels": self.max_pixels,
                **({"preset": self.frames} if isinstance(self.frames, str) else {})}

    def prepare(self, request: Instance) -> PendingItem:
        """What an item needs before any decoding: its doc, prompt, visuals and cache key."""
        context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
        doc = self.task_dict[task][split][doc_id]
        visuals = list(doc_to_visual(doc) or [])
        settings = self.frame_settings(doc)
        key = answer_key({
            "model": self.model_fingerprint(), "prompt": context, "gen": _cache_gen_kwargs(gen_kwargs),
            "frames": settings, "sampler": SAMPLER_VERSION, "thinking": self.thinking,
            "videos": [[file_identity(getattr(v, "source", None) or str(v)), getattr(v, "start", 0.0),
                        getattr(v, "end", None)] for v in visuals],
        })
        return PendingItem(context, dict(gen_kwargs), doc, visuals, settings, key)

    def sample(self, item: PendingItem) -> VideoPrompt:
        """Decode the item's frames (runs in the background pool); a bad video fails only this item."""
        began = time.perf_counter()
        try:
            videos = [sample_visual(v, max_frames=item.frames["max_frames"], fps=item.frames["fps"],
                                    max_pixels=item.frames["max_pixels"]) for v in item.visuals]
        except (VideoError, ValueError, OSError) as exc:
            raise unreadable(exc) from exc
        if any(len(v.frames) == 0 for v in videos):
            raise GenerationFailure(NO_FRAMES)
        return VideoPrompt(item.text, videos, item.gen_kwargs, item.doc, decode_s=time.perf_counter() - began)

    def prompts(self, items: list[PendingItem]) -> Iterator[tuple[PendingItem, VideoPrompt | GenerationFailure]]:
        """Each item with its sampled frames, in order, decoded ahead in a background pool so the model
        never waits for frames it could have had (the time it does wait is counted in ``stats``).

        Consecutive items of one video (:meth:`generate_until` puts them so) are decoded together, in
        one pass over the union of their frames (:func:`egotask.frames.sample_visuals`). What is decoded
        ahead is bounded by :meth:`decode_ahead` items and by ``frame_memory`` bytes of frames: a group
        larger than that is split into runs of items that fit (:meth:`fit_memory`), so only an item that
        is larger by itself can exceed it, decoded alone."""
        if not items:
            return
        groups = [run for group in video_groups(items) for run in self.fit_memory(group)]
        with ThreadPoolExecutor(max_workers=self.decode_workers, thread_name_prefix="frames") as pool:
            ahead = self.decode_ahead()
            pending: deque[tuple[PendingItem, Future, int]] = deque()
            held = 0  # estimated bytes of the frames submitted and not yet taken
            next_group = 0
            while pending or next_group < len(groups):
                while next_group < len(groups):
                    group = groups[next_group]
                    size = sum(self.frame_bytes(item) for item in group)
                    if pending and (len(pending) + len(group) > max(ahead, len(group))
                                    or held + size > self.frame_memory):
                        break
                    for item, job in zip(group, self.submit_group(pool, group), strict=True):
                        pending.append((item, job, self.frame_bytes(item)))
                    held += size
                    next_group += 1
                item, job, size = pending.popleft()
                began = time.perf_counter()
                result = self.take_sample(item, job)
                self.stats["frame_wait_s"] += time.perf_counter() - began
                held -= size
                yield item, result

    def fit_memory(self, group: list[PendingItem]) -> list[list[PendingItem]]:
        """``group`` as consecutive runs whose frames fit in ``frame_memory`` (one item at least each).
        Each run is one pass over the video; the file stays open between runs (``OpenVideos``)."""
        runs: list[list[PendingItem]] = [[]]
        held = 0
        for item in group:
            size = self.frame_bytes(item)
            if runs[-1] and held + size > self.frame_memory:
                runs.append([])
                held = 0
            runs[-1].append(item)
            held += size
        return runs

    def frame_bytes(self, item: PendingItem) -> int:
        """An upper estimate of an item's decoded frames in bytes, for the ``frame_memory`` bound: its
        frame count at ``max_pixels`` (unset: 1920x1080) RGB pixels, for each of its videos."""
        return len(item.visuals) * int(item.frames["max_frames"]) * 3 * int(item.frames["max_pixels"] or 1920 * 1080)

    def submit_group(self, pool: ThreadPoolExecutor, group: list[PendingItem]) -> list[Future]:
        """Start decoding a group of items of one video: one job for all of them, one future each.
        An adapter that samples its own way (:meth:`sample` or :meth:`submit_sample` overridden: frame
        worker processes, JPEGs) gets its items one by one."""
        kind = type(self)
        own_way = kind.sample is not FramesModel.sample or kind.submit_sample is not FramesModel.submit_sample
        if len(group) == 1 or own_way:
            return [self.submit_sample(pool, item) for item in group]
        futures = [Future() for _ in group]
        for future in futures:
            future.set_running_or_notify_cancel()

        def settle(job: Future) -> None:
            error = job.exception()
            for n, future in enumerate(futures):
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(job.result()[n])

        pool.submit(self.sample_group, group).add_done_callback(settle)
        return futures

    def sample_group(self, group: list[PendingItem]) -> list[VideoPrompt | GenerationFailure]:
        """The prompts of items that share their frame settings, each video decoded once for all of them;
        a bad video or interval fails only its items."""
        settings = group[0].frames
        visuals = [v for item in group for v in item.visuals]
        began = time.perf_counter()
        try:
            sampled = sample_visuals(visuals, max_frames=settings["max_frames"], fps=settings["fps"],
                                     max_pixels=settings["max_pixels"])
        except (VideoError, ValueError, OSError) as exc:
            return [unreadable(exc)] * len(group)
        elapsed = time.perf_counter() - began
        out: list[VideoPrompt | GenerationFailure] = []
        for item in group:
            videos, sampled = sampled[:len(item.visuals)], sampled[len(item.visuals):]
            failed = next((v for v in videos if isinstance(v, VideoError)), None)
            if failed is not None:
                out.append(unreadable(failed))
            elif any(len(v.frames) == 0 for v in videos):
                out.append(GenerationFailure(NO_FRAMES))
            else:
                out.append(VideoPrompt(item.text, videos, item.gen_kwargs, item.doc))
        share_decode_time(out, elapsed)
        return out

    def decode_ahead(self) -> int:
        """How many items' frames are being decoded ahead of the one the model takes next."""
        return max(2 * self.batch_size, 2 * self.decode_workers)

    def submit_sample(self, pool: ThreadPoolExecutor, item: PendingItem) -> Future:
        """Start decoding one item's frames (in ``pool``, this process's decode threads)."""
        return pool.submit(self._sample_or_failure, item)

    def take_sample(self, item: PendingItem, job: Future) -> VideoPrompt | GenerationFailure:
        """The prompt (or the item's failure) of a job :meth:`submit_sample` started."""
        return job.result()

    def _sample_or_failure(self, item: PendingItem) -> VideoPrompt | GenerationFailure:
        try:
            return self.sample(item)
        except GenerationFailure as exc:
            return exc

    def answer(self, prompts: Iterator[tuple[PendingItem, VideoPrompt | GenerationFailure]]
               ) -> Iterator[tuple[PendingItem, str | GenerationFailure]]:
        """Replies for the items, in any order: batches of ``batch_size`` through :meth:`generate`."""
        batch: list[tuple[PendingItem, VideoPrompt]] = []
        for item, prompt in prompts:
            if isinstance(prompt, GenerationFailure):
                yield item, prompt
                continue
            batch.append((item, prompt))
            if len(batch) >= self.batch_size:
                yield from self._generate_batch(batch)
                batch = []
        if batch:
            yield from self._generate_batch(batch)

    def _generate_batch(self, batch: list[tuple[PendingItem, VideoPrompt]]
                        ) -> Iterator[tuple[PendingItem, str | GenerationFailure]]:
        """One :meth:`generate` call; each item's latency is the call's (the batch's items come back together)."""
        started, began = time.time(), time.perf_counter()
        try:
            replies = self.generate([p for _, p in batch])
        except GenerationFailure as exc:
            replies = [exc] * len(batch)
        latency = time.perf_counter() - began
        for (item, _), reply in zip(batch, replies, strict=True):
            if isinstance(reply, GenerationFailure):
                if reply.latency_s is None:
                    reply.started, reply.latency_s = started, latency
                yield item, reply
            else:
                yield item, as_reply(reply).timed(started, latency)

    def generate_until(self, requests: list[Instance]) -> list[str]:
        items = [self.prepare(r) for r in requests]
        answers: dict[int, str] = {}
        todo: list[PendingItem] = []
        for i, item in enumerate(items):
            cached = self.answers.get(item.key) if is_greedy(item.gen_kwargs) else None
            if cached is not None:
                answers[i] = cached.text
                answers_module.note(item.doc, cached.from_cache())
                self.stats["cached"] += 1
            else:
                todo.append(item)
        # A video's questions one after another, so that it is decoded once for all of them; the answers
        # go back in lmms-eval's order all the same.
        todo = [item for group in video_groups(todo) for item in group]
        index = {id(item): i for i, item in enumerate(items)}
        pbar = tqdm(total=len(items), initial=len(answers), disable=self.rank != 0,
                    desc=f"{self.family} answering" + (f" ({len(answers)} from the answer cache)" if answers else ""))
        seen_by: dict[int, tuple[float, float] | None] = {}
        try:
            for item, reply in self.answer(self._tracked(self.prompts(todo), seen_by)):
                outcome = self._outcome(item, reply, seen_by.get(id(item)))
                if outcome.error is None and is_greedy(item.gen_kwargs):
                    self.answers.put(item.key, outcome)  # kept as it is made: a crash loses nothing
                answers_module.note(item.doc, outcome)
                answers[index[id(item)]] = outcome.text
                pbar.update(1)
        finally:
            pbar.close()
        failed = int(self.stats["failed"])
        if failed and self.rank == 0:
            eval_logger.warning(f"{self.family}: {failed} item(s) got no answer; they are recorded as generation "
                                "failures and listed under 'generation_failed' in the results")
        return [answers[i] for i in range(len(items))]

    def _tracked(self, prompts, seen_by: dict[int, tuple[float, float] | None]):
        """Pass prompts on, remembering the first and last frame time each item's model is shown."""
        for item, prompt in prompts:
            if not isinstance(prompt, GenerationFailure):
                times = [t for v in prompt.videos for t in v.timestamps]
                seen_by[id(item)] = (min(times), max(times)) if times else None
                item.frames["n_frames"] = sum(len(v.timestamps) for v in prompt.videos)
                item.decode_s = prompt.decode_s
            yield item, prompt

    def _outcome(self, item: PendingItem, reply: str | GenerationFailure,
                 seen: tuple[float, float] | None) -> Outcome:
        if isinstance(reply, GenerationFailure):
            self.stats["failed"] += 1
            generation = Generation(latency_s=reply.latency_s, decode_s=item.decode_s, started=reply.started)
            return Outcome("", seen, item.frames, self.model_id(), error=str(reply) or type(reply).__name__,
                           generation=generation)
        self.stats["generated"] += 1
        reply = as_reply(reply)
        generation = Generation(prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens,
                                latency_s=reply.latency_s, decode_s=item.decode_s, started=reply.started)
        text = apply_stops(split_reasoning(reply, self.thinking), item.gen_kwargs.get("until"))
        return Outcome(text, seen, item.frames, self.model_id(), generation=generation)

    def generate(self, batch: list[VideoPrompt]) -> list[str | GenerationFailure]:
        """Return only the generated continuation for each prompt, never the prompt itself (or a
        :class:`GenerationFailure` for an item that got no answer). A :class:`Reply` carries the tokens
        the backend counted; the batch's call is timed either way."""
        raise NotImplementedError

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        raise NotImplementedError(f"{type(self).__name__} supports generate_until tasks only")

    def generate_until_multi_round(self, requests: list[Instance]) -> list[str]:
        raise NotImplementedError(f"{type(self).__name__} supports single-round generation only")


@dataclass
class PendingItem:
    """One request before its frames are decoded."""

    text: str
    gen_kwargs: dict[str, Any]
    doc: dict[str, Any]
    visuals: list[str]
    frames: dict[str, Any]  # frame settings; ``n_frames`` is added once sampled
    key: str  # the answer cache key
    decode_s: float | None = None  # seconds its frames took to decode, once sampled


def share_decode_time(prompts: list[VideoPrompt | GenerationFailure], seconds: float) -> None:
    """Split the time of one decoding pass made for several items among those that got frames, in
    proportion to the frames each was shown (the pass decodes the union of their frames once)."""
    got = [p for p in prompts if isinstance(p, VideoPrompt)]
    frames = [sum(len(v.timestamps) for v in p.videos) for p in got]
    for prompt, n in zip(got, frames, strict=True):
        prompt.decode_s = seconds * n / sum(frames) if sum(frames) else seconds / len(got)


def video_groups(items: list[PendingItem]) -> list[list[PendingItem]]:
    """Items with the same videos and frame settings, together, in the order each group first appears
    (its items in their own order)."""
    groups: dict[tuple, list[PendingItem]] = {}
    for item in items:
        sources = tuple(getattr(v, "source", None) or str(v) for v in item.visuals)
        settings = (item.frames["max_frames"], item.frames["fps"], item.frames["max_pixels"])
        groups.setdefault((sources, settings), []).append(item)
    return list(groups.values())


def _cache_gen_kwargs(gen_kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: gen_kwargs.get(k) for k in sorted(gen_kwargs) if k in
            ("until", "max_new_tokens", "temperature", "do_sample", "top_p", "top_k", "num_beams")}


def is_greedy(gen_kwargs: dict[str, Any]) -> bool:
    """Only deterministic answers may be reused."""
    return not parse_bool(gen_kwargs.get("do_sample", False)) or float(gen_kwargs.get("temperature") or 0) == 0


class VideoQAModel(FramesModel):
    """Base for transformers chat VLMs: loads full, LoRA and merged-LoRA checkpoints, detects Thinking
    checkpoints, and picks generation settings. A subclass sets ``family``/``default_max_new_tokens``
    and overrides :meth:`inputs` only where its processor needs something different."""

    family = "vlm"
    default_max_new_tokens = 128
    thinking_max_new_tokens = 1024

    def __init__(self, pretrained: str | None = None, base: str | None = None, merge: bool | str = False,
                 device_map: str | None = None, dtype: str = "auto", thinking: bool | str | None = None,
                 backend: str = "hf", **kwargs: Any) -> None:
        backend = str(backend).strip().lower()
        if backend not in ("hf", "vllm"):
            raise ValueError(f"{type(self).__name__}: backend={backend!r}; use hf (transformers, the default) or vllm")
        engine_args: dict[str, Any] = {}
        if backend == "vllm":  # its module (and vLLM) is imported only for this backend
            from egotask.model_adapters import vllm_backend

            engine_args = vllm_backend.take_engine_args(kwargs)
        if not pretrained:  # a default, so that a missing one gets this message rather than a TypeError
            raise ValueError(_missing_pretrained(type(self)))
        super().__init__(**kwargs)
        self.backend = backend
        self.pretrained = pretrained
        self.engine: Any = None
        from egotask.plan import planning_active

        planning = planning_active()  # --plan names the answers (cache keys) without loading the weights
        if backend == "vllm" or planning:  # vLLM loads the weights; here only the processor (chat template)
            self.model, self.processor = None, self.load_processor(pretrained, base)
        else:
            if self.world_size > 1:
                device_map = str(self._device)  # one whole model per rank
            self.model, self.processor = self.load(pretrained, base=base, merge=parse_bool(merge),
                                                   device_map=device_map, dtype=dtype)
        self.thinking = self.detect_thinking() if thinking in (None, "", "auto") else parse_bool(thinking)
        if backend == "vllm" and not planning:
            self.engine = vllm_backend.VLLMEngine(self, base=base, merge=parse_bool(merge), device_map=device_map,
                                                  dtype=dtype, **engine_args)

    # ----------------------------------------------------------------- loading

    def load(self, pretrained: str, *, base: str | None, merge: bool, device_map: str | None,
             dtype: str) -> tuple[Any, Any]:
        from transformers import AutoModelForImageTextToText

        torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
        lora = is_lora_dir(pretrained)
        weights = lora_base(pretrained, base) if lora else pretrained
        model = AutoModelForImageTextToText.from_pretrained(weights, dtype=torch_dtype, device_map=device_map)
        if lora:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, pretrained)
            if merge:
                model = model.merge_and_unload()
        processor = self.load_processor(pretrained, base)
        if device_map is None:
            model = model.to(self._device)
        model.eval()
        return model, processor

    def load_processor(self, pretrained: str, base: str | None) -> Any:
        from transformers import AutoProcessor

        # A LoRA folder saved with its processor carries it; a bare peft folder takes the base's.
        lora = is_lora_dir(pretrained)
        processor = AutoProcessor.from_pretrained(pretrained if not lora or has_processor(pretrained)
                                                  else lora_base(pretrained, base))
        processor.tokenizer.padding_side = "left"  # batched generation appends after the prompt
        cap_frame_pixels(processor)
        return processor

    def detect_thinking(self) -> bool:
        template = getattr(self.processor, "chat_template", None) or ""
        return THINK_OPEN in template or "thinking" in str(self.pretrained).lower()

    def generation_kwargs(self, gen_kwargs: dict[str, Any]) -> dict[str, Any]:
        """Greedy by default; ``max_new_tokens`` defaults by family, and --gen_kwargs wins."""
        default_tokens = self.thinking_max_new_tokens if self.thinking else self.default_max_new_tokens
        out: dict[str, Any] = {"max_new_tokens": int(gen_kwargs.get("max_new_tokens", default_tokens))}
        temperature = float(gen_kwargs.get("temperature", 0) or 0)
        if parse_bool(gen_kwargs.get("do_sample", False)) and temperature > 0:
            out.update(do_sample=True, temperature=temperature)
            for key in ("top_p", "top_k"):
                if gen_kwargs.get(key) is not None:
                    out[key] = gen_kwargs[key]
        else:
            out["do_sample"] = False
        return out

    # ----------------------------------------------------------------- helpers for subclasses

    def prompt_text(self, prompt: VideoPrompt) -> str:
        return self.processor.apply_chat_template(chat_messages(prompt.text, len(prompt.videos)), tokenize=False,
                                                  add_generation_prompt=True)

    def inputs(self, batch: list[VideoPrompt]) -> Any:
        """The processor's tensors for a batch (chat prompts, frames and their times), on the model's device."""
        inputs = self.processor(text=[self.prompt_text(p) for p in batch],
                                **video_inputs([v for p in batch for v in p.videos]),
                                padding=True, return_tensors="pt").to(self.model.device)
        if "pixel_values" in inputs:  # SmolVLM's image tensor comes back float32 whatever the model's dtype
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        return inputs

    def answer(self, prompts: Iterator[tuple[PendingItem, VideoPrompt | GenerationFailure]]
               ) -> Iterator[tuple[PendingItem, str | GenerationFailure]]:
        """vLLM takes a rank's requests to schedule them itself; the HF backend batches through generate."""
        return self.engine.answer(prompts) if self.engine is not None else super().answer(prompts)

    def generate(self, batch: list[VideoPrompt]) -> list[str | GenerationFailure]:
        if self.engine is not None:
            return self.engine.generate(batch)
        inputs = self.inputs(batch)
        with torch.inference_mode():
            output = self.model.generate(**inputs, **self.generation_kwargs(batch[0].gen_kwargs))
        # Only the new tokens: decoding the whole sequence would echo the prompt ("User: ... Assistant:").
        texts = self.decode_new_tokens(inputs["input_ids"], output)
        input_ids = inputs["input_ids"]
        mask = inputs.get("attention_mask")
        # Left padding: a row's prompt is its unmasked tokens (frames' tokens included).
        prompt_lengths = (mask.sum(dim=1).tolist() if mask is not None
                          else [input_ids.shape[1]] * input_ids.shape[0])
        new_lengths = generated_lengths(output[:, input_ids.shape[1]:], self.eos_token_ids())
        return [Reply(text, prompt_tokens=int(p), completion_tokens=n)
                for text, p, n in zip(texts, prompt_lengths, new_lengths, strict=True)]

    def eos_token_ids(self) -> set[int]:
        """The tokens generation stops at: the generation config's (else the tokenizer's)."""
        ids = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        if ids is None:
            ids = getattr(getattr(self.processor, "tokenizer", None), "eos_token_id", None)
        return set(ids if isinstance(ids, list | tuple) else [] if ids is None else [ids])

    def decode_new_tokens(self, input_ids: torch.Tensor, output_ids: torch.Tensor) -> list[str]:
        new = output_ids[:, input_ids.shape[1]:]  # left padding: every prompt ends at the same column
        return self.processor.batch_decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
