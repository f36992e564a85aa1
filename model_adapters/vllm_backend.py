"""``backend=vllm`` for the transformers VLM adapters (``qwen3vl``, ``smolvlm2``): one in-process
``vllm.LLM`` per rank, handed the rank's requests in large chunks so that it schedules them itself.

A request carries the frames and frame times the HF backend would see (the same sampler, and
``video_metadata`` for the times), with the prompt rendered by the checkpoint's own chat template.
Everything handed to vLLM is built by pure functions (:func:`build_request`, :func:`engine_kwargs`,
:func:`sampling_args`, :func:`lora_spec`), tested against the real processor classes without vLLM;
vLLM itself is imported only when an engine starts.

- Qwen3-VL: ``multi_modal_data={"video": [(frames, metadata)]}`` with ``do_sample_frames=False``, so
  vLLM's processor writes each frame pair's real time (``<t seconds>``) as the HF processor does.
- SmolVLM2: vLLM's SmolVLM takes images only, so a video goes in as its frames, introduced and
  timestamped in the prompt exactly as SmolVLM2's processor expands a video, and processed unsplit
  at the video size (the same pixels as the HF video path).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from queue import Queue
from typing import Any

from egotask.frames import SampledFrames
from egotask.model_adapters.base import (
    GenerationFailure,
    PendingItem,
    Reply,
    VideoPrompt,
    is_lora_dir,
    lora_base,
    parse_bool,
    video_metadata,
)

# --model_args that only the vLLM backend takes, with their parsers. chunk_size: requests per
# LLM.generate call; vLLM schedules within a chunk, and host memory holds about two chunks of frames.
ENGINE_ARGS: dict[str, Callable[[Any], Any]] = {
    "tensor_parallel_size": int, "gpu_memory_utilization": float, "max_model_len": int, "max_num_seqs": int,
    "enforce_eager": parse_bool, "chunk_size": int,
}
DEFAULT_CHUNK = 256
LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # the max_lora_rank values vLLM accepts
NO_CUDA = "vLLM needs a CUDA GPU here: PyPI's torchvision links CUDA torch libraries"
Prepared = tuple[dict[str, Any], Any] | GenerationFailure  # (LLM.generate request, SamplingParams), or why not


def take_engine_args(model_args: dict[str, Any]) -> dict[str, Any]:
    """Remove the vLLM-only arguments from ``model_args`` and parse them; a bad value names its argument."""
    out = {}
    for name, parse in ENGINE_ARGS.items():
        if name in model_args:
            raw = model_args.pop(name)
            if raw in (None, "", "None"):
                continue
            try:
                out[name] = parse(raw)
            except ValueError as exc:
                raise ValueError(f"--model_args {name}={raw!r}: {exc}") from exc
    return out


# --------------------------------------------------------------------------- requests (pure)

def metadata_dict(video: SampledFrames) -> dict[str, Any]:
    """The frames' ``video_metadata`` (what the HF backend passes) as the plain dict vLLM's parser
    reads, marked as already sampled."""
    meta = video_metadata(video)
    return {**{k: meta[k] for k in meta if meta[k] is not None}, "do_sample_frames": False}


def qwen3vl_request(processor: Any, prompt_text: str, videos: list[SampledFrames]) -> dict[str, Any]:
    if len(videos) > 1:
        raise ValueError(f"backend=vllm takes one video per request for Qwen3-VL, got {len(videos)}")
    request: dict[str, Any] = {"prompt": prompt_text}
    if videos:
        request["multi_modal_data"] = {"video": [(v.frames, metadata_dict(v)) for v in videos]}
        request["mm_processor_kwargs"] = {"do_sample_frames": False}
    return request


def smolvlm_video_text(processor: Any, video: SampledFrames) -> str:
    """A video as SmolVLM2's processor writes it into the prompt (intro, then each frame's time before
    it), with one image placeholder per frame for vLLM to expand."""
    from num2words import num2words
    from transformers.models.smolvlm.processing_smolvlm import (
        DEFAULT_MEDIA_OUTTRO,
        DEFAULT_VIDEO_INTRO,
        FRAME_TIMESTAMP_MESSAGE,
    )

    meta = video_metadata(video)
    times = meta.timestamps
    duration = int(meta.duration) if meta.duration is not None else int(times[-1])
    text = DEFAULT_VIDEO_INTRO.format(frame_count=num2words(len(video.frames)),
                                      video_duration=str(timedelta(seconds=duration)))
    for second in times:
        stamp = f"{int(second // 60):02d}:{int(second % 60):02d}"
        text += FRAME_TIMESTAMP_MESSAGE.format(timestamp=stamp) + processor.image_token
    return text + DEFAULT_MEDIA_OUTTRO


def smolvlm_image_kwargs(processor: Any) -> dict[str, Any]:
    """Image-processor settings under which a frame given as an image becomes the pixels the video
    processor makes of it: unsplit, resized to the video size, squared to ``max_image_size``."""
    video = processor.video_processor
    size = video.size if isinstance(video.size, dict) else {"longest_edge": video.size.longest_edge}
    return {"do_image_splitting": False, "size": dict(size), "max_image_size": dict(video.max_image_size)}


def smolvlm2_request(processor: Any, prompt_text: str, videos: list[SampledFrames]) -> dict[str, Any]:
    from PIL import Image

    token = processor.video_token
    parts = prompt_text.split(token)
    if len(parts) - 1 != len(videos):
        raise ValueError(f"the prompt has {len(parts) - 1} {token} placeholder(s) for {len(videos)} video(s)")
    text = parts[0] + "".join(smolvlm_video_text(processor, v) + rest for v, rest in zip(videos, parts[1:],
                                                                                          strict=True))
    request: dict[str, Any] = {"prompt": text}
    if videos:
        request["multi_modal_data"] = {"image": [Image.fromarray(f) for v in videos for f in v.frames]}
        request["mm_processor_kwargs"] = smolvlm_image_kwargs(processor)
    return request


REQUEST_BUILDERS: dict[str, Callable[[Any, str, list[SampledFrames]], dict[str, Any]]] = {
    "qwen3vl": qwen3vl_request, "smolvlm2": smolvlm2_request,
}


def build_request(family: str, processor: Any, prompt_text: str, videos: list[SampledFrames]) -> dict[str, Any]:
    """The dict ``LLM.generate`` takes for one item: prompt string, frames with their times, and the
    processor settings that keep vLLM from resampling them."""
    if family not in REQUEST_BUILDERS:
        raise ValueError(f"backend=vllm supports {', '.join(REQUEST_BUILDERS)}, not {family!r}")
    return REQUEST_BUILDERS[family](processor, prompt_text, videos)


def mm_limits(family: str, max_frames: int) -> dict[str, int]:
    """``limit_mm_per_prompt``: one video (Qwen3-VL), or one video's frames as images (SmolVLM2)."""
    return {"video": 1, "image": 0} if family == "qwen3vl" else {"image": max_frames}


