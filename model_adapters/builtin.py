"""The egotask plugins that list the built-in model adapters (entry points ``egotask_qwen3vl`` and
``egotask_smolvlm2``). Cheap to import on purpose: `egotask plugins`, the judge commands and
lmms-eval's model listing load every plugin, and the adapter classes import torch and transformers,
which lmms-eval imports from ``class_path`` only when the model is run."""

from __future__ import annotations

from egotask.hookspecs import ModelAdapter, hookimpl

# VideoQAModel's keywords, then FramesModel's (tests/test_model_adapters.py checks them against __init__).
VIDEO_QA_ARGS = ("pretrained", "base", "merge", "device_map", "dtype", "thinking", "backend",
                 "device", "batch_size", "max_frames", "fps", "max_pixels", "frames",
                 "force_frames", "frame_memory")
# What backend=vllm takes besides (egotask.model_adapters.vllm_backend.ENGINE_ARGS; a test compares).
VLLM_ARGS = ("tensor_parallel_size", "gpu_memory_utilization", "max_model_len", "max_num_seqs", "enforce_eager",
             "chunk_size")


class AdapterPlugin:
    """One plugin providing fixed adapters (pluggy registers objects as well as modules)."""

    def __init__(self, *adapters: ModelAdapter) -> None:
        self.adapters = adapters

    @hookimpl
    def egotask_model_adapters(self) -> list[ModelAdapter]:
        return list(self.adapters)


qwen3vl = AdapterPlugin(ModelAdapter(
    "qwen3vl", "egotask.model_adapters.qwen3vl.Qwen3VL",
    "Qwen3-VL Instruct/Thinking, full finetunes and LoRA adapters (transformers)", aliases=("qwen3-vl",),
    reads_intervals=True, model_args=VIDEO_QA_ARGS + VLLM_ARGS, required=("pretrained",),
    example="pretrained=Qwen/Qwen3-VL-2B-Instruct,max_frames=32"))

smolvlm2 = AdapterPlugin(ModelAdapter(
    "smolvlm2", "egotask.model_adapters.smolvlm2.SmolVLM2",
    "SmolVLM2 video-instruct models, full finetunes and LoRA adapters (transformers)", aliases=("smolvlm",),
    reads_intervals=True,
    model_args=VIDEO_QA_ARGS + VLLM_ARGS, required=("pretrained",),
    example="pretrained=HuggingFaceTB/SmolVLM2-500M-Video-Instruct,max_frames=32"))
