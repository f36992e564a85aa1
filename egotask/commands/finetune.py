"""`egotask finetune`: LoRA or full finetuning of Qwen3-VL / SmolVLM2 on EgoTextVQA and EgoTempo."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

DESCRIPTION = """\
Finetune a Qwen3-VL or SmolVLM2 checkpoint on a weighted mixture of EgoTextVQA (indoor, outdoor) and
EgoTempo, and write a folder the model adapters load directly:

  lmms_eval --model qwen3vl --model_args pretrained=<output dir>,max_frames=<--max-frames> ...

Data comes from the same loaders and variables as the lmms-eval tasks (EGOTEXTVQA_ANNOTATIONS,
EGOTEXTVQA_VIDEO_DIR, EGOTEMPO_ANNOTATIONS, EGOTEMPO_VIDEO_DIR, or the Hub when unset). Only the videos
the split manifest puts in `train` are trained on, and validation reads only `val`; the `test` videos
are never read. Each question is asked exactly as evaluation asks it: the task's prompt, and frames
from the same sampler over the same visible interval (before the question's timestamp for EgoTextVQA).
The loss covers only the answer tokens.

The output folder holds the best validation step (or the last step without --val-datasets): for LoRA
adapter_config.json + adapter_model.safetensors (base_model_name_or_path = the base), for --method full a
full checkpoint; plus the processor, training.json (base, data, weights, manifest hash, settings, steps,
final and best validation loss) and log.jsonl. An interrupted run resumes from its last checkpoint when
rerun with the same flags.
"""

EPILOG = """\
examples:
  # EgoTempo only
  egotask finetune --model-id Qwen/Qwen3-VL-2B-Instruct --split-manifest splits.json \\
      --train-datasets egotempo --val-datasets egotempo --output-dir runs/egotempo-lora

  # a 70/30 mixture of EgoTextVQA (both splits) and EgoTempo, full finetune
  egotask finetune --model-id Qwen/Qwen3-VL-2B-Instruct --split-manifest splits.json --method full \\
      --train-datasets egotextvqa egotempo --train-weights 0.7 0.3 \\
      --val-datasets egotextvqa egotempo --val-weights 0.5 0.5 --output-dir runs/mix-full

  # several GPUs, data parallel (the batch is per GPU; the same flags otherwise)
  accelerate launch --num_processes 4 -m egotask.finetune ...flags...
  torchrun --nproc_per_node 4 -m egotask.finetune ...flags...

dataset names: egotextvqa_indoor, egotextvqa_outdoor, egotempo_openqa; `egotextvqa` means both
EgoTextVQA splits (sharing its weight equally) and `egotempo` means egotempo_openqa.
Unsloth's vision path is used for LoRA when unsloth is installed and a GPU is present (--backend).
"""


ADAPTER_OF_MODEL_TYPE = {"qwen3_vl": "qwen3vl", "smolvlm": "smolvlm2"}  # transformers' model_type -> --model


def adapter_of(model_id: str) -> str:
    """The ``--model`` that loads a finetune of ``model_id``, from its config's ``model_type``."""
    try:
        from transformers import AutoConfig

        model_type = AutoConfig.from_pretrained(model_id).model_type
    except (OSError, ValueError):
        model_type = ""
    return ADAPTER_OF_MODEL_TYPE.get(model_type, "<qwen3vl|smolvlm2>")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from egotask.finetune.config import DEFAULT_LORA_TARGETS

    data = p.add_argument_group("data")
    data.add_argument("--train-datasets", nargs="+", required=True, metavar="NAME",
                      help="datasets to train on (see 'dataset names' below)")
    data.add_argument("--train-weights", nargs="+", type=float, metavar="W",
                      help="mixing weight per --train-datasets entry, e.g. 0.7 0.3 (default: equal)")
    data.add_argument("--val-datasets", nargs="+", default=[], metavar="NAME",
                      help="datasets whose val split gives the validation loss (default: none; then the last "
                           "step is kept)")
    data.add_argument("--val-weights", nargs="+", type=float, metavar="W",
                      help="weight of each --val-datasets entry in the validation loss (default: equal)")
    data.add_argument("--split-manifest", type=Path, required=True,
                      help="video-level train/val/test split manifest (JSON; written by `egotask data splits`)")
    data.add_argument("--max-frames", "--frames-per-clip", dest="max_frames", type=int, default=8,
                      help="frames per clip; evaluate with the same max_frames (default: 8, the adapters' default)")
    data.add_argument("--fps", type=float, default=None,
                      help="sample at this rate instead, capped by --max-frames (as the adapters' fps=)")
    data.add_argument("--max-pixels", type=int, default=None, help="downscale frames to at most this many pixels")
    data.add_argument("--val-max-samples", type=int, default=200,
                      help="validation questions per dataset, an evenly spread subset (default: 200)")
    data.add_argument("--num-workers", type=int, default=0, help="DataLoader workers decoding video (default: 0)")

    model = p.add_argument_group("model")
    model.add_argument("--model-id", required=True,
                       help="base checkpoint: a local folder or a hub id (Qwen3-VL or SmolVLM2)")
    model.add_argument("--method", choices=("lora", "full"), default="lora", help="default: lora")
    model.add_argument("--backend", choices=("auto", "transformers", "unsloth"), default="auto",
                       help="auto: Unsloth for LoRA when installed and a GPU is present, else transformers")
    model.add_argument("--lora-rank", type=int, default=16, help="default: 16")
    model.add_argument("--lora-alpha", type=int, default=32, help="default: 32")
    model.add_argument("--lora-dropout", type=float, default=0.05, help="default: 0.05")
    model.add_argument("--lora-targets", default=",".join(DEFAULT_LORA_TARGETS),
                       help="comma-separated projection names that get LoRA, in the language model only "
                            f"(default: {','.join(DEFAULT_LORA_TARGETS)})")

    train = p.add_argument_group("training")
    train.add_argument("--epochs", type=float, default=1.0,
                       help="passes over the training questions (default: 1); --max-steps wins")
    train.add_argument("--max-steps", type=int, default=None, help="optimizer steps to run")
    train.add_argument("--learning-rate", type=float, default=None, help="default: 1e-4 for LoRA, 1e-5 for full")
    train.add_argument("--weight-decay", type=float, default=0.0)
    train.add_argument("--warmup-ratio", type=float, default=0.03, help="default: 0.03")
    train.add_argument("--scheduler", default="cosine", help="transformers scheduler name (default: cosine)")
    train.add_argument("--batch-size", type=int, default=1, help="questions per micro-batch per GPU (default: 1)")
    train.add_argument("--grad-accumulation", type=int, default=8,
                       help="micro-batches per optimizer step (default: 8)")
    train.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping; 0 turns it off")
    train.add_argument("--seed", type=int, default=42, help="seeds the weights' init and the data order")
    train.add_argument("--eval-steps", type=int, default=50, help="validate every N steps (default: 50)")
    train.add_argument("--save-steps", type=int, default=50, help="resume checkpoint every N steps (default: 50)")
    train.add_argument("--logging-steps", type=int, default=1, help="log the training loss every N steps")
    train.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=None,
                       help="default: on with a GPU")
    train.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                       help="bf16 weights and autocast (default: on with a GPU that supports it)")

    out = p.add_argument_group("output")
    out.add_argument("--output-dir", type=Path, required=True, help="folder the adapters load as pretrained=")
    out.add_argument("--merge", action="store_true",
                     help="LoRA only: also write <output-dir>/merged, the adapter folded into a full checkpoint")
    out.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                     help="continue an interrupted run in --output-dir (default: on)")
    out.add_argument("--overwrite", action="store_true", help="start over in an --output-dir that has a run")
    out.add_argument("--report-to", choices=("none", "wandb"), default="none",
                     help="also log to Weights & Biases (needs wandb; default: none)")
    out.add_argument("--run-name", default=None, help="run name for wandb")
    out.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="LoRA or full finetuning of Qwen3-VL / SmolVLM2 on the benchmarks' train "
                                        "splits; the output folder loads as pretrained=",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    from egotask.finetune.config import FinetuneConfig, expand_datasets

    return FinetuneConfig(
        model_id=args.model_id, output_dir=args.output_dir, split_manifest=args.split_manifest,
        train_datasets=expand_datasets(args.train_datasets, args.train_weights, "--train-datasets"),
        val_datasets=expand_datasets(args.val_datasets, args.val_weights, "--val-datasets")
        if args.val_datasets else _no_val_weights(args.val_weights),
        method=args.method, backend=args.backend, epochs=args.epochs, max_steps=args.max_steps,
        learning_rate=args.learning_rate, weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio,
        scheduler=args.scheduler, batch_size=args.batch_size, grad_accumulation=args.grad_accumulation,
        max_grad_norm=args.max_grad_norm, seed=args.seed, lora_rank=args.lora_rank, lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        lora_targets=tuple(t.strip() for t in args.lora_targets.split(",") if t.strip()),
        max_frames=args.max_frames, fps=args.fps, max_pixels=args.max_pixels, eval_steps=args.eval_steps,
        save_steps=args.save_steps, val_max_samples=args.val_max_samples, logging_steps=args.logging_steps,
        num_workers=args.num_workers, gradient_checkpointing=args.gradient_checkpointing, bf16=args.bf16,
        merge=args.merge, report_to=args.report_to, run_name=args.run_name, resume=args.resume,
        overwrite=args.overwrite)


def _no_val_weights(weights: list[float] | None) -> list:
    from egotask.finetune.config import FinetuneError

    if weights:
        raise FinetuneError("--val-weights: given without --val-datasets")
    return []


def run(args: argparse.Namespace) -> int:
    from egotask.data.sources import DataError
    from egotask.finetune.config import FinetuneError
    from egotask.frames import VideoError

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        from egotask.finetune.train import run as train

        config = config_from_args(args)
        summary = train(config)
    except (FinetuneError, DataError, VideoError) as exc:
        print(f"egotask finetune: error: {exc}", file=sys.stderr)
        return 2
    best = summary["best_val_loss"]
    final = summary["final_train_loss"]
    print(f"egotask finetune: {summary['steps']} steps"
          + (f", final train loss {final:.4f}" if final is not None else "")
          + (f", best val loss {best:.4f} (step {summary['best_step']})" if best is not None else ""))
    print(f"egotask finetune: evaluate with  lmms_eval --model {adapter_of(config.model_id)} --model_args "
          f"pretrained={config.output_dir},max_frames={config.max_frames} --tasks ...")
    return 0
