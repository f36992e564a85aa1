"""Small real things built on the fly, for the tests and `egotask demo`: mp4 clips with rendered
scene text (PyAV), annotation files in the benchmarks' real formats, tiny random-weight
checkpoints saved with ``save_pretrained`` (nothing binary is committed). `egotask demo` builds its
sample data and checkpoints with these; the tests' own helpers live under tests/, and the fake vendor
server and the local app server in :mod:`egotask.testing`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

# --------------------------------------------------------------------------- videos


def text_frame(text: str, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A frame showing ``text`` in large dark letters on a light, slightly noisy background."""
    width, height = size
    rng = np.random.default_rng(seed)
    base = np.full((height, width, 3), 225, np.uint8) + rng.integers(0, 20, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(base)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(12, height // 5))
    box = draw.textbbox((0, 0), text, font=font)
    x = max(2, (width - (box[2] - box[0])) // 2)
    y = max(2, (height - (box[3] - box[1])) // 2)
    draw.text((x, y), text, fill=(20, 20, 20), font=font)
    return np.asarray(image)


def write_clip(path: str | Path, texts: Sequence[str], seconds: float = 4.0, fps: int = 8,
               size: tuple[int, int] = (160, 96), codec: str = "libx264", gop: int | None = None, *,
               frame_times: Sequence[float] | None = None, container_options: dict[str, str] | None = None,
               container_format: str | None = None) -> Path:
    """Write a clip whose successive segments show each of ``texts`` (one segment per text).

    ``frame_times`` (seconds, ascending) gives every frame its own presentation time: variable frame
    rate. ``container_options``/``container_format`` reach the muxer, e.g. ``{"live": "1"}`` for a
    Matroska file without a duration in its header, or ``container_format="h264"`` for a raw stream
    without timestamps.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    total = len(frame_times) if frame_times is not None else max(1, int(round(seconds * fps)))
    frames_per_text = [text_frame(t, size, seed=i) for i, t in enumerate(texts)]
    with av.open(str(path), "w", format=container_format, options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        if gop:
            stream.codec_context.gop_size = gop
        if frame_times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        for i in range(total):
            image = frames_per_text[min(i * len(texts) // total, len(texts) - 1)]
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if frame_times is not None:
                frame.pts, frame.time_base = int(round(frame_times[i] * 1000)), Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


# --------------------------------------------------------------------------- annotations


def write_egotextvqa_annotations(folder: str | Path, indoor: Iterable[dict[str, Any]],
                                 outdoor: Iterable[dict[str, Any]]) -> Path:
    """Write both EgoTextVQA annotation JSONL files (the release's row format) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in (("indoor", indoor), ("outdoor", outdoor)):
        with open(folder / f"egotextvqa_{split}_annotation.jsonl", "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")
    return folder


def write_egotempo_annotations(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"info": {"version": "fixture"}, "annotations": list(rows)}, indent=1))
    return path


# --------------------------------------------------------------------------- the sample data set


@dataclass(frozen=True)
class SampleQA:
    video_id: str
    question_type: str
    question: str
    answer: str
    texts: tuple[str, ...]  # what the clip shows, in order
    timestamp: float = 3.5


INDOOR_SAMPLE = (
    SampleQA("6f1c2a7e-0b5d-4c1e-9a43-2d8e5f7a9b10", "shopping", "what brand of cereal is on the shelf?",
             "KORNFLAKE", ("KORNFLAKE",)),
    SampleQA("a3e5b1c9-7d24-4f8a-b6e0-1c9d3f5a7e22", "kitchen", "which spice jar did i pick up?",
             "PAPRIKA", ("PAPRIKA",)),
    SampleQA("c8d2e4f6-1a3b-4c5d-8e7f-9a0b1c2d3e44", "book-related", "what is the title of the book?",
             "ODYSSEY", ("ODYSSEY",)),
    SampleQA("e1f3a5b7-c9d0-4e2f-a4b6-c8d0e2f4a666", "gameplay", "what does the screen say?",
             "LEVEL UP", ("LEVEL UP",)),
)
OUTDOOR_SAMPLE = (
    SampleQA("101", "location", "which street am i on?", "ELM ST", ("ELM ST",)),
    SampleQA("102", "direction", "what does the road sign say?", "EXIT 9", ("EXIT 9",)),
    SampleQA("103", "description", "what shop is on the left?", "BAKERY", ("BAKERY",)),
    SampleQA("104", "intention reasoning", "where can i park?", "PARKING", ("PARKING",)),
)
EGOTEMPO_SAMPLE = (
    SampleQA("0d270946-95c5-4e71-ae49-b9e802548147_120.0_124.0", "object sequence",
             "what word appears after the first one?", "SPOON", ("BOWL", "SPOON")),
    SampleQA("27470817-f803-45b4-b9d4-e754cb3196bc_10.5_14.5", "counting objects",
             "what word is shown last?", "THREE", ("ONE", "THREE")),
)


def build_sample_data(root: str | Path) -> dict[str, str]:
    """Write the demo/test data set under ``root``; returns the environment variables that point
    the tasks at it (annotations and video folders)."""
    root = Path(root)
    videos = root / "videos"
    for split, sample in (("Indoor", INDOOR_SAMPLE), ("Outdoor", OUTDOOR_SAMPLE)):
        for qa in sample:
            target = videos / f"EgoTextVQA-{split}" / f"{qa.video_id}.mp4"
            if not target.exists():
                write_clip(target, qa.texts, seconds=5.0)
    for qa in EGOTEMPO_SAMPLE:
        target = root / "egotempo_clips" / f"{qa.video_id}.mp4"
        if not target.exists():
            write_clip(target, qa.texts, seconds=4.0)

    def rows(sample: Sequence[SampleQA]) -> list[dict[str, Any]]:
        return [{"video_id": qa.video_id, "question_id": "1", "question_type": qa.question_type,
                 "question": qa.question, "correct_answer": qa.answer, "timestamp": qa.timestamp,
                 "video_url": ""} for qa in sample]

    write_egotextvqa_annotations(root / "annotations", rows(INDOOR_SAMPLE), rows(OUTDOOR_SAMPLE))
    write_egotempo_annotations(root / "egotempo_openQA.json", [
        {"question_id": f"{qa.video_id}_0", "clip_id": qa.video_id, "question_type": qa.question_type,
         "question": qa.question, "answer": qa.answer} for qa in EGOTEMPO_SAMPLE])
    return {
        "EGOTEXTVQA_ANNOTATIONS": str(root / "annotations"),
        "EGOTEXTVQA_VIDEO_DIR": str(videos),
        "EGOTEMPO_ANNOTATIONS": str(root / "egotempo_openQA.json"),
        "EGOTEMPO_VIDEO_DIR": str(root / "egotempo_clips"),
    }


# --------------------------------------------------------------------------- tiny checkpoints

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>"]
# Added but not special, as in Qwen3's tokenizers: decoding with skip_special_tokens keeps them.
THINK_TOKENS = ["<think>", "</think>"]

# A minimal Qwen-style chat template: the real one renders the same markers for these messages.
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif item['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% if thinking %}<think>\n{% endif %}{% endif %}"
)

CORPUS = [
    "what brand of cereal is on the shelf", "which spice jar did i pick up", "the title of the book",
    "answer briefly a word a phrase or a short sentence", "which street am i on", "road sign exit",
    "kornflake paprika odyssey level up elm st bakery parking spoon bowl three one",
    "user assistant system video seconds frame", "0 1 2 3 4 5 6 7 8 9 . < > :",
]


def train_tokenizer(vocab_size: int = 400, special_tokens: Sequence[str] = SPECIAL_TOKENS,
                    **fast_kwargs: Any):
    """A byte-level BPE tokenizer trained on a few sentences, with the given special tokens (by
    default Qwen's; ``fast_kwargs`` override the Qwen token roles for other families)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(special_tokens),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 4, trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TOKENS])
    roles = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
             "extra_special_tokens": {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                                      "vision_bos_token": "<|vision_start|>", "vision_eos_token": "<|vision_end|>"}}
    return PreTrainedTokenizerFast(tokenizer_object=tok, **{**roles, **fast_kwargs})


def build_tiny_qwen3vl(out_dir: str | Path, *, thinking: bool = False, reply: str | None = None,
                       seed: int = 0) -> Path:
    """Save a random-weight Qwen3-VL (under 1 MB of weights) with its processor to ``out_dir``.

    ``reply``: instead of random text, greedy decoding writes exactly this reply (then ends the turn)
    whatever the question, e.g. a Thinking-style ``"reasoning</think>answer"``. See :func:`script_reply`.
    """
    import torch
    from transformers import (
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor

    out_dir = Path(out_dir)
    tokenizer = train_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = Qwen3VLConfig(
        text_config={
            "vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3],
                                "mrope_interleaved": True},
            "tie_word_embeddings": False, "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "patch_size": 16,
            "spatial_merge_size": 2, "temporal_patch_size": 2, "out_hidden_size": 64,
            "num_position_embeddings": 64, "deepstack_visual_indexes": [0],
        },
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,  # tied random embeddings only ever repeat the last prompt token
    )
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config).eval()
    if reply is not None:
        # The generation prompt ends with "\n" (after "<think>" for a Thinking template).
        script_reply(model, model.model.language_model, [*tokenizer.encode("\n"), *tokenizer.encode(reply),
                                                         ids["<|im_end|>"]])
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    pixels = {"shortest_edge": 32 * 32, "longest_edge": 64 * 64 * 4}
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(patch_size=16, merge_size=2, size=pixels),
        video_processor=Qwen3VLVideoProcessor(patch_size=16, merge_size=2, size={"shortest_edge": 32 * 32,
                                                                                  "longest_edge": 64 * 64 * 16}),
        tokenizer=tokenizer,
        chat_template=QWEN_CHAT_TEMPLATE.replace("{% if thinking %}<think>\n{% endif %}",
                                                 "<think>\n" if thinking else ""),
    )
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


def script_reply(model, text_model, chain: list[int]) -> None:
    """Rewrite a decoder's weights so that greedy decoding after ``chain[0]`` emits ``chain[1:]``.

    Attention and MLP outputs are zeroed, so the residual stream at each position is the current
    token's embedding; each scripted token gets its own embedding axis, and the (untied) LM head maps
    that axis to the next token. The model still runs every layer through the real classes.
    """
    import torch

    sources = chain[:-1]
    if len(set(sources)) != len(sources):
        raise ValueError(f"a scripted reply must not repeat a token (ids {chain}): pick other words")
    hidden = text_model.config.hidden_size
    if len(sources) > hidden:
        raise ValueError(f"a scripted reply may have at most {hidden} tokens, got {len(sources)}")
    with torch.no_grad():
        for layer in text_model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
        head.mul_(0.01)
        for axis, (src, dst) in enumerate(zip(chain[:-1], chain[1:], strict=True)):
            embed[src] = 0.0
            embed[src, axis] = 1.0
            head[dst, axis] = 100.0


SMOLVLM_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<image>",
                          "<fake_token_around_image>", "<global-img>", "<video>"]

# SmolVLM2's chat template, reduced to what a user turn with videos, images and text needs.
SMOLVLM_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}"
    "{% if message['content'] is string %}{{ ': ' + message['content'] }}{% else %}"
    "{% if message['content'][0]['type'] == 'image' %}{{ ':' }}{% else %}{{ ': ' }}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{ line['text'] }}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% elif line['type'] == 'video' %}{{ '<video>' }}"
    "{% endif %}{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


def build_tiny_smolvlm2(out_dir: str | Path, *, seed: int = 0) -> Path:
    """Save a random-weight SmolVLM2 (llama text model, 2-layer vision model) with its processor."""
    import torch
    from transformers import (
        SmolVLMConfig,
        SmolVLMForConditionalGeneration,
        SmolVLMImageProcessor,
        SmolVLMProcessor,
        SmolVLMVideoProcessor,
    )

    out_dir = Path(out_dir)
    tokenizer = train_tokenizer(
        special_tokens=SMOLVLM_SPECIAL_TOKENS, eos_token="<end_of_utterance>", pad_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<image>", "fake_image_token": "<fake_token_around_image>",
                              "global_image_token": "<global-img>", "video_token": "<video>",
                              "end_of_utterance_token": "<end_of_utterance>"})
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SMOLVLM_SPECIAL_TOKENS}
    image_size, patch_size, scale_factor = 64, 16, 2
    image_seq_len = (image_size // patch_size) ** 2 // scale_factor**2  # 4 tokens per frame
    config = SmolVLMConfig(
        text_config={
            "model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
            "max_position_embeddings": 4096, "bos_token_id": ids["<|im_start|>"],
            "eos_token_id": ids["<end_of_utterance>"], "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": image_size, "patch_size": patch_size},
        scale_factor=scale_factor, image_token_id=ids["<image>"], pad_token_id=ids["<|endoftext|>"],
    )
    torch.manual_seed(seed)
    model = SmolVLMForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = ids["<end_of_utterance>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    edge = {"longest_edge": image_size}
    processor = SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(do_image_splitting=False, size=edge, max_image_size=edge),
        video_processor=SmolVLMVideoProcessor(size=edge, max_image_size=edge),
        tokenizer=tokenizer, image_seq_len=image_seq_len, chat_template=SMOLVLM_CHAT_TEMPLATE,
    )
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir
