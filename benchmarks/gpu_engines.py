"""HF transformers (batch 1, batch 8) against vLLM on a random-weight Qwen3-VL at Qwen3-VL-2B's real
dimensions: 8-frame requests, a fixed number of new tokens with EOS ignored, items/s for each engine.
Target: vLLM >= 5x HF batch 1.

For a machine with a CUDA GPU and vLLM (`pip install -e '.[vllm]'`). Nothing comes from a hub: the
checkpoint (random bf16 weights, Qwen3-VL-2B-Instruct's architecture numbers) is built and saved with
a small locally trained tokenizer and the real processor classes under --workdir, once.

Every engine gets the same requests: frames sampled once, before timing, from generated 720p clips
(8 per request, from each request's own interval, at most --max-pixels each), so the figures compare
engines, not decoders. Each timed run includes the processor (HF: `adapter.inputs`; vLLM: rendering in
`LLM.generate`) and follows an untimed warm-up on other items. Prefix caching cannot help vLLM: no
two requests share frames.

--quick (what CI runs, on CPU machines without vLLM): the same code on egotask's tiny Qwen3-VL and a
6 s clip, in seconds. It checks that every HF reply has exactly --max-new-tokens new tokens (EOS
ignored), that batch 8 decodes the same tokens as batch 1, and that each vLLM request carries the HF
prompt and the sampled frames' own times; the vLLM row runs where vLLM can, and is otherwise printed
as skipped with the reason. Failed checks exit non-zero; the ratios never gate.

    .venv/bin/python benchmarks/gpu_engines.py            # on a GPU machine; minutes (checkpoint once)
    .venv/bin/python benchmarks/gpu_engines.py --quick    # a few seconds on CPU; what CI runs
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _checks import Checks  # noqa: E402
from _clips import bench_workdir, benchmark_clips, quick_clips  # noqa: E402

# Qwen/Qwen3-VL-2B-Instruct's config.json: the architecture numbers (the token ids come from the
# local tokenizer instead).
QWEN3VL_2B_TEXT = {
    "hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 28, "num_attention_heads": 16,
    "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936, "max_position_embeddings": 262144,
    "rms_norm_eps": 1e-6, "hidden_act": "silu", "tie_word_embeddings": True,
    "rope_parameters": {"rope_type": "default", "rope_theta": 5_000_000.0, "mrope_section": [24, 20, 20],
                        "mrope_interleaved": True},
}
QWEN3VL_2B_VISION = {
    "depth": 24, "hidden_size": 1024, "intermediate_size": 4096, "num_heads": 16, "hidden_act": "gelu_pytorch_tanh",
    "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2, "out_hidden_size": 2048,
    "num_position_embeddings": 2304, "deepstack_visual_indexes": [5, 11, 17],
}
# Its preprocessors' pixel bounds (per image; per video for the video processor).
IMAGE_PIXELS = {"shortest_edge": 65536, "longest_edge": 16777216}
VIDEO_PIXELS = {"shortest_edge": 4096, "longest_edge": 25165824}

QUESTIONS = ["what brand of cereal is on the shelf?", "which street am i on?", "what does the road sign say?",
             "what is the title of the book?", "which spice jar did i pick up?", "where can i park?"]
POST_PROMPT = "\nAnswer briefly: a word, a phrase or a short sentence."


def build_qwen3vl_2b(out_dir: Path, device: str) -> Path:
    """Save a random-weight Qwen3-VL with Qwen3-VL-2B's dimensions (about 2.1 B parameters, bf16)."""
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration, Qwen3VLProcessor, Qwen3VLVideoProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor

    from egotask.fixtures import QWEN_CHAT_TEMPLATE, SPECIAL_TOKENS, train_tokenizer

    if out_dir.is_dir():  # written whole or not at all (renamed into place)
        return out_dir
    print(f"building the random Qwen3-VL-2B-sized checkpoint in {out_dir} ...", flush=True)
    tokenizer = train_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = Qwen3VLConfig(
        text_config={**QWEN3VL_2B_TEXT, "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
                     "pad_token_id": ids["<|endoftext|>"]},
        vision_config=QWEN3VL_2B_VISION, tie_word_embeddings=True,
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        torch.manual_seed(0)
        with torch.device(device):
            model = Qwen3VLForConditionalGeneration(config).eval()
    finally:
        torch.set_default_dtype(default_dtype)
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(patch_size=16, merge_size=2, size=IMAGE_PIXELS),
        video_processor=Qwen3VLVideoProcessor(patch_size=16, merge_size=2, temporal_patch_size=2, size=VIDEO_PIXELS),
        tokenizer=tokenizer, chat_template=QWEN_CHAT_TEMPLATE.replace("{% if thinking %}<think>\n{% endif %}", ""))
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    processor.save_pretrained(partial)
    del model
    partial.rename(out_dir)
    return out_dir


