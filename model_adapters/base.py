"""What every egotask video-QA adapter shares: lmms-eval plumbing, checkpoint loading (full, LoRA,
merged LoRA), frame sampling through the one sampler, batching, stop strings and reasoning tags.

:class:`FramesModel` is the base of any adapter that answers from sampled frames; :class:`VideoQAModel`
adds transformers checkpoints. A subclass implements ``generate`` (and a VLM sets ``family`` and
``default_max_new_tokens``).
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from tqdm import tqdm

from egotask.frames import SampledFrames, sample_visual
from egotask.reasoning import THINK_CLOSE, THINK_OPEN


@dataclass
class VideoPrompt:
    """One request, ready for a model: the question text and the sampled frames of each video."""

    text: str
    videos: list[SampledFrames]
    gen_kwargs: dict[str, Any]
    doc: dict[str, Any] | None = None  # the task's document, for adapters that read fields (e.g. question)


def chat_messages(text: str, n_videos: int = 1) -> list[dict[str, Any]]:
    """One user turn: the videos, then the question (what the chat templates expect)."""
    content = [{"type": "video"} for _ in range(n_videos)] + [{"type": "text", "text": text}]
    return [{"role": "user", "content": content}]


def video_inputs(videos: list[SampledFrames]) -> dict[str, Any]:
    """Processor arguments for pre-sampled frames, shared by evaluation and finetuning.

    The processors need the frames' real times (Qwen3-VL otherwise assumes 24 fps; SmolVLM2 writes
    "Frame from MM:SS" from them) and the clip length, which is the end of what the model may see,
    not the length of the file.
    """
    from transformers.video_utils import VideoMetadata

    if not videos:
        return {}
    return {
        "videos": [v.frames for v in videos],
        "video_metadata": [VideoMetadata(total_num_frames=len(v.frames), fps=v.fps, frames_indices=v.frame_indices(),
                                         duration=v.end) for v in videos],
        "do_sample_frames": False,
    }


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


class FramesModel(lmms):
    """Base for any adapter that answers from the sampled frames of a task's videos: lmms-eval
    plumbing, ``accelerate`` rank sharding, frame sampling, batching, stop strings and reasoning.

    A subclass implements :meth:`generate`; it need not be a transformers model (see the OCR plugin).
    """

    family = "frames"
    thinking = False  # True: replies carry <think>...</think>, normalised for lmms-eval's reasoning_tags

    def __init__(self, device: str | None = None, batch_size: int | str = 1, max_frames: int | str = 8,
                 fps: float | str | None = None, max_pixels: int | str | None = None, **kwargs: Any) -> None:
        super().__init__()
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
        self.max_frames = int(max_frames)
        self.fps = float(fps) if fps not in (None, "", "None") else None
        self.max_pixels = int(max_pixels) if max_pixels not in (None, "", "None") else None

    # ----------------------------------------------------------------- lmms-eval API

    @property
    def batch_size(self) -> int:
        return self.batch_size_per_gpu

    @property
    def device(self) -> torch.device:
        return self._device

    def prompt_for(self, request: Instance) -> VideoPrompt:
        context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
        doc = self.task_dict[task][split][doc_id]
        videos = [sample_visual(v, max_frames=self.max_frames, fps=self.fps, max_pixels=self.max_pixels)
                  for v in doc_to_visual(doc) or []]
        return VideoPrompt(context, videos, dict(gen_kwargs), doc)

    def generate_until(self, requests: list[Instance]) -> list[str]:
        answers: list[str] = []
        pbar = tqdm(total=len(requests), disable=self.rank != 0, desc=f"{self.family} answering")
        for i in range(0, len(requests), self.batch_size):
            batch = [self.prompt_for(r) for r in requests[i:i + self.batch_size]]
            replies = self.generate(batch)
            for prompt, reply in zip(batch, replies, strict=True):
                answers.append(apply_stops(split_reasoning(reply, self.thinking), prompt.gen_kwargs.get("until")))
            pbar.update(len(batch))
        pbar.close()
        return answers

    def generate(self, batch: list[VideoPrompt]) -> list[str]:
        """Return only the generated continuation for each prompt, never the prompt itself."""
        raise NotImplementedError

    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        raise NotImplementedError(f"{type(self).__name__} supports generate_until tasks only")

    def generate_until_multi_round(self, requests: list[Instance]) -> list[str]:
        raise NotImplementedError(f"{type(self).__name__} supports single-round generation only")


class VideoQAModel(FramesModel):
    """Base for transformers chat VLMs: loads full, LoRA and merged-LoRA checkpoints, detects Thinking
    checkpoints, and picks generation settings. A subclass sets ``family``/``default_max_new_tokens``
    and overrides :meth:`inputs` only where its processor needs something different."""

    family = "vlm"
    default_max_new_tokens = 128
    thinking_max_new_tokens = 1024

    def __init__(self, pretrained: str | None = None, base: str | None = None, merge: bool | str = False,
                 device_map: str | None = None, dtype: str = "auto", thinking: bool | str | None = None,
                 **kwargs: Any) -> None:
        if not pretrained:  # a default, so that a missing one gets this message rather than a TypeError
            raise ValueError(_missing_pretrained(type(self)))
        super().__init__(**kwargs)
        if self.world_size > 1:
            device_map = str(self._device)  # one whole model per rank
        self.pretrained = pretrained
        self.model, self.processor = self.load(pretrained, base=base, merge=parse_bool(merge),
                                               device_map=device_map, dtype=dtype)
        self.thinking = self.detect_thinking() if thinking in (None, "", "auto") else parse_bool(thinking)

    # ----------------------------------------------------------------- loading

    def load(self, pretrained: str, *, base: str | None, merge: bool, device_map: str | None,
             dtype: str) -> tuple[Any, Any]:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
        lora = is_lora_dir(pretrained)
        weights = lora_base(pretrained, base) if lora else pretrained
        model = AutoModelForImageTextToText.from_pretrained(weights, dtype=torch_dtype, device_map=device_map)
        if lora:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, pretrained)
            if merge:
                model = model.merge_and_unload()
        # A LoRA folder saved with its processor carries it; a bare peft folder takes the base's.
        processor_dir = pretrained if not lora or has_processor(pretrained) else weights
        processor = AutoProcessor.from_pretrained(processor_dir)
        processor.tokenizer.padding_side = "left"  # batched generation appends after the prompt
        cap_frame_pixels(processor)
        if device_map is None:
            model = model.to(self._device)
        model.eval()
        return model, processor

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

    def generate(self, batch: list[VideoPrompt]) -> list[str]:
        inputs = self.inputs(batch)
        with torch.inference_mode():
            output = self.model.generate(**inputs, **self.generation_kwargs(batch[0].gen_kwargs))
        # Only the new tokens: decoding the whole sequence would echo the prompt ("User: ... Assistant:").
        return self.decode_new_tokens(inputs["input_ids"], output)

    def decode_new_tokens(self, input_ids: torch.Tensor, output_ids: torch.Tensor) -> list[str]:
        new = output_ids[:, input_ids.shape[1]:]  # left padding: every prompt ends at the same column
        return self.processor.batch_decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
