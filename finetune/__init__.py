"""Finetuning Qwen3-VL and SmolVLM2 into checkpoints the model adapters load (``egotask finetune``)."""
