"""Loading the model to finetune (plain transformers + peft, or Unsloth's vision path) and saving
what the adapters load with ``pretrained=<output dir>``."""

from __future__ import annotations

import importlib.util
import json
import logging
import re
from pathlib import Path
from typing import Any

import torch

from egotask.atomic import write_text
from egotask.finetune.config import FinetuneConfig, FinetuneError

log = logging.getLogger("egotask.finetune")


def resolve_model_id(model_id: str) -> str:
    """A local folder becomes an absolute path (what the adapter config records); a hub id stays."""
    path = Path(model_id).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise FinetuneError(f"--model-id {model_id}: folder has no config.json")
        return str(path.resolve())
    if model_id.startswith((".", "/", "~")):
        raise FinetuneError(f"--model-id {model_id}: no such folder")
    return model_id


def choose_backend(config: FinetuneConfig) -> str:
    has_unsloth = importlib.util.find_spec("unsloth") is not None
    if config.backend == "unsloth":
        if not has_unsloth or not torch.cuda.is_available():
            raise FinetuneError("--backend unsloth needs the unsloth package and a CUDA GPU")
        return "unsloth"
    if config.backend == "auto" and has_unsloth and torch.cuda.is_available() and config.method == "lora":
        return "unsloth"
    return "transformers"


def lora_target_regex(targets: tuple[str, ...]) -> str:
    """LoRA on the named projections of the language model only; the vision tower stays frozen
    (Qwen3-VL's is ``model.visual``, SmolVLM's ``model.vision_model``, whose names also end in q_proj)."""
    names = "|".join(re.escape(t) for t in targets)
    return rf"^(?!.*(visual|vision))(.*\.)?({names})$"


def load_for_training(config: FinetuneConfig, model_id: str, dtype: torch.dtype, backend: str) -> tuple[Any, Any]:
    """(model, processor), the model wrapped by peft for LoRA and in train mode."""
    from transformers import AutoProcessor

    from egotask.model_adapters.base import cap_frame_pixels  # frames processed as at evaluation

    if backend == "unsloth":
        model, processor = _load_unsloth(config, model_id, dtype)
        cap_frame_pixels(processor)
        return model, processor
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(model_id, dtype=dtype)
    processor = AutoProcessor.from_pretrained(model_id)
    cap_frame_pixels(processor)
    if config.method == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                          target_modules=lora_target_regex(tuple(config.lora_targets)), bias="none",
                          task_type="CAUSAL_LM")
        try:
            model = get_peft_model(model, lora)
        except ValueError as exc:
            raise FinetuneError(f"--lora-targets {','.join(config.lora_targets)}: {exc}") from None
        model.peft_config["default"].base_model_name_or_path = model_id
    model.train()
    return model, processor


def _load_unsloth(config: FinetuneConfig, model_id: str, dtype: torch.dtype) -> tuple[Any, Any]:
    from unsloth import FastVisionModel

    model, processor = FastVisionModel.from_pretrained(model_id, load_in_4bit=False, dtype=dtype,
                                                       use_gradient_checkpointing="unsloth")
    model = FastVisionModel.get_peft_model(
        model, finetune_vision_layers=False, finetune_language_layers=True, finetune_attention_modules=True,
        finetune_mlp_modules=True, r=config.lora_rank, lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout, bias="none", random_state=config.seed)
    model.peft_config["default"].base_model_name_or_path = model_id
    FastVisionModel.for_training(model)
    if not hasattr(processor, "apply_chat_template") or not hasattr(processor, "tokenizer"):
        from transformers import AutoProcessor

        processor = AutoProcessor.from_pretrained(model_id)
    return model, processor


def trainable_state(model: Any) -> dict[str, torch.Tensor]:
    """The weights being trained (LoRA matrices, or everything for a full finetune), on the CPU."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if k in names}


def load_trainable_state(model: Any, state: dict[str, torch.Tensor]) -> None:
    missing = {n for n, p in model.named_parameters() if p.requires_grad} - set(state)
    if missing:
        raise FinetuneError(f"checkpoint lacks {len(missing)} trained weight(s), e.g. {sorted(missing)[0]}; "
                            "it was written by a different model or method (use a new --output-dir)")
    model.load_state_dict(state, strict=False)


def save_for_adapters(model: Any, processor: Any, out_dir: Path, config: FinetuneConfig, base: str) -> None:
    """Write what ``pretrained=<out_dir>`` loads: a LoRA adapter (``adapter_config.json`` +
    ``adapter_model.safetensors``, base recorded) or a full checkpoint, and the processor either way."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if config.method == "lora":
        model.save_pretrained(out_dir, safe_serialization=True)
        adapter_config = out_dir / "adapter_config.json"
        data = json.loads(adapter_config.read_text())
        data["base_model_name_or_path"] = base
        write_text(adapter_config, json.dumps(data, indent=2))
    else:
        model.save_pretrained(out_dir, safe_serialization=True)
        generation = getattr(model, "generation_config", None)
        if generation is not None:
            generation.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)


def untie_adapted_lm_head(model: Any) -> None:
    """Give a LoRA-adapted ``lm_head`` its own weight before merging: when it is tied to the input
    embeddings, merging into it would also change every input embedding."""
    base = model.get_base_model()
    head, embed = base.get_output_embeddings(), base.get_input_embeddings()
    layer = getattr(head, "base_layer", None)  # set only when peft wrapped lm_head
    if layer is None or embed is None or layer.weight.data_ptr() != embed.weight.data_ptr():
        return
    layer.weight = torch.nn.Parameter(embed.weight.detach().clone(), requires_grad=False)
    for config in (base.config, getattr(base.config, "text_config", None)):
        if config is not None and getattr(config, "tie_word_embeddings", False):
            config.tie_word_embeddings = False


def save_merged(model: Any, processor: Any, out_dir: Path) -> None:
    """LoRA folded into the base weights: a plain full checkpoint (``--merge``)."""
    untie_adapted_lm_head(model)
    merged = model.merge_and_unload()
    merged.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)