def sampling_args(generation: dict[str, Any]) -> dict[str, Any]:
    """``SamplingParams`` arguments for an adapter's :meth:`generation_kwargs` (greedy unless sampling),
    decoded as the HF backend decodes: special tokens skipped, nothing inserted between added tokens."""
    out: dict[str, Any] = {"max_tokens": int(generation["max_new_tokens"]), "temperature": 0.0,
                           "skip_special_tokens": True, "spaces_between_special_tokens": False}
    if generation.get("do_sample"):
        out["temperature"] = float(generation["temperature"])
        if generation.get("top_p") is not None:
            out["top_p"] = float(generation["top_p"])
        if generation.get("top_k") is not None:
            out["top_k"] = int(generation["top_k"])
    return out


def lora_rank(folder: str | Path) -> int:
    """``max_lora_rank`` for a peft folder: its largest rank, rounded up to a value vLLM accepts."""
    path = Path(folder) / "adapter_config.json"
    config = json.loads(path.read_text())
    if "r" not in config:
        raise ValueError(f"{path}: no 'r' (LoRA rank)")
    rank = max([int(config["r"]), *(int(r) for r in (config.get("rank_pattern") or {}).values())])
    for allowed in LORA_RANKS:
        if rank <= allowed:
            return allowed
    raise ValueError(f"{path}: LoRA rank {rank} is above vLLM's largest max_lora_rank {LORA_RANKS[-1]}")


def lora_spec(folder: str | Path) -> dict[str, Any]:
    """``LoRARequest`` arguments for a peft folder (one adapter per engine, so id 1)."""
    folder = Path(folder).resolve()
    return {"lora_name": folder.name or "adapter", "lora_int_id": 1, "lora_path": str(folder)}


