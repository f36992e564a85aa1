"""Finetuning settings: one dataclass the CLI fills, the trainer reads and ``training.json`` records."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from egotask.data.sources import BENCHMARKS

# Short names accepted on the command line; each stands for one or more benchmarks.
DATASET_ALIASES: dict[str, tuple[str, ...]] = {
    "egotextvqa": ("egotextvqa_indoor", "egotextvqa_outdoor"),
    "egotempo": ("egotempo_openqa",),
}

# LoRA goes on these projections of the language model (not the vision tower) unless told otherwise.
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class FinetuneError(ValueError):
    """Bad finetuning input; the message names the flag or file at fault."""


def expand_datasets(names: list[str], weights: list[float] | None, flag: str) -> list[tuple[str, float]]:
    """``(benchmark, weight)`` pairs for the names given to ``flag``. An alias such as ``egotextvqa``
    stands for its splits, which share its weight equally."""
    if not names:
        raise FinetuneError(f"{flag}: give at least one dataset")
    weight_flag = flag.replace("datasets", "weights")
    if weights is not None:
        if len(weights) != len(names):
            raise FinetuneError(f"{weight_flag}: got {len(weights)} weight(s) for {len(names)} dataset(s) "
                                f"({' '.join(names)}); give one weight per dataset")
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise FinetuneError(f"{weight_flag}: weights must be >= 0 and not all 0, got {weights}")
    pairs: dict[str, float] = {}
    for i, name in enumerate(names):
        key = name.strip().lower()
        members = DATASET_ALIASES.get(key) or ((key,) if key in BENCHMARKS else None)
        if members is None:
            known = sorted({*BENCHMARKS, *DATASET_ALIASES})
            raise FinetuneError(f"{flag}: unknown dataset {name!r}; known: {', '.join(known)}")
        weight = 1.0 if weights is None else float(weights[i])
        for member in members:
            if member in pairs:
                raise FinetuneError(f"{flag}: {member} is named twice")
            pairs[member] = weight / len(members)
    total = sum(pairs.values())
    return [(name, w / total) for name, w in pairs.items()]


@dataclass
class FinetuneConfig:
    model_id: str
    output_dir: Path
    split_manifest: Path
    train_datasets: list[tuple[str, float]]
    val_datasets: list[tuple[str, float]] = field(default_factory=list)
    method: str = "lora"  # lora | full
    backend: str = "auto"  # auto | transformers | unsloth
    epochs: float = 1.0
    max_steps: int | None = None
    learning_rate: float | None = None  # None: 1e-4 for LoRA, 1e-5 for full
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    scheduler: str = "cosine"
    batch_size: int = 1
    grad_accumulation: int = 8
    max_grad_norm: float = 1.0
    seed: int = 42
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = DEFAULT_LORA_TARGETS
    max_frames: int = 8
    fps: float | None = None
    max_pixels: int | None = None
    eval_steps: int = 50
    save_steps: int = 50
    val_max_samples: int | None = 200
    logging_steps: int = 1
    num_workers: int = 0
    gradient_checkpointing: bool | None = None  # None: on for GPU
    bf16: bool | None = None  # None: on for GPUs that support it
    merge: bool = False
    report_to: str = "none"  # none | wandb
    run_name: str | None = None
    resume: bool = True
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.method not in ("lora", "full"):
            raise FinetuneError(f"--method must be lora or full, got {self.method!r}")
        if self.backend not in ("auto", "transformers", "unsloth"):
            raise FinetuneError(f"--backend must be auto, transformers or unsloth, got {self.backend!r}")
        if self.merge and self.method != "lora":
            raise FinetuneError("--merge applies to --method lora only (a full finetune is already merged)")
        for name in ("batch_size", "grad_accumulation", "max_frames", "eval_steps", "save_steps", "lora_rank"):
            if int(getattr(self, name)) < 1:
                raise FinetuneError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise FinetuneError(f"--max-steps must be >= 1, got {self.max_steps}")
        if self.max_steps is None and self.epochs <= 0:
            raise FinetuneError(f"--epochs must be > 0, got {self.epochs}")
        if self.report_to not in ("none", "wandb"):
            raise FinetuneError(f"--report-to must be none or wandb, got {self.report_to!r}")
        if self.learning_rate is None:
            self.learning_rate = 1e-4 if self.method == "lora" else 1e-5
        self.output_dir = Path(self.output_dir).expanduser().resolve()
        self.split_manifest = Path(self.split_manifest).expanduser().resolve()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["output_dir"] = str(self.output_dir)
        data["split_manifest"] = str(self.split_manifest)
        data["train_datasets"] = {name: w for name, w in self.train_datasets}
        data["val_datasets"] = {name: w for name, w in self.val_datasets}
        data["lora_targets"] = list(self.lora_targets)
        return data

    def identity(self) -> dict[str, Any]:
        """What a resumed run must share with the interrupted one."""
        keys = ("model_id", "method", "train_datasets", "seed", "batch_size", "grad_accumulation",
                "max_frames", "fps", "lora_rank", "lora_alpha", "lora_targets", "split_manifest")
        data = self.to_json()
        return {k: data[k] for k in keys}