def sample_prompts(clips: list[Path], n: int, max_pixels: int | None, span: float) -> list[Any]:
    """``n`` requests of 8 frames, each from its own interval ``[end - span, end)`` of a clip."""
    import av

    from egotask.frames import VisibleVideo, sample_visual
    from egotask.model_adapters.base import VideoPrompt

    with av.open(str(clips[0])) as container:
        length = float(container.duration / 1e6)
    ends = [span + (i * 0.37 * span) % max(length - span, 1e-3) for i in range(n)]

    def one(i: int) -> VideoPrompt:
        visual = VisibleVideo(str(clips[i % len(clips)]), ends[i] - span, ends[i])
        return VideoPrompt(QUESTIONS[i % len(QUESTIONS)] + POST_PROMPT,
                           [sample_visual(visual, max_frames=8, max_pixels=max_pixels)], {})

    with ThreadPoolExecutor(max_workers=8) as pool:  # PyAV releases the GIL
        return list(pool.map(one, range(n)))


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def hf_generate(adapter: Any, batch: list[Any], new_tokens: int) -> list[list[int]]:
    inputs = adapter.inputs(batch)
    with torch.inference_mode():
        out = adapter.model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
    return out[:, inputs["input_ids"].shape[1]:].tolist()


def run_hf(ckpt: Path, prompts: list[Any], warmup: list[Any], batch_size: int, new_tokens: int,
           device: str, dtype: str) -> tuple[float, list[list[int]]]:
    """Seconds for the prompts through the HF adapter, and each reply's new token ids."""
    from egotask.model_adapters.qwen3vl import Qwen3VL

    adapter = Qwen3VL(pretrained=str(ckpt), batch_size=batch_size, device=device, dtype=dtype)
    hf_generate(adapter, warmup[:batch_size], new_tokens)
    sync()
    start = time.perf_counter()
    tokens = [t for i in range(0, len(prompts), batch_size)
              for t in hf_generate(adapter, prompts[i:i + batch_size], new_tokens)]
    sync()
    seconds = time.perf_counter() - start
    del adapter  # free the GPU for the next engine
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return seconds, tokens


def vllm_unavailable() -> str | None:
    """Why vLLM cannot run here, or None."""
    import importlib.util

    from egotask.model_adapters.vllm_backend import NO_CUDA

    if importlib.util.find_spec("vllm") is None:
        return "vLLM is not installed (pip install 'egotask[vllm]')"
    if not torch.cuda.is_available():
        return NO_CUDA
    return None


def run_vllm(ckpt: Path, prompts: list[Any], warmup: list[Any], new_tokens: int, dtype: str,
             quick: bool) -> tuple[float, list[int]]:
    """Seconds for all prompts in one ``LLM.generate`` through the adapter's engine, and each reply's
    number of new tokens."""
    from vllm import SamplingParams

    from egotask.model_adapters.qwen3vl import Qwen3VL

    adapter = Qwen3VL(pretrained=str(ckpt), backend="vllm", dtype=dtype, max_model_len=4096 if quick else 8192,
                      gpu_memory_utilization=0.3 if quick else 0.8, enforce_eager=str(quick))
    engine = adapter.engine
    params = SamplingParams(max_tokens=new_tokens, min_tokens=new_tokens, ignore_eos=True, temperature=0.0)
    engine.llm.generate([engine.request(p) for p in warmup], params, use_tqdm=False)
    start = time.perf_counter()
    outputs = engine.llm.generate([engine.request(p) for p in prompts], params, use_tqdm=False)
    seconds = time.perf_counter() - start
    return seconds, [len(o.outputs[0].token_ids) for o in outputs]