def engine_kwargs(family: str, *, weights: str, lora: str | None, max_frames: int, dtype: str = "auto",
                  tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.9,
                  max_model_len: int | None = None, max_num_seqs: int | None = None,
                  enforce_eager: bool = False, seed: int = 0) -> dict[str, Any]:
    """``vllm.LLM`` arguments: the base weights (a LoRA folder is applied per request), the
    multimodal limits, and the LoRA slot sized from the adapter's rank."""
    kwargs: dict[str, Any] = {"model": weights, "dtype": dtype, "tensor_parallel_size": tensor_parallel_size,
                              "gpu_memory_utilization": gpu_memory_utilization, "seed": seed,
                              "limit_mm_per_prompt": mm_limits(family, max_frames), "enforce_eager": enforce_eager}
    if max_model_len:
        kwargs["max_model_len"] = max_model_len
    if max_num_seqs:
        kwargs["max_num_seqs"] = max_num_seqs
    if family == "smolvlm2":  # also what vLLM profiles memory with
        kwargs["mm_processor_kwargs"] = {"do_image_splitting": False}
    if lora:
        kwargs.update(enable_lora=True, max_loras=1, max_lora_rank=lora_rank(lora))
    return kwargs


def reply_of(output: Any, started: float, latency_s: float) -> Reply:
    """A ``RequestOutput``'s text with its token counts (the prompt's, frames included, and the first
    completion's, its end-of-sequence token included) and the timing of the ``LLM.generate`` call that
    made it (vLLM schedules a call's requests together, so each is timed by the call)."""
    prompt_ids = getattr(output, "prompt_token_ids", None)
    completion = output.outputs[0]
    ids = getattr(completion, "token_ids", None)
    return Reply(completion.text, prompt_tokens=None if prompt_ids is None else len(prompt_ids),
                 completion_tokens=None if ids is None else len(ids), latency_s=latency_s, started=started)


def rank_devices(local_rank: int, tensor_parallel_size: int, visible: list[str]) -> list[str]:
    """The GPUs of one data-parallel rank: ``tensor_parallel_size`` consecutive ones of those visible."""
    start = local_rank * tensor_parallel_size
    if start + tensor_parallel_size > len(visible):
        raise ValueError(f"rank {local_rank} with tensor_parallel_size={tensor_parallel_size} needs GPUs "
                         f"{start}..{start + tensor_parallel_size - 1}, but {len(visible)} are visible")
    return visible[start:start + tensor_parallel_size]


# --------------------------------------------------------------------------- the engine

def import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise ImportError("backend=vllm needs vLLM: pip install 'egotask[vllm]' on a machine with a CUDA GPU "
                          f"({exc})") from exc
    return vllm


