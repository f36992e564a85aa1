"""Finetuning Qwen3-VL and SmolVLM2 into checkpoints the model adapters load (``egotask finetune``).

Modules: ``config`` (settings, dataset names), ``prompts`` (the tasks' evaluation prompts), ``data``
(split-filtered docs, the weighted mixture), ``collate`` (answer-only labels), ``model`` (loading,
LoRA, saving), ``checkpoint`` (resume state), ``train`` (the loop).
"""