def check_requests(checks: Checks, ckpt: Path, prompts: list[Any]) -> None:
    """Each vLLM request, built without vLLM: the HF prompt, and the frames' own times."""
    from transformers import AutoProcessor

    from egotask.model_adapters.base import chat_messages
    from egotask.model_adapters.vllm_backend import build_request

    processor = AutoProcessor.from_pretrained(ckpt)
    for i, prompt in enumerate(prompts):
        text = processor.apply_chat_template(chat_messages(prompt.text), tokenize=False, add_generation_prompt=True)
        request = build_request("qwen3vl", processor, text, prompt.videos)
        ((frames, meta),) = request["multi_modal_data"]["video"]
        (video,) = prompt.videos
        times = [k / meta["fps"] for k in meta["frames_indices"]]
        checks.expect(request["prompt"] == text and frames is video.frames,
                      f"request {i}: not the HF prompt and frames")
        checks.expect(len(times) == 8 and all(abs(a - b) <= 0.5 / video.fps for a, b in zip(times, video.timestamps,
                                                                                             strict=True)),
                      f"request {i}: metadata times {times} are not the frames' {video.timestamps}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny checkpoint on CPU, a few items (defaults in [])")
    parser.add_argument("--items", type=int, default=None, help="items for HF batch 8 and vLLM (128 [8])")
    parser.add_argument("--hf1-items", type=int, default=None, help="items for HF batch 1, the slow one (16 [2])")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="new tokens per reply, EOS ignored (64 [8])")
    parser.add_argument("--max-pixels", type=int, default=None,
                        help="pixels per frame at most (448*448 [the 320x180 clip as it is])")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="clips and checkpoint (default /tmp/egotask-bench; --quick: a fresh temporary folder)")
    args = parser.parse_args()
    for arg, full, quick in (("items", 128, 8), ("hf1_items", 16, 2), ("max_new_tokens", 64, 8),
                             ("max_pixels", 448 * 448, None)):
        if getattr(args, arg) is None:
            setattr(args, arg, quick if args.quick else full)
    cuda = torch.cuda.is_available()
    if not args.quick and not cuda:
        print("gpu_engines.py measures GPU engines and needs a CUDA GPU; --quick checks it on CPU", file=sys.stderr)
        return 2
    device, dtype = ("cuda", "bfloat16") if cuda else ("cpu", "auto")
    checks = Checks("gpu_engines --quick" if args.quick else "gpu_engines")

    with bench_workdir(args.workdir, args.quick) as workdir:
        if args.quick:
            from egotask.fixtures import build_tiny_qwen3vl

            ckpt = build_tiny_qwen3vl(workdir / "tiny-qwen3vl")
            clips = quick_clips(workdir, 1)
        else:
            ckpt = build_qwen3vl_2b(workdir / "qwen3vl-2b-random", device)
            clips = benchmark_clips(workdir, 2)
        span = 4.0 if args.quick else 30.0
        everything = sample_prompts(clips, args.items + 8, args.max_pixels, span)
        warmup, prompts = everything[:8], everything[8:]
        check_requests(checks, ckpt, prompts)

        rows, rates = [], {}
        new = args.max_new_tokens
        runs = [("HF transformers", 1, prompts[:args.hf1_items]), ("HF transformers", 8, prompts)]
        hf_tokens: dict[int, list[list[int]]] = {}
        for name, batch, items in runs:
            seconds, tokens = run_hf(ckpt, items, warmup, batch, new, device, dtype)
            hf_tokens[batch] = tokens
            rates[batch] = len(items) / seconds
            rows.append([f"{name}, batch {batch}", len(items), new, f"{seconds:.2f}", f"{rates[batch]:.2f}",
                         f"{rates[batch] / rates[1]:.1f}x"])
            short = [i for i, t in enumerate(tokens) if len(t) != new]
            checks.expect(not short, f"HF batch {batch}: replies {short[:5]} have other than {new} new tokens")
        if args.quick:  # greedy in fp32: batching (left padding) must not change a token
            same = hf_tokens[8][:args.hf1_items] == hf_tokens[1]
            checks.expect(same, "HF batch 8 decoded other tokens than batch 1")

        reason = vllm_unavailable()
        if reason is None:
            seconds, counts = run_vllm(ckpt, prompts, warmup, new, dtype, args.quick)
            rate = len(prompts) / seconds
            rows.append(["vLLM (in-process LLM.generate)", len(prompts), new, f"{seconds:.2f}", f"{rate:.2f}",
                         f"{rate / rates[1]:.1f}x"])
            short = [i for i, c in enumerate(counts) if c != new]
            checks.expect(not short, f"vLLM: replies {short[:5]} have other than {new} new tokens")
        else:
            rows.append(["vLLM", "-", new, "-", "-", "skipped"])

    where = torch.cuda.get_device_name(0) if cuda else "CPU"
    model = "tiny Qwen3-VL (egotask.fixtures)" if args.quick else "random Qwen3-VL at Qwen3-VL-2B's dimensions, bf16"
    print(f"{model} on {where}; 8 frames per request (at most {args.max_pixels or 'all'} pixels each), "
          f"{new} new tokens per reply with EOS ignored")
    print(tabulate(rows, headers=["engine", "items", "new tokens", "seconds", "items/s", "vs HF batch 1"]))
    if reason is not None:
        print(f"vLLM row skipped: {reason}")
    elif not args.quick:
        ratio = float(rows[-1][4]) / rates[1]
        print(f"vLLM / HF batch 1 = {ratio:.1f}x (target >= 5x: {'met' if ratio >= 5 else 'NOT met'})")
    if args.quick:
        print("(--quick: rates on a tiny CPU run are noise; they are not checked)")
    return checks.exit_code(announce_pass=args.quick)


if __name__ == "__main__":
    sys.exit(main())