class VLLMEngine:
    """The vLLM side of a :class:`VideoQAModel` with ``backend=vllm``: replies for its items, in order."""

    def __init__(self, adapter: Any, *, base: str | None, merge: bool, device_map: str | None, dtype: str,
                 tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.9,
                 max_model_len: int | None = None, max_num_seqs: int | None = None,
                 enforce_eager: bool = False, chunk_size: int = DEFAULT_CHUNK) -> None:
        name = type(adapter).__name__
        if merge:
            raise ValueError(f"{name}: merge=true is for backend=hf; vLLM applies the LoRA folder as it is")
        if device_map:
            raise ValueError(f"{name}: device_map is for backend=hf; backend=vllm takes tensor_parallel_size")
        if adapter.family not in REQUEST_BUILDERS:
            raise ValueError(f"{name}: backend=vllm supports {', '.join(REQUEST_BUILDERS)}, not {adapter.family}")
        if chunk_size < 1:
            raise ValueError(f"{name}: chunk_size must be >= 1, got {chunk_size}")
        self.adapter = adapter
        self.chunk_size = chunk_size
        pretrained = adapter.pretrained
        lora = pretrained if is_lora_dir(pretrained) else None
        self.kwargs = engine_kwargs(
            adapter.family, weights=lora_base(pretrained, base) if lora else pretrained, lora=lora,
            max_frames=adapter.max_frames, dtype=dtype, tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
            max_num_seqs=max_num_seqs, enforce_eager=enforce_eager)
        vllm = import_vllm()
        from vllm.lora.request import LoRARequest

        if adapter.world_size > 1:
            self._pin_rank_gpus(adapter.accelerator.local_process_index, tensor_parallel_size)
        self.sampling_params = vllm.SamplingParams
        self.lora_request = LoRARequest(**lora_spec(lora)) if lora else None
        self.llm = vllm.LLM(**self.kwargs)

    @staticmethod
    def _pin_rank_gpus(local_rank: int, tensor_parallel_size: int) -> None:
        """Data parallel: each rank's engine (a process vLLM spawns) sees only this rank's GPUs."""
        import torch

        from egotask.settings import set_vendor_value, vendor_value

        visible = vendor_value("CUDA_VISIBLE_DEVICES")
        ids = visible.split(",") if visible else [str(i) for i in range(torch.cuda.device_count())]
        set_vendor_value("CUDA_VISIBLE_DEVICES", ",".join(rank_devices(local_rank, tensor_parallel_size, ids)))

    def request(self, prompt: VideoPrompt) -> dict[str, Any]:
        return build_request(self.adapter.family, self.adapter.processor, self.adapter.prompt_text(prompt),
                             prompt.videos)

    def sampling(self, prompt: VideoPrompt) -> Any:
        return self.sampling_params(**sampling_args(self.adapter.generation_kwargs(prompt.gen_kwargs)))

    def prepare(self, prompt: VideoPrompt | GenerationFailure) -> Prepared:
        """The request and sampling parameters of one item, or why it has none."""
        if isinstance(prompt, GenerationFailure):
            return prompt
        try:
            return self.request(prompt), self.sampling(prompt)
        except ValueError as exc:
            return GenerationFailure(f"vLLM request: {exc}")

    def generate(self, batch: list[VideoPrompt]) -> list[str | GenerationFailure]:
        replies = dict(self._run([(i, self.prepare(p)) for i, p in enumerate(batch)]))
        return [replies[i] for i in range(len(batch))]

    def answer(self, prompts: Iterator[tuple[PendingItem, VideoPrompt | GenerationFailure]]
               ) -> Iterator[tuple[PendingItem, str | GenerationFailure]]:
        """Replies chunk by chunk. A feeder thread takes the next chunk's items (their frames decoded
        ahead in the background pool) and builds their requests while vLLM generates the current
        chunk; at most two chunks are held at a time. Items whose frames failed come back as they are."""
        chunks: Queue = Queue(maxsize=1)
        may_fill = threading.Semaphore(1)  # the feeder fills one chunk ahead of the one generating
        done = threading.Event()

        def feed() -> None:
            # Each put follows an acquire, which follows the consumer's get: the queue is empty then.
            try:
                iterator = iter(prompts)
                while True:
                    may_fill.acquire()
                    if done.is_set():  # the consumer stopped early
                        return
                    chunk: list[tuple[PendingItem, Prepared]] = []
                    ready = 0
                    for item, prompt in iterator:
                        chunk.append((item, self.prepare(prompt)))
                        ready += not isinstance(chunk[-1][1], GenerationFailure)
                        if ready >= self.chunk_size:
                            break
                    if not chunk:
                        break
                    chunks.put(chunk)
                chunks.put(None)
            except BaseException as exc:  # handed to the consumer, which raises it
                chunks.put(exc)

        feeder = threading.Thread(target=feed, name="vllm-feeder", daemon=True)
        feeder.start()
        try:
            while (chunk := chunks.get()) is not None:
                if isinstance(chunk, BaseException):
                    raise chunk
                may_fill.release()
                yield from self._run(chunk)
        finally:
            done.set()
            may_fill.release()  # let a waiting feeder see ``done`` and stop

    def _run(self, chunk: list[tuple[Any, Prepared]]) -> Iterator[tuple[Any, str | GenerationFailure]]:
        """One ``LLM.generate`` call for a chunk's ready items. An input vLLM rejects (too long, too many
        frames) fails only its own item: the chunk is then retried one item at a time."""
        ready = [(key, entry) for key, entry in chunk if not isinstance(entry, GenerationFailure)]
        yield from ((key, entry) for key, entry in chunk if isinstance(entry, GenerationFailure))
        if not ready:
            return
        try:
            texts: list[str | GenerationFailure] = list(self._generate([entry for _, entry in ready]))
        except ValueError as exc:
            if len(ready) == 1:
                texts = [GenerationFailure(f"vLLM rejected the request: {exc}")]
            else:
                texts = [reply for _, entry in ready for reply in self._generate_or_failure(entry)]
        yield from zip([key for key, _ in ready], texts, strict=True)

    def _generate_or_failure(self, entry: tuple[dict[str, Any], Any]) -> list[str | GenerationFailure]:
        try:
            return list(self._generate([entry]))
        except ValueError as exc:
            return [GenerationFailure(f"vLLM rejected the request: {exc}")]

    def _generate(self, entries: list[tuple[dict[str, Any], Any]]) -> list[Reply]:
        started, began = time.time(), time.perf_counter()
        outputs = self.llm.generate([request for request, _ in entries], [params for _, params in entries],
                                    lora_request=self.lora_request, use_tqdm=False)
        latency = time.perf_counter() - began
        return [reply_of(out, started, latency) for out in outputs]
